"""Keras's optimizers with Keras's defaults and update rules: `SGD`, `RMSprop`, `Adam`,
`AdamW`, `Nadam`, `Adamax`, `Adagrad`, `Adadelta`.

They are created without a parameter list (`optimizers.RMSprop()`, or `compile(optimizer=
"rmsprop")`) and bind to a model's weights when it trains. The formulas are Keras 3's (and
tf.keras 2's); the defaults too: learning rate 0.001 (SGD 0.01), epsilon 1e-7, RMSprop's rho
0.9, Adadelta's rho 0.95, Adagrad's initial accumulator 0.1. `lr=` is accepted for
`learning_rate=` (Keras 2) and `decay=` applies Keras 2's time decay, lr / (1 + decay * t).

Where Keras's rule is PyTorch's in other variables, a step is one call into ferrograd's
fused Rust kernels, as with `ferrograd.optim`:

- SGD: Keras keeps the velocity m = momentum m - lr g, PyTorch the buffer b = momentum b + g;
  m = -lr b while lr is constant, and the buffers are rescaled when it changes.
- RMSprop divides by sqrt(v + epsilon) (epsilon inside the root; PyTorch adds it outside):
  the kernel runs with epsilon 0 on v + epsilon, kept up to date by adding
  (1 - rho) epsilon / rho before each step.
- Adam divides by sqrt(v) + epsilon after folding the bias corrections into the step size
  ("epsilon hat"); PyTorch's form with epsilon / sqrt(1 - beta_2**t) is the same update.

Nadam, Adamax, Adagrad, Adadelta and AMSGrad run as a few in-place tensor ops per weight.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

from ... import _core
from ..._core import Tensor
from ...autograd import no_grad
from .. import _scope
from . import schedules
from .schedules import LearningRateSchedule


def _number(cls: str, name: str, v, lo: float = 0.0, hi: float = math.inf, lo_open: bool = False) -> float:
    ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
    if ok:
        ok = (v > lo if lo_open else v >= lo) and v <= hi
    if not ok:
        raise ValueError(f"{cls}: invalid value for argument `{name}`: {v!r}")
    return float(v)


class LearningRate:
    """The value `optimizer.learning_rate` (and Keras 2's `optimizer.lr`) gives: a number
    (`float(lr)`, arithmetic, comparisons) that can be assigned in place, as Keras's
    variable: `lr.assign(1e-4)`, `keras.backend.set_value(opt.lr, 1e-4)`."""

    def __init__(self, opt: Optimizer):
        self._opt = opt

    def __float__(self) -> float:
        return float(self._opt._current_lr())

    def numpy(self) -> np.float32:
        """The value as a NumPy float32."""
        return np.float32(float(self))

    def assign(self, value) -> None:
        """Sets the optimizer's learning rate."""
        self._opt.learning_rate = value

    def __repr__(self) -> str:
        return f"<learning_rate={float(self):g}>"

    def __format__(self, spec: str) -> str:
        return format(float(self), spec)

    def __mul__(self, o):
        return float(self) * float(o)

    __rmul__ = __mul__

    def __truediv__(self, o):
        return float(self) / float(o)

    def __rtruediv__(self, o):
        return float(o) / float(self)

    def __add__(self, o):
        return float(self) + float(o)

    __radd__ = __add__

    def __sub__(self, o):
        return float(self) - float(o)

    def __rsub__(self, o):
        return float(o) - float(self)

    def __lt__(self, o):
        return float(self) < float(o)

    def __le__(self, o):
        return float(self) <= float(o)

    def __gt__(self, o):
        return float(self) > float(o)

    def __ge__(self, o):
        return float(self) >= float(o)

    def __eq__(self, o):
        try:
            return float(self) == float(o)
        except (TypeError, ValueError):
            return NotImplemented

    def __hash__(self) -> int:
        return hash(float(self))


class Optimizer:
    """Base class of Keras's optimizers.

    Subclasses name their per-weight slots (`slots`) and define `_update(params, grads, lr,
    step)`. The optimizer binds to weights at its first step (`build`), from `fit` or from
    `apply_gradients([(grad, weight), ...])`."""

    slots: tuple[str, ...] = ()
    _fill: dict[str, float] = {}  # slot initial values other than 0

    def __init__(
        self,
        learning_rate=0.001,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name: str | None = None,
        **kwargs,
    ):
        cls = type(self).__name__
        if "lr" in kwargs:  # Keras 2's name
            learning_rate = kwargs.pop("lr")
        decay = kwargs.pop("decay", 0.0) or 0.0
        if kwargs:
            raise ValueError(f"{cls}: argument(s) not recognized: {kwargs}")
        if use_ema:
            raise ValueError(f"{cls}: use_ema=True is not supported")
        if gradient_accumulation_steps:
            raise ValueError(f"{cls}: gradient_accumulation_steps is not supported")
        if loss_scale_factor is not None:
            raise ValueError(f"{cls}: loss_scale_factor is not supported (ferrograd trains in float32)")
        if sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(
                f"{cls}: only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. Received: "
                f"clipnorm={clipnorm}, clipvalue={clipvalue}, global_clipnorm={global_clipnorm}"
            )
        self.name = name or cls.lower()
        self.clipnorm = None if clipnorm is None else _number(cls, "clipnorm", clipnorm, 0.0, lo_open=True)
        self.clipvalue = (
            None if clipvalue is None else _number(cls, "clipvalue", clipvalue, 0.0, lo_open=True)
        )
        self.global_clipnorm = (
            None
            if global_clipnorm is None
            else _number(cls, "global_clipnorm", global_clipnorm, 0.0, lo_open=True)
        )
        self.weight_decay = None if weight_decay is None else _number(cls, "weight_decay", weight_decay)
        self.decay = _number(cls, "decay", decay)
        self._lr: Any = None
        self.learning_rate = learning_rate
        self.iterations = 0
        self.built = False
        self._vars: list[Tensor] = []
        self._state: dict[str, list[Tensor]] = {}
        self._no_decay: set[int] = set()

    # ---- learning rate ------------------------------------------------------------------
    @property
    def learning_rate(self) -> LearningRate:
        """The learning rate at the current step (settable; a schedule's is not)."""
        return LearningRate(self)

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        cls = type(self).__name__
        if isinstance(value, LearningRate):
            value = float(value)
        if isinstance(value, LearningRateSchedule) or (
            callable(value) and not isinstance(value, numbers.Real)
        ):
            self._lr = value
            return
        if isinstance(self._lr, LearningRateSchedule):
            raise TypeError(
                f"{cls} was created with a LearningRateSchedule as its learning_rate, hence its learning "
                "rate "
                "is not settable; create it with a float learning_rate to set it"
            )
        self._lr = _number(cls, "learning_rate", value, 0.0, lo_open=True)

    lr = learning_rate  # Keras 2's name

    def _current_lr(self) -> float:
        lr = self._lr
        if isinstance(lr, LearningRateSchedule):
            value = float(lr(self.iterations))
        elif callable(lr):
            value = float(lr())
        else:
            value = float(lr)
        if self.decay:
            value = value / (1.0 + self.decay * self.iterations)
        return value

    # ---- binding ------------------------------------------------------------------------
    @property
    def variables(self) -> list[Tensor]:
        """The optimizer's state tensors (slots for every weight, in order)."""
        return [t for name in self.slots for t in self._state.get(name, [])]

    def build(self, var_list: Iterable[Tensor]) -> None:
        """Creates the slots for `var_list` (the weights it will update)."""
        params = list(var_list)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: can only optimize Tensors, got {type(p).__name__}")
        self._vars = params
        self._state = {
            name: [self._zeros(p, self._fill.get(name, 0.0)) for p in params] for name in self.slots
        }
        self._reset_extra()
        self.built = True

    def _reset_extra(self) -> None:
        """Clears optimizer-wide state besides the slots (subclasses)."""

    @staticmethod
    def _zeros(p: Tensor, value: float = 0.0) -> Tensor:
        z = _core.full(list(p.shape), value, p.dtype) if value else _core.zeros(list(p.shape), p.dtype)
        return z if p.device == "cpu" else z.to(p.device)

    def _bind(self, params: list[Tensor]) -> None:
        """Makes the optimizer update `params`: builds it the first time; after a model moved
        (`.to(device)` makes new weight tensors) the state follows the weights; a different
        set of weights starts fresh."""
        if not self.built:
            self.build(params)
            return
        if [id(p) for p in params] == [id(p) for p in self._vars]:
            return
        same = len(params) == len(self._vars) and all(
            tuple(a.shape) == tuple(b.shape) for a, b in zip(params, self._vars)
        )
        if not same:
            self.build(params)
            return
        self._vars = list(params)
        for name, ts in self._state.items():
            self._state[name] = [t if t.device == p.device else t.to(p.device) for t, p in zip(ts, params)]

    def exclude_from_weight_decay(self, var_list=None, var_names=None) -> None:
        """Weights (tensors) the decoupled weight decay skips."""
        if var_names:
            raise ValueError("exclude_from_weight_decay: var_names is not supported; pass var_list")
        self._no_decay |= {id(v) for v in var_list or []}

    # ---- stepping -----------------------------------------------------------------------
    def apply_gradients(self, grads_and_vars) -> int:
        """Updates each variable with its gradient: `[(grad, var), ...]`. Returns the step count."""
        pairs = list(grads_and_vars)
        grads = [g for g, _ in pairs]
        return self.apply(grads, [v for _, v in pairs])

    def apply(self, grads, trainable_variables=None) -> int:
        """Updates `trainable_variables` (the ones it was built with by default) with `grads`."""
        if trainable_variables is None:
            if not self.built:
                raise ValueError(f"{type(self).__name__}: call build(variables) before apply(grads)")
            trainable_variables = self._vars
        variables = list(trainable_variables)
        if not self.built:
            self.build(variables)
        index = {id(p): i for i, p in enumerate(self._vars)}
        unknown = [v for v in variables if id(v) not in index]
        if unknown:
            raise ValueError(
                f"{type(self).__name__}: unknown variable of shape {tuple(unknown[0].shape)}: this optimizer "
                "was built for other weights (create a new optimizer for another model)"
            )
        live = [(index[id(v)], g) for g, v in zip(grads, variables) if g is not None]
        self._step(live)
        return self.iterations

    def _fit_step(self) -> None:
        """One step from the gradients in each bound weight's `.grad` (what fit runs)."""
        self._step([(i, p.grad) for i, p in enumerate(self._vars) if p.grad is not None])

    def _step(self, live: list[tuple[int, Tensor]]) -> None:
        if not live:
            self.iterations += 1
            return
        lr = self._current_lr()
        with no_grad():
            idx = [i for i, _ in live]
            grads = self._clipped([g for _, g in live])
            params = [self._vars[i] for i in idx]
            if self.weight_decay:
                for p in params:
                    if id(p) not in self._no_decay:
                        p.mul_(1.0 - self.weight_decay * lr)
            self._update(idx, params, grads, lr, self.iterations + 1)
        self.iterations += 1

    def _clipped(self, grads: list[Tensor]) -> list[Tensor]:
        if self.clipnorm:
            c = self.clipnorm
            return [g * (c / ((g * g).sum().sqrt().clamp(c, None))) for g in grads]
        if self.global_clipnorm:
            c = self.global_clipnorm
            total = None
            for g in grads:
                s = (g * g).sum()
                total = s if total is None else total + s
            assert total is not None
            scale = c / total.sqrt().clamp(c, None)
            return [g * (scale if scale.device == g.device else scale.to(g.device)) for g in grads]
        if self.clipvalue:
            return [g.clamp(-self.clipvalue, self.clipvalue) for g in grads]
        return grads

    def _slot(self, name: str, idx: list[int]) -> list[Tensor]:
        return [self._state[name][i] for i in idx]

    def _update(
        self, idx: list[int], params: list[Tensor], grads: list[Tensor], lr: float, step: int
    ) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define _update")

    # ---- config and state ---------------------------------------------------------------
    def get_config(self) -> dict:
        """The constructor arguments, Keras's names (for saving a compiled model)."""
        lr = self._lr
        if isinstance(lr, LearningRateSchedule):
            lr_cfg: Any = schedules.serialize(lr)
        elif callable(lr):
            raise ValueError(f"{type(self).__name__}: a learning rate given as a function cannot be saved")
        else:
            lr_cfg = float(lr)
        cfg = {
            "name": self.name,
            "learning_rate": lr_cfg,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue,
        }
        if self.decay:
            cfg["decay"] = self.decay
        return cfg

    @classmethod
    def from_config(cls, config: dict) -> Optimizer:
        """Rebuilds the optimizer from `get_config()`."""
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)

    def _extra_state(self) -> dict[str, float]:
        """Optimizer-wide numbers besides `iterations` that a checkpoint must keep."""
        return {}

    def _set_extra_state(self, state: dict[str, float]) -> None:
        """Restores `_extra_state()`."""

    # ---- checkpoints (`fg.save(model, path, optimizer=opt)` and Keras's save) ----------
    def state_dict(self) -> dict:
        """The optimizer's state, in ferrograd.optim's checkpoint form: the config, the step
        count and the optimizer-wide numbers in `param_groups`, the slots per weight index
        in `state` (the kernels' forms: RMSprop's velocity includes epsilon, and SGD's and
        RMSprop's momentum buffers are scaled by 1/lr; `keras_slots()` gives Keras's)."""
        group = {"config": self.get_config(), "iterations": self.iterations, "extra": self._extra_state()}
        state: dict[int, dict[str, Any]] = {}
        for name, ts in self._state.items():
            for i, t in enumerate(ts):
                state.setdefault(i, {})[name] = t
        return {"class": type(self).__name__, "param_groups": [group], "state": state}

    def load_state_dict(self, sd: dict) -> None:
        """Restores `state_dict()` output (the optimizer must be bound to weights of the same
        shapes: built, or trained once). Everything is checked before anything changes."""
        self._apply_state(*self._checked_state(sd))

    def _checked_state(self, sd: dict) -> tuple[int, dict, dict[str, list[Tensor]]]:
        name = type(self).__name__
        if not isinstance(sd, dict) or not {"param_groups", "state"} <= set(sd):
            raise ValueError("load_state_dict: expected a dict with param_groups and state")
        if sd.get("class") not in (None, name):
            raise ValueError(f"load_state_dict: state is for {sd['class']!r:.40}, not {name}")
        groups = sd["param_groups"]
        if not isinstance(groups, (list, tuple)) or len(groups) != 1 or not isinstance(groups[0], dict):
            raise ValueError("load_state_dict: expected one parameter group")
        g = groups[0]
        it = g.get("iterations", 0)
        if not isinstance(it, int) or isinstance(it, bool) or it < 0:
            raise ValueError(f"load_state_dict: iterations must be an int >= 0, got {it!r:.40}")
        extra = g.get("extra", {}) or {}
        if not isinstance(extra, dict) or not all(
            isinstance(k, str)
            and isinstance(v, (int, float))
            and not isinstance(v, bool)
            and math.isfinite(v)
            for k, v in extra.items()
        ):
            raise ValueError("load_state_dict: malformed optimizer-wide state")
        if not self.built:
            raise ValueError(f"load_state_dict: {name} is not bound to weights yet (build it, or train once)")
        slots: dict[str, list[Tensor]] = {k: list(v) for k, v in self._state.items()}
        state = sd["state"]
        if not isinstance(state, dict):
            raise ValueError("load_state_dict: state is not a dict")
        for i, entry in state.items():
            if isinstance(i, str) and i.isdigit():
                i = int(i)
            if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(self._vars):
                raise ValueError(
                    f"load_state_dict: state for weight {i!r:.40}, but there are {len(self._vars)}"
                )
            if not isinstance(entry, dict):
                raise ValueError(f"load_state_dict: the state of weight {i} is not a dict")
            p = self._vars[i]
            for k, v in entry.items():
                if k not in self._state:
                    raise ValueError(
                        f"load_state_dict: '{k}' is not a slot {name} keeps ({sorted(self._state)})"
                    )
                if not isinstance(v, Tensor) or tuple(v.shape) != tuple(p.shape) or v.dtype != p.dtype:
                    raise ValueError(f"load_state_dict: slot '{k}' of weight {i} does not match its weight")
                slots[k][i] = v.detach().clone().to(p.device)
        return it, extra, slots

    def _apply_state(self, iterations: int, extra: dict, slots: dict[str, list[Tensor]]) -> None:
        self.iterations = iterations
        self._state = slots
        self._set_extra_state(extra)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} learning_rate={float(self.learning_rate):g}>"


