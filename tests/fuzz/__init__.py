"""Property-based fuzzer over ferrograd's public op surface (issue 11).

``spec`` turns call descriptions (plain JSON data) into arguments and into Python
reproductions; ``ops`` holds each op's call form and NumPy reference; ``worker`` runs calls
in a child process; ``runner`` drives that process from the parent; ``strategies`` draws
descriptions with hypothesis. ``tests/test_fuzz.py`` is the pytest entry point.
"""
