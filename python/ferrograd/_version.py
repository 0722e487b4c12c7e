"""The package version (`fg.__version__`)."""

__version__ = "0.1.0"