class _Velocity:
    """Mixin for kernels whose buffers hold Keras's lr-scaled velocity divided by lr."""

    _scaled_lr: float | None = None

    def _rescale(self, name: str, lr: float) -> None:
        # The buffers hold -m / lr (SGD) or m / lr (RMSprop) for the lr of the last step:
        # a new lr scales them so that lr * buffer stays Keras's velocity m.
        prev = self._scaled_lr
        if prev is not None and prev != lr:
            for b in self._state.get(name, []):  # type: ignore[attr-defined]
                b.mul_(prev / lr)
        self._scaled_lr = lr


class SGD(_Velocity, Optimizer):
    """Gradient descent with Keras's momentum: m = momentum * m - lr * g; w += m (Nesterov:
    w += momentum * m - lr * g). Defaults: learning_rate 0.01, momentum 0."""

    def __init__(self, learning_rate=0.01, momentum: float = 0.0, nesterov: bool = False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.momentum = _number("SGD", "momentum", momentum, 0.0, 1.0)
        if not isinstance(nesterov, bool):
            raise ValueError(f"SGD: nesterov must be True or False, got {nesterov!r}")
        self.nesterov = nesterov
        self.slots = ("momentum",) if self.momentum else ()

    def _reset_extra(self) -> None:
        self._scaled_lr = None

    def _update(self, idx, params, grads, lr, step) -> None:
        if not self.momentum:
            _core.sgd_step(params, grads, [], False, lr=lr)
            return
        self._rescale("momentum", lr)
        _core.sgd_step(
            params,
            grads,
            self._slot("momentum", idx),
            False,
            lr=lr,
            momentum=self.momentum,
            nesterov=self.nesterov,
        )

    def keras_slots(self) -> dict[str, list[Tensor]]:
        """Keras's momentum slots m (= -lr * the kernel's buffers)."""
        lr = self._scaled_lr or 0.0
        return {"momentum": [b * -lr for b in self._state.get("momentum", [])]}

    def get_config(self) -> dict:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}

    def _extra_state(self) -> dict[str, float]:
        return {} if self._scaled_lr is None else {"scaled_lr": self._scaled_lr}

    def _set_extra_state(self, state) -> None:
        self._scaled_lr = state.get("scaled_lr")


