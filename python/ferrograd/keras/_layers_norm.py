"""Keras's normalization layers (see `ferrograd.keras.layers`): `BatchNormalization` and
`LayerNormalization`."""

from __future__ import annotations

from .. import _core
from .._core import Tensor
from ..autograd import no_grad
from ..nn.module import Parameter
from . import constraints as _constraints
from . import initializers as _initializers
from . import regularizers as _regularizers
from ._layers_base import Layer
from ._layers_core import _fusable

# ---------------------------------------------------------------------------- normalization


class BatchNormalization(Layer):
    """Keras's batch normalization over the last axis.

    Training (in `fit`, or `training=True`): normalizes with the batch mean and (biased)
    variance and updates `moving_mean = moving_mean * momentum + mean * (1 - momentum)`, and
    the same for `moving_variance` with the biased batch variance. Inference: normalizes
    with the moving statistics. `epsilon` is added to the variance. Weights: gamma, beta
    (trainable), moving_mean, moving_variance (not trainable).
    """

    moving_mean: Tensor
    moving_variance: Tensor

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        moving_mean_initializer="zeros",
        moving_variance_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        synchronized: bool = False,
        **kwargs,
    ):
        kwargs.pop("fused", None)  # Keras 2's kernel choice: ferrograd always fuses
        if kwargs.pop("renorm", False):
            raise ValueError("BatchNormalization: renorm=True is not supported")
        for k in ("renorm_clipping", "renorm_momentum", "virtual_batch_size", "adjustment"):
            if kwargs.pop(k, None) is not None:
                raise ValueError(f"BatchNormalization: {k} is not supported")
        super().__init__(**kwargs)
        if not isinstance(axis, int):
            raise ValueError(f"BatchNormalization: axis must be an int (the features axis), got {axis!r}")
        if not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"BatchNormalization: momentum must be in [0, 1], got {momentum!r}")
        if not float(epsilon) > 0.0:
            raise ValueError(f"BatchNormalization: epsilon must be > 0, got {epsilon!r}")
        self.axis, self.momentum, self.epsilon = axis, float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = _initializers.get(beta_initializer)
        self.gamma_initializer = _initializers.get(gamma_initializer)
        self.moving_mean_initializer = _initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = _initializers.get(moving_variance_initializer)
        self.beta_regularizer = _regularizers.get(beta_regularizer)
        self.gamma_regularizer = _regularizers.get(gamma_regularizer)
        self.beta_constraint = _constraints.get(beta_constraint)
        self.gamma_constraint = _constraints.get(gamma_constraint)
        self.synchronized = bool(synchronized)
        self.gamma: Tensor | None = None
        self.beta: Tensor | None = None
        if self._batch_input_shape is not None:
            self._maybe_build(self._batch_input_shape)

    def _check_input_shape(self, shape) -> None:
        if isinstance(shape, list):
            raise ValueError(f"BatchNormalization layer '{self.name}' takes one input, got {len(shape)}")
        nd = len(shape)
        if nd < 2 or self.axis % nd != nd - 1:
            raise ValueError(
                f"BatchNormalization layer '{self.name}': only the last axis can be normalized (axis=-1), "
                f"got axis={self.axis} for inputs of shape {shape}"
            )
        if shape[-1] is None:
            raise ValueError(
                f"BatchNormalization layer '{self.name}': the features axis must be defined, got {shape}"
            )

    def build(self, input_shape) -> None:
        self._check_input_shape(tuple(input_shape))
        c = int(input_shape[-1])
        names = []
        if self.scale:
            self.gamma = Parameter(self.gamma_initializer((c,)))
            names.append("gamma")
        if self.center:
            self.beta = Parameter(self.beta_initializer((c,)))
            names.append("beta")
        self.register_buffer("moving_mean", self.moving_mean_initializer((c,)).detach())
        self.register_buffer("moving_variance", self.moving_variance_initializer((c,)).detach())
        object.__setattr__(self, "_weight_names", [*names, "moving_mean", "moving_variance"])
        reg = [
            (n, r)
            for n, r in (("gamma", self.gamma_regularizer), ("beta", self.beta_regularizer))
            if r and n in names
        ]
        con = [
            (n, k)
            for n, k in (("gamma", self.gamma_constraint), ("beta", self.beta_constraint))
            if k and n in names
        ]
        object.__setattr__(self, "_regularized", reg)
        object.__setattr__(self, "_constrained", con)

    def _normalize(self, x: Tensor, activation: str | None) -> Tensor:
        shape = tuple(x.shape)
        flat = x if x.ndim == 2 else x.reshape(-1, shape[-1])
        mm, mv = self.moving_mean, self.moving_variance
        if self.training and self.trainable:
            # The kernel updates running = (1 - m) running + m batch with the unbiased
            # variance (PyTorch's); Keras's momentum k is m = 1 - k, and its moving variance
            # takes the biased one: scaling the moving variance by n/(n-1) before and back
            # after gives k * moving + (1 - k) * biased exactly.
            n = flat.shape[0]
            unbias = n / (n - 1.0) if n > 1 else 1.0
            with no_grad():
                mv.mul_(unbias)
            try:
                y = _core.batch_norm(
                    flat, self.gamma, self.beta, mm, mv, True, 1.0 - self.momentum, self.epsilon, activation
                )
            finally:
                with no_grad():
                    mv.div_(unbias)
        else:
            y = _core.batch_norm(flat, self.gamma, self.beta, mm, mv, False, 0.0, self.epsilon, activation)
        return y if x.ndim == 2 else y.reshape(*shape)

    def call(self, inputs):
        return self._normalize(inputs, None)

    def _fused_with(self, nxt: Layer):
        if type(self) is not BatchNormalization or self.activity_regularizer or nxt.activity_regularizer:
            return None
        if _fusable(nxt) == ("relu", None):
            return lambda x: self._normalize(x, "relu")
        return None

    def compute_output_shape(self, input_shape):
        return input_shape

    def _expected_shapes(self) -> dict | None:
        s = self._build_shape
        if s is None or isinstance(s[0], list) or s[-1] is None:
            return None
        c = (int(s[-1]),)
        out = {}
        if self.scale:
            out["gamma"] = c
        if self.center:
            out["beta"] = c
        return {**out, "moving_mean": c, "moving_variance": c}

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": _initializers.serialize(self.beta_initializer),
            "gamma_initializer": _initializers.serialize(self.gamma_initializer),
            "moving_mean_initializer": _initializers.serialize(self.moving_mean_initializer),
            "moving_variance_initializer": _initializers.serialize(self.moving_variance_initializer),
            "beta_regularizer": _regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": _regularizers.serialize(self.gamma_regularizer),
            "beta_constraint": _constraints.serialize(self.beta_constraint),
            "gamma_constraint": _constraints.serialize(self.gamma_constraint),
            "synchronized": self.synchronized,
        }


