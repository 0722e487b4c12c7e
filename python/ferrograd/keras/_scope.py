"""The custom objects in force while a model is rebuilt from a file or a config
(`load_model(..., custom_objects=...)`, `keras.utils.custom_object_scope`), and the check
that a saved config holds plain data only.

Loading builds only ferrograd.keras's own classes and functions, plus those the caller names
here: a file can never make the program construct anything else.
"""

from __future__ import annotations

import math
import threading
from typing import Any


class _Scope(threading.local):
    def __init__(self) -> None:
        self.stack: list[dict[str, Any]] = []


_SCOPE = _Scope()


def lookup(name) -> Any:
    """The custom object registered under `name` in the innermost scope, or None."""
    if not isinstance(name, str):
        return None
    for objects in reversed(_SCOPE.stack):
        if name in objects:
            return objects[name]
    return None


def current() -> dict[str, Any]:
    """Every custom object in force (inner scopes win)."""
    out: dict[str, Any] = {}
    for objects in _SCOPE.stack:
        out.update(objects)
    return out


class custom_object_scope:  # noqa: N801  (Keras's name)
    """`with custom_object_scope({"MyLayer": MyLayer}): model = load_model(path)`: names
    that loading may build besides ferrograd.keras's own."""

    def __init__(self, *objects: dict[str, Any] | None):
        self.objects: dict[str, Any] = {}
        for o in objects:
            if o is None:
                continue
            if not isinstance(o, dict) or not all(isinstance(k, str) for k in o):
                raise TypeError(f"custom_objects must be a dict of name: object, got {type(o).__name__}")
            self.objects.update(o)

    def __enter__(self):
        _SCOPE.stack.append(self.objects)
        return self

    def __exit__(self, *exc) -> None:
        _SCOPE.stack.pop()


CustomObjectScope = custom_object_scope


def plain(v, where: str, depth: int = 0) -> Any:
    """`v` if it is plain JSON data (None, bool, int, finite float, str, and lists and
    str-keyed dicts of them), else ValueError naming `where`."""
    if depth > 32:
        raise ValueError(f"{where} nests too deeply")
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"{where} is {v}, not a finite number")
        return v
    if isinstance(v, (list, tuple)):
        return [plain(i, where, depth + 1) for i in v]
    if isinstance(v, dict) and all(isinstance(k, str) for k in v):
        return {k: plain(i, where, depth + 1) for k, i in v.items()}
    raise ValueError(f"{where} is a {type(v).__name__}, not plain JSON data")


def check_arguments(cls_name: str, config) -> dict[str, Any]:
    """A saved config's constructor arguments, checked: a dict of public identifiers to plain
    data (a private or dunder name would reach an object's internals)."""
    if not isinstance(config, dict):
        raise ValueError(f"the config of {cls_name} is not a dict: {config!r:.80}")
    for k in config:
        if not isinstance(k, str) or not k.isidentifier() or k.startswith("_"):
            raise ValueError(f"{cls_name}: argument name {k!r:.40} is not allowed in a saved config")
    return {k: plain(v, f"{cls_name} argument '{k}'") for k, v in config.items()}


def resolve(identifier, custom_objects, base: type, names: dict, classes: dict, what: str):
    """The shared body of `constraints.get` and `regularizers.get`: an identifier given as
    None, an instance of `base`, a name, a saved `{"class_name", "config"}` dict or a
    function, looked up in `custom_objects`, the custom-object scope, then `names`/`classes`."""
    if identifier is None or isinstance(identifier, base):
        return identifier
    if isinstance(identifier, str):
        custom = (custom_objects or {}).get(identifier) or lookup(identifier)
        if custom is not None:
            return custom() if isinstance(custom, type) else custom
        cls = names.get(identifier.lower()) or classes.get(identifier)
        if cls is None:
            raise ValueError(f"unknown {what} {identifier!r} (choose from {sorted(names)})")
        return cls()
    if isinstance(identifier, dict) and "class_name" in identifier:
        name, config = identifier["class_name"], identifier.get("config") or {}
        custom = (custom_objects or {}).get(name) or lookup(name)
        if custom is not None:
            return custom.from_config(config)
        if name not in classes:
            raise ValueError(f"unknown {what} class {name!r}; pass custom_objects={{{name!r}: cls}}")
        return classes[name].from_config(dict(config))
    if callable(identifier):
        return identifier
    raise TypeError(f"{what} must be None, a name or a {base.__name__}, got {type(identifier).__name__}")