class RMSprop(_Velocity, Optimizer):
    """Keras's RMSprop: v = rho v + (1 - rho) g**2; w -= lr g / sqrt(v + epsilon) (centered:
    sqrt(v - mean_g**2 + epsilon); with momentum, m = momentum m + lr g / sqrt(...), w -= m).
    Defaults: learning_rate 0.001, rho 0.9, momentum 0, epsilon 1e-7."""

    def __init__(
        self,
        learning_rate=0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.rho = _number("RMSprop", "rho", rho, 0.0, 1.0)
        self.momentum = _number("RMSprop", "momentum", momentum, 0.0, 1.0)
        self.epsilon = _number("RMSprop", "epsilon", epsilon)
        self.centered = bool(centered)
        # "velocity" holds v + epsilon (see the module's notes)
        self.slots = (
            ("velocity",)
            + (("momentum",) if self.momentum else ())
            + (("average_gradient",) if self.centered else ())
        )
        self._fill = {"velocity": self.epsilon}

    def _reset_extra(self) -> None:
        self._scaled_lr = None

    def _update(self, idx, params, grads, lr, step) -> None:
        rho, eps = self.rho, self.epsilon
        vel = self._slot("velocity", idx)
        mom = self._slot("momentum", idx) if self.momentum else []
        avg = self._slot("average_gradient", idx) if self.centered else []
        if self.momentum:
            self._rescale("momentum", lr)
        if rho == 0.0:  # v = g**2 each step: no kernel form
            for j, (p, g, v) in enumerate(zip(params, grads, vel)):
                v.copy_(g * g + eps)
                den = v
                if avg:
                    avg[j].copy_(g)
                    den = v - avg[j] * avg[j]
                inc = g * lr / den.sqrt()
                if mom:
                    mom[j].mul_(self.momentum).add_(inc / lr)
                    p.sub_(mom[j] * lr)
                else:
                    p.sub_(inc)
            return
        shift = (1.0 - rho) * eps / rho
        if shift:
            for v in vel:
                v.add_(shift)
        _core.rmsprop_step(params, grads, vel, mom, avg, lr, rho, 0.0, 0.0, self.momentum, self.centered)

    def keras_slots(self) -> dict[str, list[Tensor]]:
        """Keras's slots: velocity v (without epsilon), momentum m, average_gradient."""
        out = {"velocity": [v - self.epsilon for v in self._state["velocity"]]}
        if self.momentum:
            lr = self._scaled_lr or 0.0
            out["momentum"] = [b * lr for b in self._state["momentum"]]
        if self.centered:
            out["average_gradient"] = list(self._state["average_gradient"])
        return out

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "rho": self.rho,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "centered": self.centered,
        }

    def _extra_state(self) -> dict[str, float]:
        return {} if self._scaled_lr is None else {"scaled_lr": self._scaled_lr}

    def _set_extra_state(self, state) -> None:
        self._scaled_lr = state.get("scaled_lr")