class LayerNormalization(Layer):
    """Normalizes each sample over the last axis: (x - mean) / sqrt(var + epsilon) * gamma +
    beta (Keras's default epsilon 1e-3)."""

    def __init__(
        self,
        axis: int = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        **kwargs,
    ):
        kwargs.pop("rms_scaling", None)
        super().__init__(**kwargs)
        if not isinstance(axis, int):
            raise ValueError(f"LayerNormalization: axis must be -1 (the last axis), got {axis!r}")
        self.axis, self.epsilon, self.center, self.scale = (
            int(axis),
            float(epsilon),
            bool(center),
            bool(scale),
        )
        self.beta_initializer = _initializers.get(beta_initializer)
        self.gamma_initializer = _initializers.get(gamma_initializer)
        self.beta_regularizer = _regularizers.get(beta_regularizer)
        self.gamma_regularizer = _regularizers.get(gamma_regularizer)
        self.beta_constraint = _constraints.get(beta_constraint)
        self.gamma_constraint = _constraints.get(gamma_constraint)
        self.gamma: Tensor | None = None
        self.beta: Tensor | None = None

    def build(self, input_shape) -> None:
        if self.axis % len(input_shape) != len(input_shape) - 1 or input_shape[-1] is None:
            raise ValueError(
                f"LayerNormalization layer '{self.name}': only a defined last axis can be normalized, "
                f"got axis={self.axis} for inputs of shape {tuple(input_shape)}"
            )
        c = (int(input_shape[-1]),)
        names = []
        if self.scale:
            self.gamma = Parameter(self.gamma_initializer(c))
            names.append("gamma")
        if self.center:
            self.beta = Parameter(self.beta_initializer(c))
            names.append("beta")
        object.__setattr__(self, "_weight_names", names)
        reg = [
            (n, r)
            for n, r in (("gamma", self.gamma_regularizer), ("beta", self.beta_regularizer))
            if r and n in names
        ]
        con = [
            (n, k)
            for n, k in (("gamma", self.gamma_constraint), ("beta", self.beta_constraint))
            if k and n in names
        ]
        object.__setattr__(self, "_regularized", reg)
        object.__setattr__(self, "_constrained", con)

    def call(self, inputs):
        mean = inputs.mean(dim=-1, keepdim=True)
        d = inputs - mean
        y = d / ((d * d).mean(dim=-1, keepdim=True) + self.epsilon).sqrt()
        if self.gamma is not None:
            y = y * self.gamma
        if self.beta is not None:
            y = y + self.beta
        return y

    def compute_output_shape(self, input_shape):
        return input_shape

    def _expected_shapes(self) -> dict | None:
        s = self._build_shape
        if s is None or isinstance(s[0], list) or s[-1] is None:
            return None
        c = (int(s[-1]),)
        return {**({"gamma": c} if self.scale else {}), **({"beta": c} if self.center else {})}

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": _initializers.serialize(self.beta_initializer),
            "gamma_initializer": _initializers.serialize(self.gamma_initializer),
            "beta_regularizer": _regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": _regularizers.serialize(self.gamma_regularizer),
            "beta_constraint": _constraints.serialize(self.beta_constraint),
            "gamma_constraint": _constraints.serialize(self.gamma_constraint),
        }
