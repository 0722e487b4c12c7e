"""Optimizers (SGD with momentum/Nesterov, Adam, AdamW, RMSprop, Adagrad, Adadelta, NAdam) and
learning-rate schedules.

SGD, Adam, AdamW, RMSprop and Adadelta update every parameter of a group in one call into
Rust; Adagrad and NAdam are written with in-place tensor operations (the same code runs on the
CPU and the GPU). The update formulas are PyTorch's, so hyperparameters carry over unchanged.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

from .. import _core, _graphs
from .._core import Tensor
from ..autograd import no_grad


def _name(dtype) -> str:
    return str(dtype).rsplit(".", 1)[-1]  # "float32", not "ferrograd.float32"


def _real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


# What each built-in hyperparameter may be (PyTorch's own checks, plus finiteness): a NaN or
# negative value from a file or a typo would otherwise train silently into garbage.
_HYPERPARAMETERS: dict[str, tuple[str, Any]] = {
    "lr": ("a finite number > 0", lambda v: _real(v) and v > 0),
    "eps": ("a finite number >= 0", lambda v: _real(v) and v >= 0),
    "weight_decay": ("a finite number >= 0", lambda v: _real(v) and v >= 0),
    "momentum": ("a finite number >= 0", lambda v: _real(v) and v >= 0),
    "dampening": ("a finite number", _real),
    "alpha": ("a finite number >= 0", lambda v: _real(v) and v >= 0),
    "betas": (
        "two numbers in [0, 1)",
        lambda v: isinstance(v, (tuple, list)) and len(v) == 2 and all(_real(b) and 0 <= b < 1 for b in v),
    ),
    "nesterov": ("True or False", lambda v: isinstance(v, bool)),
    "centered": ("True or False", lambda v: isinstance(v, bool)),
    "lr_decay": ("a finite number >= 0", lambda v: _real(v) and v >= 0),
    "initial_accumulator_value": ("a finite number >= 0", lambda v: _real(v) and v >= 0),
    "rho": ("a number in [0, 1]", lambda v: _real(v) and 0 <= v <= 1),
    "momentum_decay": ("a finite number >= 0", lambda v: _real(v) and v >= 0),
    "decoupled_weight_decay": ("True or False", lambda v: isinstance(v, bool)),
    "amsgrad": ("True or False", lambda v: isinstance(v, bool)),
    "maximize": ("True or False", lambda v: isinstance(v, bool)),
}


def _ascent(g: dict, live: list) -> list:
    """`live` with each gradient negated where the group maximizes (PyTorch's `maximize=`:
    the update climbs the objective; the stored `.grad` stays as it is)."""
    if not g.get("maximize"):
        return live
    return [(i, p, -gr) for i, p, gr in live]


class _Gate:
    """A gated step's found-inf flag and skipped-step count, as the update kernels take them:
    the step's first kernel call also counts a skipped step (`count`), the others do not."""

    def __init__(self, found: Tensor, skipped: Tensor) -> None:
        self.found, self.skipped, self.count = found, skipped, True

    def kwargs(self) -> dict:
        """The next kernel call's keyword arguments."""
        kw = {"found": self.found, "skipped": self.skipped, "count": self.count}
        self.count = False
        return kw


def _gateable(p: Tensor, grad: Tensor) -> bool:
    """Whether a gated multi-tensor kernel can take this parameter and gradient: float32
    (at rest as words, not packed halves), contiguous, on the GPU."""
    f32 = _core.dtype.float32
    return (
        p.device != "cpu"
        and p.dtype == f32
        and grad.dtype == f32
        and grad.device == p.device
        and p.is_contiguous()
        and grad.is_contiguous()
    )