class Adam(Optimizer):
    """Keras's Adam: m += (g - m)(1 - beta_1); v += (g**2 - v)(1 - beta_2);
    w -= lr sqrt(1 - beta_2**t) / (1 - beta_1**t) * m / (sqrt(v) + epsilon). `amsgrad` uses
    the running maximum of v. Defaults: learning_rate 0.001, beta_1 0.9, beta_2 0.999,
    epsilon 1e-7."""

    def __init__(
        self,
        learning_rate=0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, **kwargs)
        cls = type(self).__name__
        self.beta_1 = _number(cls, "beta_1", beta_1, 0.0, 1.0)
        self.beta_2 = _number(cls, "beta_2", beta_2, 0.0, 1.0)
        if self.beta_1 >= 1.0 or self.beta_2 >= 1.0:
            raise ValueError(f"{cls}: beta_1 and beta_2 must be in [0, 1), got {beta_1}, {beta_2}")
        self.epsilon = _number(cls, "epsilon", epsilon)
        self.amsgrad = bool(amsgrad)
        self.slots = ("momentum", "velocity") + (("velocity_hat",) if self.amsgrad else ())

    def _update(self, idx, params, grads, lr, step) -> None:
        m, v = self._slot("momentum", idx), self._slot("velocity", idx)
        if not self.amsgrad:
            # PyTorch's form with epsilon / sqrt(1 - beta_2**t) is Keras's epsilon-hat update
            eps = self.epsilon / math.sqrt(1.0 - self.beta_2**step)
            _core.adam_step(params, grads, m, v, step, lr, self.beta_1, self.beta_2, eps, 0.0, False)
            return
        alpha = lr * math.sqrt(1.0 - self.beta_2**step) / (1.0 - self.beta_1**step)
        for p, g, mi, vi, vh in zip(params, grads, m, v, self._slot("velocity_hat", idx)):
            mi.mul_(self.beta_1).add_(g, alpha=1.0 - self.beta_1)
            vi.mul_(self.beta_2).add_(g * g, alpha=1.0 - self.beta_2)
            vh.copy_(_core.where(vi > vh, vi, vh))
            p.sub_(mi * alpha / (vh.sqrt() + self.epsilon))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "amsgrad": self.amsgrad,
        }


