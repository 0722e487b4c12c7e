"""`Module`: the base of every layer and model (parameters, modes, state dicts, configs)."""

from __future__ import annotations

import builtins
import math
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from .. import _core
from .._core import ShapeError, Tensor
from ..autograd import no_grad
from ..io import CheckpointError

# ferrograd's own public layer classes by name: the only classes a saved config may name
# without the caller's say-so (see `from_config`). User subclasses are not added, so a file
# cannot make the loading program construct its classes, nor can a user class called
# `Linear` replace ferrograd's in other files.
REGISTRY: dict[str, type[Module]] = {}


def _is_builtin(cls: type) -> bool:
    mod = cls.__module__
    return (mod == "ferrograd" or mod.startswith("ferrograd.")) and not cls.__name__.startswith("_")


def Parameter(t: Tensor) -> Tensor:  # noqa: N802  (PyTorch's name)
    """A leaf tensor that requires grad: what a module registers as a parameter."""
    return t.detach().requires_grad_(True)


class Module:
    """Base class of layers and models, PyTorch-shaped.

    Tensors assigned as attributes that require grad become parameters; modules become
    children; `register_buffer` adds state that is saved but not trained (running stats).

    >>> class Net(fg.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = fg.nn.Linear(4, 2)
    ...     def forward(self, x):
    ...         return self.fc(x).relu()
    """

    # set through object.__setattr__ in __init__ (declared here for type checkers)
    _parameters: OrderedDict[str, Tensor]
    _buffers: OrderedDict[str, Tensor]
    _modules: OrderedDict[str, Module]
    training: bool
    stop_training: bool
    optimizer: Any
    history: Any

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if _is_builtin(cls):
            REGISTRY[cls.__name__] = cls

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- registration -------------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError("call super().__init__() before assigning attributes in a Module")
        for d in (self._parameters, self._buffers, self._modules):
            d.pop(name, None)
        if isinstance(value, Module):
            self._modules[name] = value
        elif isinstance(value, Tensor) and value.requires_grad:
            if not value.is_leaf:
                raise ValueError(f"parameter '{name}' must be a leaf tensor; use Parameter(t) or t.detach()")
            self._parameters[name] = value
        elif isinstance(value, Tensor) and name in self.__dict__.get("_buffer_names", ()):
            self._buffers[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, t: Tensor | None) -> None:
        """Adds non-trained state (saved in the state dict), e.g. BatchNorm's running mean."""
        names = self.__dict__.setdefault("_buffer_names", set())
        names.add(name)
        object.__setattr__(self, name, t)
        if t is not None:
            self._buffers[name] = t

    # ---- calling ------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        """The computation; subclasses define it, and calling the module runs it."""
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---- traversal ----------------------------------------------------------------
    # As PyTorch's, the iterators yield a module or tensor used in several places (a tied
    # layer) once, at its first name, so an optimizer sees each parameter once;
    # `remove_duplicate=False` yields every occurrence (what `state_dict` stores).
    def children(self) -> Iterator[Module]:
        """The direct sub-modules (each once)."""
        for _, m in self.named_children():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """The direct sub-modules with their attribute names (each module once)."""
        seen: set[int] = set()
        for n, m in self._modules.items():
            if id(m) not in seen:
                seen.add(id(m))
                yield n, m

    def modules(self) -> Iterator[Module]:
        """This module and all its descendants, depth first, each once."""
        for _, m in self.named_modules():
            yield m

    def named_modules(
        self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for this module ("" for itself, or `prefix`) and its
        descendants, depth first; a module reached twice is yielded at its first name only,
        unless `remove_duplicate` is False (`memo` holds the ids of modules already yielded)."""
        if remove_duplicate:
            if memo is None:
                memo = set()
            if id(self) in memo:  # by identity (the tree keeps the modules alive)
                return
            memo.add(id(self))
        yield prefix, self
        for cn, m in self._modules.items():
            yield from m.named_modules(memo, f"{prefix}.{cn}" if prefix else cn, remove_duplicate)

    def _named_tensors(
        self, kind: str, prefix: str, recurse: bool, remove_duplicate: bool
    ) -> Iterator[tuple[str, Tensor]]:
        mods = (
            self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
            if recurse
            else [(prefix, self)]
        )
        seen: dict[int, Tensor] = {}  # (holds the tensors, so their ids stay unique)
        for mp, m in mods:
            for n, t in getattr(m, kind).items():
                if remove_duplicate:
                    if id(t) in seen:
                        continue
                    seen[id(t)] = t
                yield (f"{mp}.{n}" if mp else n), t

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        """(dotted name, parameter) for this module and (with `recurse`) its descendants,
        each parameter once unless `remove_duplicate` is False."""
        return self._named_tensors("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Tensor]:
        """All trainable tensors, each once, as an iterator (PyTorch's: `next(model.parameters())`
        works; wrap in `list()` to count or index them)."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        """(dotted name, buffer) for this module and (with `recurse`) its descendants
        (running statistics), each buffer once unless `remove_duplicate` is False."""
        return self._named_tensors("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        """All buffers (non-trained state) of this module and its descendants, each once, as
        an iterator."""
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def add_module(self, name: str, module: Module) -> None:
        """Registers `module` as the child `name` (as attribute assignment does). As
        PyTorch's, refuses names that are empty, contain a dot, or are taken by another
        attribute (`_modules`, `forward`, ...): such a name would overwrite the module's own
        machinery, which a name coming from a file must never do."""
        if not isinstance(module, Module):
            raise TypeError(f"add_module: expected a Module, got {type(module).__name__}")
        if not isinstance(name, str):
            raise TypeError(f"add_module: the name must be a str, got {type(name).__name__}")
        if not name or "." in name:
            raise KeyError(f"add_module: a module name must be non-empty and without dots, got {name!r}")
        if name not in self._modules and (name in self.__dict__ or hasattr(type(self), name)):
            raise KeyError(f"add_module: attribute '{name}' already exists")
        setattr(self, name, module)

    def register_parameter(self, name: str, t: Tensor) -> None:
        """Registers `t` as the trainable parameter `name` (made a leaf that requires grad)."""
        setattr(self, name, t if t.requires_grad and t.is_leaf else Parameter(t))

    def apply(self, fn) -> Module:
        """Calls `fn` on every descendant, then on this module (e.g. a custom init); returns self."""
        for m in self._modules.values():
            m.apply(fn)
        fn(self)
        return self

    def num_parameters(self) -> int:
        """Number of trainable scalars."""
        return sum(p.numel() for p in self.parameters())

    # ---- modes and grads ----------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Training mode (batch statistics, dropout on); returns self."""
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode (running statistics, dropout off); returns self."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clears the gradient of every parameter: drops it (the default, as PyTorch's), or
        with `set_to_none=False` fills it with zeros in place."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.zero_()

    def requires_grad_(self, on: bool = True) -> Module:
        """Turns gradients on or off for every parameter (freezing); returns the module."""
        for p in self.parameters():
            p.requires_grad = on
        return self

    def to(self, device) -> Module:
        """Moves parameters and buffers to `device` (or casts them to a dtype). A tensor
        shared by several modules stays shared."""
        moved: dict[int, tuple[Tensor, Tensor]] = {}  # id -> (old, new): old kept alive

        def move(t: Tensor, param: bool) -> Tensor:
            if id(t) not in moved:
                moved[id(t)] = (t, Parameter(t.detach().to(device)) if param else t.to(device))
            return moved[id(t)][1]

        for m in self.modules():
            for n, p in list(m._parameters.items()):
                setattr(m, n, move(p, True))
            for n, b in list(m._buffers.items()):
                m.register_buffer(n, move(b, False))
        return self

    def cpu(self) -> Module:
        """`to("cpu")`."""
        return self.to("cpu")

    def cuda(self, device=None) -> Module:
        """`to("gpu")`: ferrograd drives one GPU, which PyTorch scripts call CUDA (`device`
        may name it as None, 0, "cuda", "cuda:0" or "gpu")."""
        if device not in (None, 0, "cuda", "cuda:0", "gpu", "gpu:0"):
            raise ValueError(f"cuda: ferrograd drives one GPU; got device {device!r}")
        return self.to("gpu")

    def float(self) -> Module:
        """Parameters and buffers as float32."""
        return self.to(_core.dtype.float32)

    def double(self) -> Module:
        """Parameters and buffers as float64 (CPU only)."""
        return self.to(_core.dtype.float64)

    # ---- state --------------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, Tensor]:
        """Parameters and buffers by dotted name (detached handles to the live data). A
        tied module's tensors appear under each of its names, as in PyTorch."""
        sd: OrderedDict[str, Tensor] = OrderedDict()
        for n, p in self.named_parameters(remove_duplicate=False):
            sd[n] = p.detach()
        for n, b in self.named_buffers(remove_duplicate=False):
            sd[n] = b.detach()
        return sd

    def load_state_dict(self, state: dict, strict: bool = True) -> tuple[list[str], list[str]]:
        """Copies `state` into the parameters and buffers in place.

        With `strict` (the default) missing or unexpected keys are an error; a shape
        mismatch is always an error. Returns (missing, unexpected).
        """
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        wrong = [
            f"{k}: expected {tuple(own[k].shape)}, got {tuple(_shape(state[k]))}"
            for k in own
            if k in state and tuple(_shape(state[k])) != tuple(own[k].shape)
        ]
        problems = []
        if wrong:
            problems.append("size mismatch for " + "; ".join(wrong))
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if problems:
            err = ShapeError if wrong else KeyError
            msg = f"load_state_dict for {type(self).__name__}: " + " | ".join(problems)
            raise err(msg)
        with no_grad():
            for k, t in own.items():
                if k in state:
                    v = state[k]
                    t.copy_(v if isinstance(v, Tensor) else _core.from_numpy(_np(v)))
        return missing, unexpected

    # ---- config (for saving whole models) ------------------------------------------
    def get_config(self) -> dict:
        """Constructor arguments that rebuild this module (layers override this)."""
        raise NotImplementedError(
            f"{type(self).__name__} has no get_config(); save its state_dict() and rebuild it in code"
        )

    @classmethod
    def state_shapes(cls, *args: Any, **config: Any) -> dict[str, tuple[int, ...]] | None:
        """The state-dict names and shapes of the parameters and buffers `cls(**config)`
        would create, computed without building it (sub-module configs arrive as their own
        `state_shapes` dicts); None when unknown.

        Loading checks a file's tensors against these before building anything, so a small
        file cannot make it allocate a huge model. Every built-in layer defines it (a test
        compares it with what the constructor creates); a custom class may, and is
        otherwise built and checked afterwards."""
        return None

    # ---- printing -----------------------------------------------------------------
    def extra_repr(self) -> str:
        """The arguments shown in this module's repr line."""
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        if not self._modules:
            return lines[0] + ")"
        for n, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({n}): {sub}")
        return "\n".join(lines) + "\n)"

    def summary(self, input_shape: tuple[int, ...] | None = None, print_fn=print) -> str:
        """Prints (and returns) a table of layers, output shapes and parameter counts.

        Output shapes come from a forward pass of a batch of 2 in eval mode; `input_shape`
        (without the batch) defaults to the first Linear layer's input width.
        """
        from .layers import Linear  # noqa: PLC0415

        if input_shape is None:
            first = next((m for m in self.modules() if isinstance(m, Linear)), None)
            if first is None:
                raise ValueError("summary: pass input_shape (no Linear layer to infer it from)")
            input_shape = (first.in_features,)
        rows = []
        was_training = self.training
        self.eval()
        x = _core.zeros([2, *input_shape], None)
        with no_grad():
            leaves = list(self._modules.items()) if self._modules else [(type(self).__name__, self)]
            if type(self).__name__ != "Sequential":
                leaves = [(type(self).__name__, self)]
            for name, m in leaves:
                x = m(x)
                n = sum(p.numel() for p in m.parameters())
                rows.append(
                    (f"{name} ({type(m).__name__})", "(None, " + ", ".join(map(str, x.shape[1:])) + ")", n)
                )
        self.train(was_training)
        w = max([len(r[0]) for r in rows] + [20])
        sep = "=" * (w + 40)
        out = [sep, f"{'Layer (type)':<{w}}  {'Output Shape':<22}{'Param #':>14}", sep]
        out += [f"{a:<{w}}  {b:<22}{c:>14,}" for a, b, c in rows]
        total = self.num_parameters()
        out += [sep, f"Total params: {total:,}", f"Trainable params: {total:,}", sep]
        text = "\n".join(out)
        if print_fn is not None:
            print_fn(text)
        return text

    # ---- convenience training API (Keras-shaped) -------------------------------------
    def compile(
        self, optimizer="adam", loss="cross_entropy", metrics=None, lr: builtins.float | None = None
    ) -> None:
        """Keras's compile: the optimizer (a name or an instance), loss and learning rate that
        `fit` and `evaluate` use when they are not given. A named optimizer is created at the
        first `fit` and kept by later ones, so its state carries over as in Keras (it is
        created anew if the parameters changed, e.g. after `.to("gpu")`). `metrics` may name
        "accuracy" ("acc"), which classification losses report anyway."""
        from .. import losses as _losses  # noqa: PLC0415

        _losses.get(loss)  # an unknown loss fails here, not at fit
        for m in metrics or []:
            if m not in ("accuracy", "acc"):
                raise ValueError(f"compile: unknown metric {m!r}; classification reports accuracy itself")
        object.__setattr__(self, "_compiled", {"optimizer": optimizer, "loss": loss, "lr": lr})

    def _compiled_optimizer(self):
        """The optimizer `compile` asked for, created (or recreated) for the current parameters."""
        from .. import optim as _optim  # noqa: PLC0415

        c = self.__dict__["_compiled"]
        spec = c["optimizer"]
        if not isinstance(spec, str):
            return spec
        params = list(self.parameters())
        held = self.__dict__.get("_compiled_opt")
        if held is None or [id(p) for g in held.param_groups for p in g["params"]] != [id(p) for p in params]:
            held = _optim.get(spec, params, c["lr"])
            object.__setattr__(self, "_compiled_opt", held)
        return held

    def fit(self, x, y, **kwargs):
        """Trains this model; see `ferrograd.train.fit`. Arguments not given come from
        `compile`, when it was called."""
        from ..train import fit  # noqa: PLC0415

        if "_compiled" in self.__dict__:
            kwargs.setdefault("loss", self.__dict__["_compiled"]["loss"])
            if "optimizer" not in kwargs:
                kwargs["optimizer"] = self._compiled_optimizer()
        return fit(self, x, y, **kwargs)

    def evaluate(self, x, y, **kwargs):
        """Loss and metric on (x, y); see `ferrograd.train.evaluate` (the loss from `compile`
        when not given)."""
        from ..train import evaluate  # noqa: PLC0415

        if "_compiled" in self.__dict__:
            kwargs.setdefault("loss", self.__dict__["_compiled"]["loss"])
        return evaluate(self, x, y, **kwargs)

    def predict(self, x, **kwargs):
        """Model outputs for x in eval mode; see `ferrograd.train.predict`."""
        from ..train import predict  # noqa: PLC0415

        return predict(self, x, **kwargs)

    def save(self, path, optimizer=None) -> None:
        """Saves weights, architecture config and optionally optimizer state (safetensors)."""
        from ..io import save  # noqa: PLC0415

        save(self, path, optimizer=optimizer)


def _shape(v):
    return v.shape if hasattr(v, "shape") else ()


def _np(v):
    import numpy as np  # noqa: PLC0415

    return np.ascontiguousarray(v)


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
