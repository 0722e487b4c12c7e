"""The registry of ferrograd's own layer classes (public as `ferrograd.nn.config.REGISTRY`).

It lives apart from `config` because `Module` fills it as each class is defined
(`Module.__init_subclass__`), while `config` builds on `Module`: both import this module,
which imports neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .module import Module

# The public layer classes of `ferrograd.nn` by name: the only classes a saved config may
# name without the caller's say-so (see `config.from_config`). User subclasses are not
# added, so a file cannot make the loading program construct its classes, nor can a user
# class called `Linear` replace ferrograd's in other files; classes of the layers above `nn`
# (`ferrograd.train.Model`) are not layers and are not added either.
REGISTRY: dict[str, type[Module]] = {}


def is_builtin(cls: type) -> bool:
    """Whether `cls` is one of ferrograd's public layer classes (defined in `ferrograd.nn`)."""
    mod = cls.__module__
    return (mod == "ferrograd.nn" or mod.startswith("ferrograd.nn.")) and not cls.__name__.startswith("_")


def register(cls: type[Module]) -> None:
    """Adds `cls` to `REGISTRY` when it is one of ferrograd's layers (called for every
    `Module` subclass as it is defined)."""
    if is_builtin(cls):
        REGISTRY[cls.__name__] = cls