class AdamW(Adam):
    """Adam with decoupled weight decay (Keras's default weight_decay 0.004): before each
    step w -= lr * weight_decay * w."""

    def __init__(
        self,
        learning_rate=0.001,
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs,
    ):
        if weight_decay is None:
            raise ValueError("AdamW: weight_decay must be a float (use Adam for none)")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay=weight_decay, **kwargs)


class Nadam(Optimizer):
    """Keras's Nadam (Adam with Nesterov momentum and the momentum schedule
    u_t = beta_1 (1 - 0.5 * 0.96**t)). Defaults: learning_rate 0.001, beta_1 0.9,
    beta_2 0.999, epsilon 1e-7."""

    slots = ("momentum", "velocity")

    def __init__(
        self, learning_rate=0.001, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7, **kwargs
    ):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1 = _number("Nadam", "beta_1", beta_1, 0.0, 1.0)
        self.beta_2 = _number("Nadam", "beta_2", beta_2, 0.0, 1.0)
        self.epsilon = _number("Nadam", "epsilon", epsilon)
        self._u_product = 1.0

    def _reset_extra(self) -> None:
        self._u_product = 1.0

    def _step(self, live) -> None:
        if live:  # the product of the momentum schedule, once per step before the updates
            self._u_product *= self.beta_1 * (1.0 - 0.5 * 0.96 ** (self.iterations + 1))
        super()._step(live)

    def _update(self, idx, params, grads, lr, step) -> None:
        b1, b2 = self.beta_1, self.beta_2
        u_t = b1 * (1.0 - 0.5 * 0.96**step)
        u_t1 = b1 * (1.0 - 0.5 * 0.96 ** (step + 1))
        u_prod_t = self._u_product
        u_prod_t1 = u_prod_t * u_t1
        c_m, c_g = u_t1 / (1.0 - u_prod_t1), (1.0 - u_t) / (1.0 - u_prod_t)
        c_v = 1.0 / (1.0 - b2**step)
        for p, g, m, v in zip(params, grads, self._slot("momentum", idx), self._slot("velocity", idx)):
            m.mul_(b1).add_(g, alpha=1.0 - b1)
            v.mul_(b2).add_(g * g, alpha=1.0 - b2)
            m_hat = m * c_m + g * c_g
            p.sub_(m_hat * lr / ((v * c_v).sqrt() + self.epsilon))

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}

    def _extra_state(self) -> dict[str, float]:
        return {"u_product": self._u_product}

    def _set_extra_state(self, state) -> None:
        self._u_product = float(state.get("u_product", 1.0))


