"""Model configs: `to_config` describes a module tree as plain JSON data, `from_config`
rebuilds it (only ferrograd's own layers unless the caller names others), `config_state`
gives the tensors a config implies without building anything, and `REGISTRY` names the
layer classes a config may use freely.

`fg.load` uses them to rebuild a saved model; `Module.get_config` and the
`Module.state_shapes` classmethod are the per-class hooks they call.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import CheckpointError
from ._registry import REGISTRY
from .module import Module

__all__ = ["REGISTRY", "CheckpointError", "to_config", "from_config", "config_state"]


def to_config(m: Module) -> dict:
    """A JSON-able description of a module tree: `{"class": name, "config": kwargs}`, with
    sub-modules as nested configs.

    A module that appears twice (a tied layer) is described once; that description gets an
    `"id"` and the later places hold `{"ref": id}`, so `from_config` ties them again. A
    class that is not one of ferrograd's layers is marked `"custom": true`: loading it takes
    the caller's `custom_objects`."""
    return _to_config(m, {}, [0])


def _to_config(m: Module, seen: dict[int, tuple[Module, dict]], next_id: list[int]) -> dict:
    if id(m) in seen:
        first = seen[id(m)][1]
        if "id" not in first:
            first["id"] = next_id[0]
            next_id[0] += 1
        return {"ref": first["id"]}
    cfg = m.get_config()
    out: dict[str, Any] = {"class": type(m).__name__}
    if REGISTRY.get(type(m).__name__) is not type(m):
        out["custom"] = True
    seen[id(m)] = (m, out)  # (holds m, so its id stays unique)
    conv: dict[str, Any] = {}
    for k, v in cfg.items():
        if isinstance(v, Module):
            conv[k] = _to_config(v, seen, next_id)
        elif isinstance(v, (list, tuple)) and v and all(isinstance(i, Module) for i in v):
            conv[k] = [_to_config(i, seen, next_id) for i in v]
        else:
            conv[k] = v
    out["config"] = conv
    return out


class _Node:
    """One module of a checked config: its class, and its arguments with sub-modules as
    nodes (a tied module is one node reached twice)."""

    __slots__ = ("cls", "kwargs")

    def __init__(self, cls: type[Module], kwargs: dict[str, Any]):
        self.cls, self.kwargs = cls, kwargs


def _is_module_config(v) -> bool:
    return isinstance(v, dict) and ("class" in v or "ref" in v)


def _plain(v, where: str, depth: int = 0) -> Any:
    """`v` if it is plain JSON data (None, bool, int, finite float, str, and lists and
    str-keyed dicts of them), else CheckpointError."""
    if depth > 32:
        raise CheckpointError(f"from_config: {where} nests too deeply")
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise CheckpointError(f"from_config: {where} is {v}, not a finite number")
        return v
    if isinstance(v, (list, tuple)):  # (tuples only from callers: JSON has none)
        return type(v)(_plain(i, where, depth + 1) for i in v)
    if isinstance(v, dict) and all(isinstance(k, str) for k in v):
        return {k: _plain(i, where, depth + 1) for k, i in v.items()}
    raise CheckpointError(f"from_config: {where} is a {type(v).__name__}, not plain JSON data")


def _lookup(name: str, custom: bool, custom_objects: dict[str, type] | None) -> type[Module]:
    if custom_objects and name in custom_objects:
        return custom_objects[name]  # the caller's explicit choice
    if custom:
        raise CheckpointError(
            f"from_config: '{name}' is a custom class, not one of ferrograd's layers; pass "
            f"custom_objects={{'{name}': {name}}} to build it"
        )
    cls = REGISTRY.get(name)
    if cls is None:
        raise CheckpointError(
            f"from_config: unknown layer class '{name}' (only ferrograd's layers are built from a "
            "config; pass other classes as custom_objects={'Name': cls})"
        )
    return cls