class Optimizer:
    """Base class: parameter groups, per-parameter state, zero_grad and state dicts."""

    # the per-parameter state each optimizer keeps: "tensor" (shaped as its parameter),
    # "count" (an int >= 0) or "fraction" (a number in [0, 1]); None (a subclass that does
    # not say) leaves state unchecked
    state_kinds: dict[str, str] | None = None
    # whether a captured GPU step (fg.gpu.graph) may contain this optimizer's step: its
    # update must be GPU kernels whose only step-dependent constants the graph rebuilds
    # (Adam's bias corrections); optimizers that compute scalars in Python per step are not
    _capturable = False
    # whether a GradScaler may gate this optimizer's step on the GPU (`_gated_step`): its
    # update is a multi-tensor kernel that skips itself where the scaler found inf or NaN
    _gated = False
    # the count of steps a gate skipped on the device (a float32 tensor of one element,
    # made at the first gated step), and whether it may be nonzero since the host last
    # folded it into the state's step counts
    _skipped: Tensor | None = None
    _skipped_dirty = False

    def __init__(self, params: Iterable, defaults: dict):
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        groups: list[dict[str, Any]] = params if isinstance(params[0], dict) else [{"params": params}]
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        for g in groups:
            self.add_param_group(g)
        self.state: dict[int, dict] = {}  # keyed by the parameter's index across groups

    @property
    def lr(self) -> float:
        """The learning rate of the first group (the usual single-group case)."""
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        for g in self.param_groups:
            g["lr"] = float(value)

    def add_param_group(self, group: dict) -> None:
        """Adds a group of parameters (``{"params": ..., "lr": ...}``; missing settings take
        the optimizer's defaults), as PyTorch's: e.g. layers unfrozen while fine-tuning. A
        parameter may belong to one group only."""
        if not isinstance(group, dict) or "params" not in group:
            raise ValueError(
                f"{type(self).__name__}: a parameter group must be a dict with a 'params' entry, "
                f"got {group!r:.80}"
            )
        ps = group["params"]
        g = {**self.defaults, **group, "params": [ps] if isinstance(ps, Tensor) else list(ps)}
        lr = float(g["lr"])
        seen = {id(p) for old in self.param_groups for p in old["params"]}
        for p in g["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: parameters must be Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{type(self).__name__}: can only optimize leaf tensors")
            if id(p) in seen:
                raise ValueError(f"{type(self).__name__}: a parameter appears in more than one group")
            seen.add(id(p))
        self._fold_skipped()  # a new parameter starts counting from here
        if lr <= 0 or not math.isfinite(lr):
            raise ValueError(f"{type(self).__name__}: learning rate must be positive, got {g['lr']}")
        self._check_hyperparameters(g)
        self.param_groups.append(g)

    def _check_hyperparameters(self, g: dict) -> None:
        """Refuses a group whose built-in hyperparameters are out of range (ValueError)."""
        for k, (want, ok) in _HYPERPARAMETERS.items():
            if k in self.defaults and k in g and not ok(g[k]):
                raise ValueError(f"{type(self).__name__}: {k} must be {want}, got {g[k]!r:.60}")
        if g.get("nesterov") and (g.get("momentum", 0) <= 0 or g.get("dampening", 0) != 0):
            raise ValueError(f"{type(self).__name__}: Nesterov momentum needs momentum > 0 and dampening = 0")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clears every parameter's gradient: drops it (the default, as PyTorch's), or with
        `set_to_none=False` fills it with zeros in place."""
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad.zero_()

    def step(self) -> None:
        """Updates every parameter that has a gradient."""
        graph = _graphs.capturing
        if graph is not None and not self._capturable:
            raise RuntimeError(
                f"{type(self).__name__}.step: cannot be captured in a GPU graph (it computes per-step "
                "factors in Python); SGD, Adam, AdamW, RMSprop and Adadelta can"
            )
        self._fold_skipped()
        i = 0
        counted = []
        for g in self.param_groups:
            live = []
            for p in g["params"]:
                grad = p.grad  # read once: each read builds a new Python handle
                if grad is not None:
                    live.append((i, p, grad))
                i += 1
            if live:
                self._update(g, live)
                if graph is not None:
                    counted += [self.state[j] for j, _, _ in live if "step" in self.state.get(j, {})]
        if graph is not None and counted:
            graph._count_steps(counted)

    def _update(self, group: dict, live: list, gate: _Gate | None = None) -> bool | None:
        """Updates `live` ((index, parameter, gradient) of `group`). With `gate` the update
        is gated on the device, and the result says whether it was (False: nothing done,
        nothing counted)."""
        raise NotImplementedError

    def _gated_step(self, found: Tensor) -> bool:
        """One step gated on the GPU by a GradScaler's found-inf flag `found` (0-d float32):
        every parameter moves, or none does where the flag is set, decided by the kernels
        without reading the flag back (PyTorch's fused optimizers with a scaler). Skipped
        steps do not count: Adam's bias corrections take them off on the device, and the
        host's counts are corrected when next read. False, with nothing done, where this
        optimizer or its tensors cannot be gated (the caller reads the flag and decides).
        Every parameter needs a gradient (the skipped count is shared)."""
        if not self._gated or found.device == "cpu":
            return False
        lives = []
        i = 0
        for g in self.param_groups:
            live = []
            for p in g["params"]:
                grad = p.grad
                if grad is None or not _gateable(p, grad):
                    return False
                live.append((i, p, grad))
                i += 1
            lives.append((g, live))
        if self._skipped is None:
            if _graphs.capturing is not None:
                raise RuntimeError(
                    f"{type(self).__name__}.step: a GradScaler's first step must not be inside a captured "
                    "GPU step (it creates the optimizer's device state); run one step before capturing"
                )
            self._skipped = _core.zeros([1], _core.dtype.float32).to(found.device)
        gate = _Gate(found, self._skipped)  # a skipped step counts itself in its first kernel
        for n, (g, live) in enumerate(lives):
            if not self._update(g, live, gate):
                if n:
                    raise RuntimeError(f"{type(self).__name__}.step: a gated step stopped half way")
                return False
        self._skipped_dirty = True
        graph = _graphs.capturing
        if graph is not None:
            graph._count_steps([st for st in self.state.values() if "step" in st])
        return True

    def _skipped_count(self) -> int:
        """The steps gates skipped since the host's counts were last corrected (a read-back)."""
        if not self._skipped_dirty or self._skipped is None:
            return 0
        return int(self._skipped.item())

    def _fold_skipped(self) -> None:
        """Takes the steps gates skipped off the host's step counts (one read-back, only
        after gated steps): before an ungated step or a new parameter, which the shared
        count would otherwise take them off too."""
        k = self._skipped_count()
        if k:
            for st in self.state.values():
                if "step" in st:
                    st["step"] -= k
            with no_grad():
                assert self._skipped is not None
                self._skipped.zero_()
        self._skipped_dirty = False

    def _buf(self, i: int, p: Tensor, key: str) -> Tensor:
        st = self.state.setdefault(i, {})
        if key not in st:
            if _graphs.capturing is not None:
                raise RuntimeError(
                    f"{type(self).__name__}.step: its state '{key}' is created on the first step, which "
                    "must not be inside a captured GPU step (each replay would reset it); run one "
                    "step before capturing, as with torch.cuda.graph"
                )
            z = _core.zeros(list(p.shape), p.dtype)
            st[key] = z if p.device == "cpu" else z.to(p.device)  # state lives beside its parameter
        return st[key]

    def state_dict(self) -> dict:
        """Hyperparameters and state tensors (for checkpoints that resume identically)."""
        groups = [{k: v for k, v in g.items() if k != "params"} for g in self.param_groups]
        state = self.state
        k = self._skipped_count()
        if k:  # the counts as they stand, without moving the host's books under a captured graph
            state = {i: {**st, "step": st["step"] - k} if "step" in st else st for i, st in state.items()}
        return {"class": type(self).__name__, "param_groups": groups, "state": state}

    def load_state_dict(self, sd: dict) -> None:
        """Restores `state_dict()` output; the parameter layout must match. State tensors are
        copied (the optimizer updates them in place) onto their parameter's device, as
        PyTorch does, so a checkpoint loaded on the CPU resumes a GPU model.

        Everything is checked before anything changes: hyperparameters (finite, in range),
        and each state entry (a known key; a tensor with its parameter's shape and dtype, so
        it can live on the parameter's device, or a count). ValueError names what is wrong."""
        self._apply_state(*self._checked_state(sd))

    def _checked_state(self, sd: dict) -> tuple[list[dict], dict[int, dict[str, Any]]]:
        """(new hyperparameters per group, new state) from `sd`, checked; changes nothing."""
        name = type(self).__name__
        if not isinstance(sd, dict) or not {"param_groups", "state"} <= set(sd):
            raise ValueError("load_state_dict: expected a dict with param_groups and state")
        if sd.get("class") not in (None, name):
            raise ValueError(f"load_state_dict: state is for {sd['class']!r:.40}, not {name}")
        saved_groups = sd["param_groups"]
        if not isinstance(saved_groups, (list, tuple)) or len(saved_groups) != len(self.param_groups):
            raise ValueError("load_state_dict: the number of parameter groups differs")
        groups = []
        for g, saved in zip(self.param_groups, saved_groups):
            if not isinstance(saved, dict):
                raise ValueError("load_state_dict: a parameter group is not a dict")
            saved = {k: v for k, v in saved.items() if k != "params"}
            if isinstance(saved.get("betas"), list):
                saved["betas"] = tuple(saved["betas"])
            try:
                self._check_hyperparameters({**g, **saved})
            except ValueError as e:
                raise ValueError(f"load_state_dict: {e}") from None
            groups.append(saved)
        params = [p for g in self.param_groups for p in g["params"]]
        if not isinstance(sd["state"], dict):
            raise ValueError("load_state_dict: state is not a dict")
        state: dict[int, dict[str, Any]] = {}
        for i, st in sd["state"].items():
            # an int, or its decimal string (JSON keys are strings); not a bool or a float
            if isinstance(i, str) and i.isascii() and i.isdigit():
                i = int(i)
            if not isinstance(i, int) or isinstance(i, bool):
                raise ValueError(f"load_state_dict: state key {i!r:.40} is not a parameter index")
            if not 0 <= i < len(params) or i in state:
                raise ValueError(
                    f"load_state_dict: state for parameter {i}, but there are {len(params)} (or it repeats)"
                )
            if not isinstance(st, dict):
                raise ValueError(f"load_state_dict: the state of parameter {i} is not a dict")
            p = params[i]
            state[i] = {}
            for k, v in st.items():
                state[i][k] = self._checked_entry(i, p, k, v)
        return groups, state

    def _checked_entry(self, i: int, p: Tensor, k, v):
        """State entry `k` of parameter `i` (`p`), checked, tensors copied to `p`'s device."""
        where = f"load_state_dict: state '{k}' of parameter {i}"
        kind = None if self.state_kinds is None else self.state_kinds.get(k)
        if self.state_kinds is not None and kind is None:
            raise ValueError(f"{where} is not state {type(self).__name__} keeps ({sorted(self.state_kinds)})")
        if kind == "count":
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{where} must be an int >= 0, got {v!r:.40}")
            return v
        if kind == "fraction":
            if not (_real(v) and 0 <= v <= 1):
                raise ValueError(f"{where} must be a number in [0, 1], got {v!r:.40}")
            return float(v)
        if not isinstance(v, Tensor):
            if kind == "tensor":
                raise ValueError(f"{where} must be a tensor, got {type(v).__name__}")
            return v
        if tuple(v.shape) != tuple(p.shape):
            raise ValueError(f"{where} has shape {tuple(v.shape)}, the parameter {tuple(p.shape)}")
        if v.dtype != p.dtype:
            # the update kernels take state of the parameter's dtype (and the GPU has no float64)
            raise ValueError(
                f"{where} has dtype {_name(v.dtype)}, the parameter {_name(p.dtype)} (on {p.device})"
            )
        return v.detach().clone().to(p.device)

    def _apply_state(self, groups: list[dict], state: dict[int, dict[str, Any]]) -> None:
        """Installs what `_checked_state` returned."""
        for g, saved in zip(self.param_groups, groups):
            g.update(saved)
        self.state = state
        if self._skipped_dirty:  # the loaded counts are exact
            with no_grad():
                assert self._skipped is not None
                self._skipped.zero_()
            self._skipped_dirty = False

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v}" for k, v in self.param_groups[0].items() if k != "params")
        return f"{type(self).__name__}({hp})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and weight decay.

    >>> opt = fg.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    """

    state_kinds = {"momentum_buffer": "tensor"}

    _capturable = True
    _gated = True

    def __init__(
        self,
        params,
        lr: float = 0.01,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
    ):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                dampening=dampening,
                nesterov=nesterov,
                weight_decay=weight_decay,
                maximize=maximize,
            ),
        )

    def _update(self, g: dict, live: list, gate: _Gate | None = None) -> bool | None:
        live = _ascent(g, live)
        hp = dict(
            lr=g["lr"],
            momentum=g["momentum"],
            dampening=g["dampening"],
            nesterov=g["nesterov"],
            weight_decay=g["weight_decay"],
        )
        if gate is not None:
            # a skipped first step must leave the momentum buffers unseeded: not gateable
            if g["momentum"] != 0 and any("momentum_buffer" not in self.state.get(i, {}) for i, _, _ in live):
                return False
            bufs = [self.state[i]["momentum_buffer"] for i, _, _ in live] if g["momentum"] != 0 else []
            ps, grads = [p for _, p, _ in live], [gr for _, _, gr in live]
            return _core.sgd_step(ps, grads, bufs, False, **hp, **gate.kwargs())
        if g["momentum"] == 0:
            _core.sgd_step([p for _, p, _ in live], [gr for _, _, gr in live], [], False, **hp)
            return None
        # split before updating: the first pass creates buffers the second would then see
        new = [(i, p, gr) for i, p, gr in live if "momentum_buffer" not in self.state.get(i, {})]
        old = [(i, p, gr) for i, p, gr in live if "momentum_buffer" in self.state.get(i, {})]
        for first, part in ((True, new), (False, old)):
            if part:
                bufs = [self._buf(i, p, "momentum_buffer") for i, p, _ in part]
                _core.sgd_step([p for _, p, _ in part], [gr for _, _, gr in part], bufs, first, **hp)
        return None


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction; `weight_decay` adds an L2 term to the gradient.
    `amsgrad` divides by the running maximum of the second moment (Reddi et al.), `maximize`
    climbs the objective, both as PyTorch's.

    >>> opt = fg.optim.Adam(model.parameters(), lr=0.001)
    """

    decoupled = False
    state_kinds = {"exp_avg": "tensor", "exp_avg_sq": "tensor", "max_exp_avg_sq": "tensor", "step": "count"}

    _capturable = True
    _gated = True

    def __init__(
        self,
        params,
        lr: float = 0.001,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ):
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {betas}")
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=tuple(betas),
                eps=eps,
                weight_decay=weight_decay,
                amsgrad=amsgrad,
                maximize=maximize,
            ),
        )

    def _gated_step(self, found: Tensor) -> bool:
        # the AMSGrad update is composed of tensor ops, which a device-side gate cannot skip
        if any(g.get("amsgrad") for g in self.param_groups):
            return False
        return super()._gated_step(found)

    def _update(self, g: dict, live: list, gate: _Gate | None = None) -> bool | None:
        live = _ascent(g, live)
        if g.get("amsgrad"):
            return self._amsgrad(g, live, gate)
        # one pass, grouped by step count (parameters that joined later have fewer steps):
        # (parameters, gradients, first moments, second moments) per count
        by_step: dict[int, tuple[list, list, list, list]] = {}
        state = self.state
        counted = []
        for i, p, gr in live:
            st = state.get(i)
            if st is None or "exp_avg" not in st or "exp_avg_sq" not in st:
                self._buf(i, p, "exp_avg")
                self._buf(i, p, "exp_avg_sq")
                st = state[i]
            n = st.get("step", 0) + 1
            counted.append((st, n))
            part = by_step.get(n)
            if part is None:
                part = by_step[n] = ([], [], [], [])
            part[0].append(p)
            part[1].append(gr)
            part[2].append(st["exp_avg"])
            part[3].append(st["exp_avg_sq"])
        b1, b2 = g["betas"]
        for k, (step, (ps, grads, exp_avg, exp_avg_sq)) in enumerate(by_step.items()):
            done = _core.adam_step(
                ps,
                grads,
                exp_avg,
                exp_avg_sq,
                step,
                g["lr"],
                b1,
                b2,
                g["eps"],
                g["weight_decay"],
                self.decoupled,
                **({} if gate is None else gate.kwargs()),
            )
            if not done:
                if k:
                    raise RuntimeError(f"{type(self).__name__}.step: a gated step stopped half way")
                return False
        for st, n in counted:
            st["step"] = n
        return True

    def _amsgrad(self, g: dict, live: list, gate: _Gate | None) -> bool | None:
        """AMSGrad, in tensor ops (so on either device), PyTorch's update order: the second
        moment's running maximum, not the moment itself, sets the step size."""
        if gate is not None:
            return False
        if _graphs.capturing is not None:
            raise RuntimeError(
                f"{type(self).__name__}.step: amsgrad=True cannot be captured in a GPU graph "
                "(its step factors are computed in Python)"
            )
        b1, b2 = g["betas"]
        lr, wd, eps = g["lr"], g["weight_decay"], g["eps"]
        with no_grad():
            for i, p, gr in live:
                m = self._buf(i, p, "exp_avg")
                v = self._buf(i, p, "exp_avg_sq")
                vmax = self._buf(i, p, "max_exp_avg_sq")
                st = self.state[i]
                n = st.get("step", 0) + 1
                gr = gr.to(p.dtype)
                if wd and self.decoupled:
                    p.mul_(1 - lr * wd)
                elif wd:
                    gr = gr + p * wd
                m.mul_(b1).add_(gr * (1 - b1))
                v.mul_(b2).add_(gr * gr * (1 - b2))
                vmax.copy_(vmax.maximum(v))
                denom = vmax.sqrt().div_(math.sqrt(1 - b2**n)).add_(eps)
                p.add_((m / denom) * (-lr / (1 - b1**n)))
                st["step"] = n
        return True


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * weight_decay."""

    decoupled = True

    def __init__(
        self,
        params,
        lr: float = 0.001,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)


class RMSprop(Optimizer):
    """RMSprop (Hinton), optionally centered and with momentum, as torch.optim.RMSprop."""

    state_kinds = {"square_avg": "tensor", "momentum_buffer": "tensor", "grad_avg": "tensor"}

    _capturable = True

    def __init__(
        self,
        params,
        lr: float = 0.01,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ):
        super().__init__(
            params,
            dict(
                lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered
            ),
        )

    def _update(self, g: dict, live: list, gate: _Gate | None = None) -> bool | None:
        ps = [p for _, p, _ in live]
        sq = [self._buf(i, p, "square_avg") for i, p, _ in live]
        mb = [self._buf(i, p, "momentum_buffer") for i, p, _ in live] if g["momentum"] > 0 else []
        ga = [self._buf(i, p, "grad_avg") for i, p, _ in live] if g["centered"] else []
        _core.rmsprop_step(
            ps,
            [gr for _, _, gr in live],
            sq,
            mb,
            ga,
            g["lr"],
            g["alpha"],
            g["eps"],
            g["weight_decay"],
            g["momentum"],
            g["centered"],
        )
        return None


class _Elementwise(Optimizer):
    """Base of the optimizers written with in-place tensor operations (no Rust kernel of
    their own): the same code updates CPU and GPU parameters, in their own dtype."""

    def _update(self, g: dict, live: list, gate: _Gate | None = None) -> bool | None:
        with no_grad():  # parameters are leaves that require grad: in-place needs no_grad
            for i, p, grad in live:
                st = self.state.setdefault(i, {})
                st["step"] = st.get("step", 0) + 1  # per parameter, as Adam: late ones start at 1
                if g["weight_decay"] != 0 and not g.get("decoupled_weight_decay", False):
                    grad = grad.add(p.mul(g["weight_decay"]))  # L2: a new tensor, p.grad untouched
                self._step_one(g, i, p, grad, st)
        return None

    def _step_one(self, g: dict, i: int, p: Tensor, grad: Tensor, st: dict) -> None:
        raise NotImplementedError


class Adagrad(_Elementwise):
    """Adagrad (Duchi, Hazan & Singer), as torch.optim.Adagrad: each coordinate's step is
    divided by the root of the sum of its squared gradients, so frequently updated
    coordinates slow down while rare ones keep a large step.

    At a parameter's step t (from 1), with ``g`` its gradient:
    ``g += weight_decay * p``; ``sum += g * g`` (``sum`` starts at
    ``initial_accumulator_value``); ``p -= lr / (1 + (t - 1) * lr_decay) * g / (sqrt(sum) + eps)``.
    The state is ``sum`` and ``step``, as PyTorch's.

    >>> opt = fg.optim.Adagrad(model.parameters(), lr=0.01)
    """

    state_kinds = {"sum": "tensor", "step": "count"}

    def __init__(
        self,
        params,
        lr: float = 0.01,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ):
        super().__init__(
            params,
            dict(
                lr=lr,
                lr_decay=lr_decay,
                weight_decay=weight_decay,
                initial_accumulator_value=initial_accumulator_value,
                eps=eps,
            ),
        )

    def _step_one(self, g: dict, i: int, p: Tensor, grad: Tensor, st: dict) -> None:
        fresh = "sum" not in st
        acc = self._buf(i, p, "sum")
        if fresh and g["initial_accumulator_value"] != 0:
            acc.fill_(float(g["initial_accumulator_value"]))
        clr = g["lr"] / (1 + (st["step"] - 1) * g["lr_decay"])
        acc.add_(grad.mul(grad))
        std = acc.sqrt().add_(g["eps"])
        p.add_(grad.div(std), alpha=-clr)


class Adadelta(Optimizer):
    """Adadelta (Zeiler), as torch.optim.Adadelta: the step's size comes from running averages
    of squared gradients and of squared past steps, so ``lr`` (default 1.0) only scales it.

    At each step, with ``g`` the gradient: ``g += weight_decay * p``;
    ``square_avg = rho * square_avg + (1 - rho) * g * g``;
    ``delta = sqrt(acc_delta + eps) / sqrt(square_avg + eps) * g``;
    ``acc_delta = rho * acc_delta + (1 - rho) * delta * delta``; ``p -= lr * delta``.
    The state is ``square_avg``, ``acc_delta`` and ``step``, as PyTorch's.

    >>> opt = fg.optim.Adadelta(model.parameters())
    """

    state_kinds = {"square_avg": "tensor", "acc_delta": "tensor", "step": "count"}

    _capturable = True
    _gated = True

    def __init__(
        self,
        params,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay))

    def _update(self, g: dict, live: list, gate: _Gate | None = None) -> bool | None:
        # one fused call into Rust (one pass over each parameter, its gradient and state):
        # the in-place tensor formulas took five passes and a copy each, 12.7 ms a step for
        # the MNIST CNN's 1.2 million parameters
        done = _core.adadelta_step(
            [p for _, p, _ in live],
            [gr for _, _, gr in live],
            [self._buf(i, p, "square_avg") for i, p, _ in live],
            [self._buf(i, p, "acc_delta") for i, p, _ in live],
            g["lr"],
            g["rho"],
            g["eps"],
            g["weight_decay"],
            **({} if gate is None else gate.kwargs()),
        )
        if done:
            for i, _, _ in live:
                st = self.state[i]
                st["step"] = st.get("step", 0) + 1
        return done


class NAdam(_Elementwise):
    """NAdam (Dozat): Adam with Nesterov momentum, as torch.optim.NAdam, including its
    momentum schedule ``mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))``.

    At a parameter's step t (from 1), with ``g`` its gradient: ``g += weight_decay * p``
    (or, with ``decoupled_weight_decay=True``, ``p *= 1 - lr * weight_decay``, as AdamW);
    ``mu_product *= mu_t``; ``m = beta1 * m + (1 - beta1) * g``;
    ``v = beta2 * v + (1 - beta2) * g * g``; ``denom = sqrt(v / (1 - beta2 ** t)) + eps``;
    ``p -= lr * (1 - mu_t) / (1 - mu_product) * g / denom``;
    ``p -= lr * mu_{t+1} / (1 - mu_product * mu_{t+1}) * m / denom``.
    The state is ``exp_avg`` (m), ``exp_avg_sq`` (v), ``mu_product`` and ``step``, as PyTorch's.

    >>> opt = fg.optim.NAdam(model.parameters(), lr=0.002)
    """

    state_kinds = {"exp_avg": "tensor", "exp_avg_sq": "tensor", "mu_product": "fraction", "step": "count"}

    def __init__(
        self,
        params,
        lr: float = 0.002,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
    ):
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=tuple(betas) if isinstance(betas, (list, tuple)) else betas,
                eps=eps,
                weight_decay=weight_decay,
                momentum_decay=momentum_decay,
                decoupled_weight_decay=decoupled_weight_decay,
            ),
        )

    def _step_one(self, g: dict, i: int, p: Tensor, grad: Tensor, st: dict) -> None:
        lr, (b1, b2), psi, t = g["lr"], g["betas"], g["momentum_decay"], st["step"]
        if g["decoupled_weight_decay"] and g["weight_decay"] != 0:
            p.mul_(1 - lr * g["weight_decay"])
        mu = b1 * (1.0 - 0.5 * 0.96 ** (t * psi))
        mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
        st["mu_product"] = st.get("mu_product", 1.0) * mu
        mu_product_next = st["mu_product"] * mu_next
        m = self._buf(i, p, "exp_avg")
        v = self._buf(i, p, "exp_avg_sq")
        m.mul_(b1).add_(grad, alpha=1 - b1)
        v.mul_(b2).add_(grad.mul(grad), alpha=1 - b2)
        denom = v.div(1 - b2**t).sqrt().add_(g["eps"])
        p.add_(grad.div(denom), alpha=-lr * (1 - mu) / (1 - st["mu_product"]))
        p.add_(m.div(denom), alpha=-lr * mu_next / (1 - mu_product_next))


OPTIMIZERS = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
    "adadelta": Adadelta,
    "nadam": NAdam,
}


def get(name_or_opt, params, lr: float | None = None) -> Optimizer:
    """An optimizer from a name (a key of `OPTIMIZERS`: 'adam', 'sgd', 'rmsprop', 'adamw',
    'adagrad', 'adadelta', 'nadam'), with PyTorch's default learning rate unless `lr` is
    given, or an instance (its learning rate set to `lr` when given)."""
    if isinstance(name_or_opt, Optimizer):
        if lr is not None:
            name_or_opt.lr = lr
        return name_or_opt
    key = str(name_or_opt).lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer '{name_or_opt}' (choose from {sorted(OPTIMIZERS)})")
    kw = {} if lr is None else {"lr": lr}
    if key == "sgd" and lr is None:
        kw["lr"] = 0.01
    return OPTIMIZERS[key](params, **kw)


# the schedules live in optim.lr_scheduler, as PyTorch's; the names are here too
from . import lr_scheduler  # noqa: E402
from .lr_scheduler import (  # noqa: E402
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LRScheduler,
    MultiStepLR,
    OneCycleLR,
    ReduceLROnPlateau,
    StepLR,
)

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "Adadelta",
    "NAdam",
    "OPTIMIZERS",
    "get",
    "lr_scheduler",
    "LRScheduler",
    "StepLR",
    "MultiStepLR",
    "ExponentialLR",
    "LambdaLR",
    "OneCycleLR",
    "CosineAnnealingLR",
    "ReduceLROnPlateau",
]