class Adamax(Optimizer):
    """Keras's Adamax: m += (g - m)(1 - beta_1); u = max(beta_2 u, |g|);
    w -= lr m / ((1 - beta_1**t)(u + epsilon)). Defaults: 0.001, 0.9, 0.999, 1e-7."""

    slots = ("m", "u")

    def __init__(
        self, learning_rate=0.001, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7, **kwargs
    ):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1 = _number("Adamax", "beta_1", beta_1, 0.0, 1.0)
        self.beta_2 = _number("Adamax", "beta_2", beta_2, 0.0, 1.0)
        self.epsilon = _number("Adamax", "epsilon", epsilon)

    def _update(self, idx, params, grads, lr, step) -> None:
        c = lr / (1.0 - self.beta_1**step)
        for p, g, m, u in zip(params, grads, self._slot("m", idx), self._slot("u", idx)):
            m.mul_(self.beta_1).add_(g, alpha=1.0 - self.beta_1)
            bu, ag = u * self.beta_2, g.abs()
            u.copy_(_core.where(ag > bu, ag, bu))
            p.sub_(m * c / (u + self.epsilon))

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class Adagrad(Optimizer):
    """Keras's Adagrad: a += g**2; w -= lr g / sqrt(a + epsilon), a starting at
    `initial_accumulator_value`. Defaults: learning_rate 0.001, 0.1, epsilon 1e-7."""

    slots = ("accumulator",)

    def __init__(
        self, learning_rate=0.001, initial_accumulator_value: float = 0.1, epsilon: float = 1e-7, **kwargs
    ):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.initial_accumulator_value = _number(
            "Adagrad", "initial_accumulator_value", initial_accumulator_value
        )
        self.epsilon = _number("Adagrad", "epsilon", epsilon)
        self._fill = {"accumulator": self.initial_accumulator_value}

    def _update(self, idx, params, grads, lr, step) -> None:
        for p, g, a in zip(params, grads, self._slot("accumulator", idx)):
            a.add_(g * g)
            p.sub_(g * lr / (a + self.epsilon).sqrt())

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "initial_accumulator_value": self.initial_accumulator_value,
            "epsilon": self.epsilon,
        }


