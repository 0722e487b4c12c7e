"""`Module`: the base of every layer and model (parameters, modes, state dicts, configs)."""

from __future__ import annotations

import builtins
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from .. import _core
from .._core import ShapeError, Tensor
from ..autograd import no_grad

# Layer classes by name, so a saved config can rebuild its model (see `from_config`).
REGISTRY: dict[str, type[Module]] = {}


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
    def children(self) -> Iterator[Module]:
        """The direct sub-modules."""
        return iter(self._modules.values())

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """The direct sub-modules with their attribute names."""
        return iter(self._modules.items())

    def modules(self) -> Iterator[Module]:
        """This module and all its descendants, depth first."""
        yield self
        for m in self._modules.values():
            yield from m.modules()

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """(dotted name, parameter) for this module and its descendants."""
        for n, p in self._parameters.items():
            yield prefix + n, p
        for cn, m in self._modules.items():
            yield from m.named_parameters(prefix + cn + ".")

    def parameters(self) -> Iterator[Tensor]:
        """All trainable tensors, as an iterator (PyTorch's: `next(model.parameters())`
        works; wrap in `list()` to count or index them)."""
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """(dotted name, buffer) for this module and its descendants (running statistics)."""
        for n, b in self._buffers.items():
            yield prefix + n, b
        for cn, m in self._modules.items():
            yield from m.named_buffers(prefix + cn + ".")

    def buffers(self) -> Iterator[Tensor]:
        """All buffers (non-trained state) of this module and its descendants, as an
        iterator."""
        for _, b in self.named_buffers():
            yield b

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for this module ("" for itself) and its descendants."""
        yield prefix, self
        for cn, m in self._modules.items():
            yield from m.named_modules(f"{prefix}.{cn}" if prefix else cn)

    def add_module(self, name: str, module: Module) -> None:
        """Registers `module` as the child `name` (as attribute assignment does)."""
        if not isinstance(module, Module):
            raise TypeError(f"add_module: expected a Module, got {type(module).__name__}")
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
        """Moves parameters and buffers to `device` (or casts them to a dtype)."""
        for m in self.modules():
            for n, p in list(m._parameters.items()):
                q = p.detach().to(device)
                if q is not p:
                    setattr(m, n, Parameter(q))
            for n, b in list(m._buffers.items()):
                m.register_buffer(n, b.to(device))
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
        """Parameters and buffers by dotted name (detached handles to the live data)."""
        sd: OrderedDict[str, Tensor] = OrderedDict()
        for n, p in self.named_parameters():
            sd[n] = p.detach()
        for n, b in self.named_buffers():
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
    """A JSON-able description of a module tree built from registered layers."""
    cfg = m.get_config()
    conv: dict[str, Any] = {}
    for k, v in cfg.items():
        if isinstance(v, Module):
            conv[k] = to_config(v)
        elif isinstance(v, (list, tuple)) and v and all(isinstance(i, Module) for i in v):
            conv[k] = [to_config(i) for i in v]
        else:
            conv[k] = v
    return {"class": type(m).__name__, "config": conv}


def from_config(cfg: dict) -> Module:
    """Rebuilds a module from `to_config`'s output (parameters freshly initialized)."""
    if not isinstance(cfg, dict) or "class" not in cfg:
        raise ValueError(f"from_config: not a module config: {cfg!r:.80}")
    cls = REGISTRY.get(cfg["class"])
    if cls is None:
        raise ValueError(f"from_config: unknown layer class '{cfg['class']}'")
    kwargs: dict[str, Any] = {}
    for k, v in cfg.get("config", {}).items():
        if isinstance(v, dict) and "class" in v:
            kwargs[k] = from_config(v)
        elif isinstance(v, list) and v and all(isinstance(i, dict) and "class" in i for i in v):
            kwargs[k] = [from_config(i) for i in v]
        else:
            kwargs[k] = v
    return cls(**kwargs)