def _plan(cfg, custom_objects, ids: dict[int, _Node], depth: int = 0) -> _Node:
    """Checks a config (structure, classes, argument names and values, tie references)
    and returns its root node, without building anything."""
    if depth > 32:
        raise CheckpointError("from_config: the config nests modules too deeply")
    if not isinstance(cfg, dict):
        raise CheckpointError(f"from_config: not a module config: {cfg!r:.80}")
    if "ref" in cfg:  # a module that appeared earlier (a tied layer)
        ref = cfg["ref"]
        if set(cfg) != {"ref"} or not isinstance(ref, int) or isinstance(ref, bool) or ref not in ids:
            raise CheckpointError(f"from_config: {cfg!r:.80} does not refer to a module defined before it")
        return ids[ref]
    extra = set(cfg) - {"class", "config", "custom", "id"}
    if "class" not in cfg or extra:
        raise CheckpointError(f"from_config: not a module config: {cfg!r:.80}")
    name, kwargs_in, custom = cfg["class"], cfg.get("config", {}), cfg.get("custom", False)
    if not isinstance(name, str) or not isinstance(kwargs_in, dict) or not isinstance(custom, bool):
        raise CheckpointError(f"from_config: not a module config: {cfg!r:.80}")
    cls = _lookup(name, custom, custom_objects)
    kwargs: dict[str, Any] = {}
    for k, v in kwargs_in.items():
        # public argument names only: a private or dunder name would reach the module's
        # internals (`_modules`, `_parameters`, ...)
        if not isinstance(k, str) or not k.isidentifier() or k.startswith("_"):
            raise CheckpointError(f"from_config: {name} argument name {k!r:.40} is not allowed")
        where = f"{name} argument '{k}'"
        if _is_module_config(v):
            kwargs[k] = _plan(v, custom_objects, ids, depth + 1)
        elif isinstance(v, list) and v and any(_is_module_config(i) for i in v):
            if not all(_is_module_config(i) for i in v):
                raise CheckpointError(f"from_config: {where} mixes modules and other values")
            kwargs[k] = [_plan(i, custom_objects, ids, depth + 1) for i in v]
        else:
            kwargs[k] = _plain(v, where)
    node = _Node(cls, kwargs)
    if "id" in cfg:
        ident = cfg["id"]
        if not isinstance(ident, int) or isinstance(ident, bool) or ident in ids:
            raise CheckpointError(f"from_config: {name} has a missing, repeated or non-int id {ident!r:.40}")
        ids[ident] = node  # only now: a reference from inside its own subtree would be a cycle
    return node


def _check_custom_objects(custom_objects) -> dict[str, type[Module]] | None:
    if custom_objects is None:
        return None
    if not isinstance(custom_objects, dict):
        raise TypeError(
            f"custom_objects must be a dict of name: Module class, got {type(custom_objects).__name__}"
        )
    for k, v in custom_objects.items():
        if not (isinstance(k, str) and isinstance(v, type) and issubclass(v, Module)):
            raise TypeError(f"custom_objects: {k!r} must map a name to a Module subclass, got {v!r:.60}")
    return custom_objects


def from_config(cfg: dict, custom_objects: dict[str, type[Module]] | None = None) -> Module:
    """Rebuilds a module from `to_config`'s output (parameters freshly initialized).

    Only ferrograd's own layers are built, unless `custom_objects` ({"Name": cls}, as
    Keras's) names other classes; arguments must be public names with plain JSON values.
    Anything else raises CheckpointError (a ValueError) naming it."""
    root = _plan(cfg, _check_custom_objects(custom_objects), {})
    return _build(root, {})


def _build(node: _Node, built: dict[int, Module]) -> Module:
    if id(node) in built:  # a tied module: the same object again
        return built[id(node)]
    kwargs = {
        k: _build(v, built) if isinstance(v, _Node) else [_build(i, built) for i in v] if _is_nodes(v) else v
        for k, v in node.kwargs.items()
    }
    try:
        m = node.cls(**kwargs)
    except Exception as e:  # whatever the arguments did: a config that does not build
        raise CheckpointError(
            f"from_config: building {node.cls.__name__} failed: {type(e).__name__}: {e}"
        ) from None
    built[id(node)] = m
    return m


def _is_nodes(v) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(i, _Node) for i in v)


def config_state(
    cfg: dict, custom_objects: dict[str, type[Module]] | None = None
) -> dict[str, tuple[int, ...]] | None:
    """The state-dict names and shapes `from_config(cfg)` would create, computed from the
    config alone (each class's `state_shapes`), or None when a custom class cannot say.
    Checks the config as `from_config` does, and builds nothing."""
    root = _plan(cfg, _check_custom_objects(custom_objects), {})
    return _shapes(root, {})


def _shapes(node: _Node, memo: dict[int, dict | None]) -> dict[str, tuple[int, ...]] | None:
    if id(node) in memo:
        return memo[id(node)]
    kwargs: dict[str, Any] = {}
    for k, v in node.kwargs.items():
        if isinstance(v, _Node) or _is_nodes(v):
            sub = [_shapes(i, memo) for i in (v if isinstance(v, list) else [v])]
            if any(s is None for s in sub):
                memo[id(node)] = None
                return None
            kwargs[k] = sub if isinstance(v, list) else sub[0]
        else:
            kwargs[k] = v
    cls = node.cls
    # a class's own method, or a built-in's: a custom subclass inherits the method of a
    # parent whose arguments may mean something else
    if REGISTRY.get(cls.__name__) is not cls and "state_shapes" not in cls.__dict__:
        memo[id(node)] = None
        return None
    try:
        out = cls.state_shapes(**kwargs)
    except Exception as e:  # the arguments are wrong for this class
        raise CheckpointError(
            f"from_config: {cls.__name__} arguments are invalid: {type(e).__name__}: {e}"
        ) from None
    if out is not None:
        out = {str(k): tuple(s) for k, s in out.items()}
    memo[id(node)] = out
    return out