class Adadelta(Optimizer):
    """Keras's Adadelta: a = rho a + (1 - rho) g**2; d = -sqrt(D + eps) / sqrt(a + eps) g;
    D = rho D + (1 - rho) d**2; w += lr d. Defaults: learning_rate 0.001, rho 0.95,
    epsilon 1e-7."""

    slots = ("accumulated_grad", "accumulated_delta_var")

    def __init__(self, learning_rate=0.001, rho: float = 0.95, epsilon: float = 1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.rho = _number("Adadelta", "rho", rho, 0.0, 1.0)
        self.epsilon = _number("Adadelta", "epsilon", epsilon)

    def _update(self, idx, params, grads, lr, step) -> None:
        rho, eps = self.rho, self.epsilon
        accs, deltas = self._slot("accumulated_grad", idx), self._slot("accumulated_delta_var", idx)
        for p, g, a, dv in zip(params, grads, accs, deltas):
            a.mul_(rho).add_(g * g, alpha=1.0 - rho)
            d = -((dv + eps).sqrt() * g) / (a + eps).sqrt()
            dv.mul_(rho).add_(d * d, alpha=1.0 - rho)
            p.add_(d, alpha=lr)

    def get_config(self) -> dict:
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


_CLASSES: dict[str, type[Optimizer]] = {
    c.__name__: c for c in (SGD, RMSprop, Adam, AdamW, Nadam, Adamax, Adagrad, Adadelta)
}
_NAMES = {c.lower(): cls for c, cls in _CLASSES.items()}


def get(identifier) -> Optimizer:
    """An optimizer from a name ("rmsprop", "adam", "sgd", "nadam", "adagrad", "adadelta",
    "adamax", "adamw": Keras's defaults), an instance, or a saved {"class_name", "config"}."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        cls = _NAMES.get(identifier.lower())
        if cls is None:
            custom = _scope.lookup(identifier)
            if custom is not None:
                return get(custom() if isinstance(custom, type) else custom)
            raise ValueError(f"unknown optimizer {identifier!r} (choose from {sorted(_NAMES)})")
        return cls()
    if isinstance(identifier, dict) and "class_name" in identifier:
        name, config = identifier["class_name"], identifier.get("config") or {}
        custom = _scope.lookup(name)
        cls = custom if isinstance(custom, type) and issubclass(custom, Optimizer) else _CLASSES.get(name)
        if cls is None:
            raise ValueError(f"unknown optimizer class {name!r}; pass custom_objects={{{name!r}: cls}}")
        return cls.from_config(_scope.check_arguments(name, config))
    if hasattr(identifier, "param_groups"):
        raise TypeError(
            "compile: got a ferrograd.optim (PyTorch-style) optimizer; a Keras model takes "
            "ferrograd.keras.optimizers (e.g. keras.optimizers.Adam()), which need no parameter list"
        )
    raise TypeError(f"optimizer must be a name or an Optimizer, got {type(identifier).__name__}")


def serialize(opt: Optimizer) -> dict:
    """Keras's saved form `{"class_name": ..., "config": ...}`."""
    return {"class_name": type(opt).__name__, "config": opt.get_config()}


def deserialize(config: dict, custom_objects: dict | None = None) -> Optimizer:
    """The optimizer `serialize` described."""
    with _scope.custom_object_scope(custom_objects):
        return get(config)


__all__ = [
    "Optimizer",
    "SGD",
    "RMSprop",
    "Adam",
    "AdamW",
    "Nadam",
    "Adamax",
    "Adagrad",
    "Adadelta",
    "LearningRate",
    "schedules",
    "get",
    "serialize",
    "deserialize",
]
