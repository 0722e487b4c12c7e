"""`Module`: the base of every layer and model, PyTorch's plain module (parameters, buffers,
children, modes, devices, state dicts, printing).

Keras's training methods (`compile`/`fit`/`evaluate`/`predict`/`save`) belong to the
training layer above `nn`: `ferrograd.train.Model` (a `Module` subclass) has them, and the
training layer gives them to `nn.Sequential` when ferrograd is imported (on other modules it
adds deprecated forwarding ones, for now). Configs (`to_config`, `from_config`, `REGISTRY`)
live in `nn.config`. Nothing here imports the layers above `nn`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from .. import _core
from .._core import ShapeError, Tensor
from ..autograd import no_grad
from ..errors import CheckpointError as CheckpointError  # (reachable here before it moved)
from ._registry import REGISTRY as REGISTRY
from ._registry import register as _register

_MOVED_TO_CONFIG = ("to_config", "from_config", "config_state")


def __getattr__(name: str) -> Any:
    # `from ferrograd.nn.module import to_config` (the functions' home before `nn.config`)
    if name in _MOVED_TO_CONFIG:
        from . import config  # noqa: PLC0415

        return getattr(config, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def Parameter(t: Tensor) -> Tensor:  # noqa: N802  (PyTorch's name)
    """A leaf tensor that requires grad: what a module registers as a parameter."""
    return t.detach().requires_grad_(True)


class RemovableHandle:
    """What `register_forward_hook` returns: `remove()` unregisters the hook (also on
    leaving a `with` block)."""

    _next_id = 0

    def __init__(self, module: Module, kind: str):
        self.module, self.kind = module, kind
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        """Unregisters the hook (a second call does nothing)."""
        self.module._remove_hook(self.kind, self.id)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


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

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        _register(cls)  # ferrograd's own layers only (see `nn.config.REGISTRY`)

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- registration -------------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError("call super().__init__() before assigning attributes in a Module")
        keep = self._modules if isinstance(value, Module) else None
        for d in (self._parameters, self._buffers, self._modules):
            if d is not keep:  # a child replaced by a module keeps its place (as PyTorch's)
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
        hooks = self.__dict__.get("_hooks")  # absent until a hook is registered: the fast path
        if hooks is None:
            return self.forward(*args, **kwargs)
        for hook in list(hooks["pre"].values()):
            got = hook(self, args)
            if got is not None:
                args = got if isinstance(got, tuple) else (got,)
        out = self.forward(*args, **kwargs)
        for hook in list(hooks["post"].values()):
            got = hook(self, args, out)
            if got is not None:
                out = got
        return out

    def register_forward_pre_hook(self, hook) -> RemovableHandle:
        """Calls `hook(module, args)` before each forward pass, as PyTorch's: it may return
        new positional arguments (a tuple, or one value) or None to keep them. Returns a
        handle whose `remove()` unregisters it. A `Sequential` runs a hooked layer on its own
        (it does not fuse it with its neighbour), so the hook sees that layer's input."""
        return self._add_hook("pre", hook)

    def register_forward_hook(self, hook) -> RemovableHandle:
        """Calls `hook(module, args, output)` after each forward pass, as PyTorch's: it may
        return a replacement output, or None to keep it. Returns a handle whose `remove()`
        unregisters it. A `Sequential` runs a hooked layer on its own (unfused), so the hook
        sees that layer's own output."""
        return self._add_hook("post", hook)

    def _add_hook(self, kind: str, hook) -> RemovableHandle:
        if not callable(hook):
            raise TypeError(
                f"{type(self).__name__}: a forward hook must be callable, got {type(hook).__name__}"
            )
        hooks = self.__dict__.get("_hooks")
        if hooks is None:
            hooks = {"pre": OrderedDict(), "post": OrderedDict()}
            object.__setattr__(self, "_hooks", hooks)
        handle = RemovableHandle(self, kind)
        hooks[kind][handle.id] = hook
        return handle

    def _remove_hook(self, kind: str, hid: int) -> None:
        hooks = self.__dict__.get("_hooks")
        if hooks is None:
            return
        hooks[kind].pop(hid, None)
        if not hooks["pre"] and not hooks["post"]:
            del self.__dict__["_hooks"]  # back to the fast path (and to fusion in Sequential)

    @property
    def has_forward_hooks(self) -> bool:
        """Whether a forward (pre-)hook is registered on this module."""
        return "_hooks" in self.__dict__

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
        """Moves parameters and buffers to `device`, or casts them to a dtype: as PyTorch's,
        a dtype applies to the floating-point ones only (a BatchNorm's int64 step count
        stays int64). A tensor shared by several modules stays shared."""
        moved: dict[int, tuple[Tensor, Tensor]] = {}  # id -> (old, new): old kept alive
        is_dtype = isinstance(device, _core.dtype)

        def conv(t: Tensor) -> Tensor:
            if is_dtype and not t.dtype.is_floating_point:
                return t
            return t.to(device)

        def move(t: Tensor, param: bool) -> Tensor:
            if id(t) not in moved:
                moved[id(t)] = (t, Parameter(conv(t.detach())) if param else conv(t))
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

    def half(self) -> Module:
        """Floating-point parameters and buffers as float16 (CPU only: stored in half
        precision, computed in float32 and rounded, as PyTorch's CPU kernels do)."""
        return self.to(_core.dtype.float16)

    def bfloat16(self) -> Module:
        """Floating-point parameters and buffers as bfloat16 (CPU only, like `half`)."""
        return self.to(_core.dtype.bfloat16)

    # ---- state --------------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, Tensor]:
        """Parameters and buffers by dotted name (detached handles to the live data), in
        PyTorch's order: each module's own parameters, then its buffers, then its children's,
        depth first. A tied module's tensors appear under each of its names, as in PyTorch."""
        sd: OrderedDict[str, Tensor] = OrderedDict()
        for prefix, m in self.named_modules(remove_duplicate=False):
            dot = prefix + "." if prefix else ""
            for n, p in m._parameters.items():
                if p is not None:
                    sd[dot + n] = p.detach()
            for n, b in m._buffers.items():
                if b is not None:
                    sd[dot + n] = b.detach()
        return sd

    def load_state_dict(self, state: dict, strict: bool = True) -> tuple[list[str], list[str]]:
        """Copies `state` into the parameters and buffers in place.

        With `strict` (the default) missing or unexpected keys are an error; a shape
        mismatch is always an error. Returns (missing, unexpected).
        """
        own = self.state_dict()
        # state a layer can do without (`_optional_state`: BatchNorm's batch counter)
        optional = {
            f"{prefix}.{k}" if prefix else k
            for prefix, m in self.named_modules(remove_duplicate=False)
            for k in getattr(m, "_optional_state", ())
        }
        missing = [k for k in own if k not in state and k not in optional]
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
        if input_shape is None:
            linear = REGISTRY["Linear"]  # nn.Linear (defined in `layers`, which builds on this module)
            first: Any = next((m for m in self.modules() if isinstance(m, linear)), None)
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


def _shape(v):
    return v.shape if hasattr(v, "shape") else ()


def _np(v):
    import numpy as np  # noqa: PLC0415

    return np.ascontiguousarray(v)
