"""Layers: Linear, BatchNorm1d, dropouts, activations, Sequential and Residual."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _core, _graphs, _mpi
from .._core import ShapeError, Tensor
from ..autograd import Function, no_grad
from . import init as _init
from . import spatial as S
from .module import Module, Parameter


def _size(name: str, v) -> int:
    """`v` if it is a positive int (a layer width), else ValueError."""
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise ValueError(f"{name} must be a positive int, got {v!r:.40}")
    return v


def _prefixed(children: list[tuple[str, dict]]) -> dict[str, tuple[int, ...]]:
    """Children's `state_shapes` merged under their names (as `state_dict` names them)."""
    out: dict[str, tuple[int, ...]] = {}
    for name, shapes in children:
        if not isinstance(shapes, dict):
            raise TypeError(f"child '{name}' is not a module")
        out.update({f"{name}.{k}": s for k, s in shapes.items()})
    return out


class Linear(Module):
    """y = x @ weight.T + bias, with weight of shape (out_features, in_features).

    Default init (`init=None`) is PyTorch's: weight and bias U(-1/sqrt(in), 1/sqrt(in)).
    Pass an initializer name ("he_normal", "lecun_normal", "glorot_uniform", ...) to
    initialize the weight with it and the bias with zeros.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, init: str | None = None):
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise ValueError(f"Linear: sizes must be positive, got ({in_features}, {out_features})")
        self.in_features, self.out_features, self.init = in_features, out_features, init
        self.weight = Parameter(_core.zeros([out_features, in_features], None))
        self.bias = Parameter(_core.zeros([out_features], None)) if bias else None
        if init is None:
            _init.torch_linear_default(self.weight, self.bias)
        else:
            if init not in _init.INITIALIZERS:
                raise ValueError(f"Linear: unknown init '{init}' (choose from {sorted(_init.INITIALIZERS)})")
            _init.INITIALIZERS[init](self.weight)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ShapeError(f"Linear: expected input (..., {self.in_features}), got shape {tuple(x.shape)}")
        return _core.linear(x, self.weight, self.bias)

    def get_config(self) -> dict:
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias is not None,
            "init": self.init,
        }

    @classmethod
    def state_shapes(cls, in_features, out_features, bias=True, init=None) -> dict[str, tuple[int, ...]]:
        """weight (out, in) and, with `bias`, bias (out,)."""
        i, o = _size("in_features", in_features), _size("out_features", out_features)
        return {"weight": (o, i), **({"bias": (o,)} if bias else {})}

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
        )


class BatchNorm1d(Module):
    """Batch normalization per channel of (N, C) or (N, C, L) inputs, as PyTorch's.

    Training: normalizes with the batch mean and biased variance, and updates the running
    statistics with the unbiased variance (running = (1 - momentum) running + momentum batch;
    with `momentum=None`, a cumulative average: momentum 1 / num_batches_tracked).
    Evaluation: normalizes with the running statistics. `track_running_stats=False` keeps
    none (running_mean, running_var and num_batches_tracked are None) and always uses the
    batch's. Default init: weight 1, bias 0.
    """

    running_mean: Tensor | None
    running_var: Tensor | None
    num_batches_tracked: Tensor | None
    # a checkpoint without the counter (older files, other frameworks) still loads, the
    # counter staying as it is, as PyTorch loads pre-1.0 BatchNorm state
    _optional_state = ("num_batches_tracked",)
    _input_ranks: tuple[int, ...] = (2, 3)

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
    ):
        super().__init__()
        if momentum is not None and not (isinstance(momentum, (int, float)) and 0.0 <= momentum <= 1.0):
            raise ValueError(f"{type(self).__name__}: momentum must be in [0, 1] or None, got {momentum!r}")
        self.num_features, self.eps, self.momentum, self.affine = num_features, eps, momentum, affine
        self.track_running_stats = bool(track_running_stats)
        self.weight = Parameter(_core.full([num_features], 1.0, None)) if affine else None
        self.bias = Parameter(_core.zeros([num_features], None)) if affine else None
        if self.track_running_stats:
            self.register_buffer("running_mean", _core.zeros([num_features], None))
            self.register_buffer("running_var", _core.full([num_features], 1.0, None))
            self.register_buffer("num_batches_tracked", _core.zeros([], _core.dtype.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self) -> None:
        """Running mean 0, variance 1, no batches counted."""
        rm, rv, n = self.running_mean, self.running_var, self.num_batches_tracked
        if rm is not None and rv is not None and n is not None:
            with no_grad():
                rm.fill_(0.0)
                rv.fill_(1.0)
                n.zero_()

    def _stats(self) -> tuple[Tensor | None, Tensor | None, bool, float]:
        """(running mean, running variance, whether to use the batch's statistics, the
        momentum to fold them in with) for this call; counts the batch when it does."""
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            with no_grad():
                self.num_batches_tracked.add_(1)
            graph = _graphs.capturing
            if graph is not None:
                if self.momentum is None:
                    raise RuntimeError(
                        f"{type(self).__name__}: momentum=None (a cumulative average, 1 / "
                        "num_batches_tracked each batch) cannot be captured in a GPU graph: the "
                        "captured kernels would keep one step's factor"
                    )
                graph._count_counter(self.num_batches_tracked)
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked.item())
        use_batch = self.training or self.running_mean is None or self.running_var is None
        return self.running_mean, self.running_var, use_batch, momentum

    def _check_input(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or x.ndim not in self._input_ranks or x.shape[1] != self.num_features:
            want = " or ".join(
                {
                    2: f"(N, {self.num_features})",
                    3: f"(N, {self.num_features}, L)",
                    5: f"(N, {self.num_features}, D, H, W)",
                }.get(r, f"(N, {self.num_features}, H, W)")
                for r in self._input_ranks
            )
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ShapeError(f"{type(self).__name__}: expected input {want}, got shape {got}")

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        if x.ndim == 2:
            return self._normalize(x, None)
        rm, rv, use_batch, momentum = self._stats()
        return S.batch_norm(x, rm, rv, self.weight, self.bias, use_batch, momentum, self.eps)

    def _normalize(
        self, x: Tensor, activation: str | None, dropout: float = 0.0, residual: Tensor | None = None
    ) -> Tensor:
        # `activation="relu"` is Sequential fusing a following ReLU (and `dropout` a
        # Dropout after it) into the same kernels, `residual` a Residual block's shortcut
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise ShapeError(
                f"BatchNorm1d: expected input (N, {self.num_features}), got shape {tuple(x.shape)}"
            )
        rm, rv, use_batch, momentum = self._stats()
        return _core.batch_norm(
            x,
            self.weight,
            self.bias,
            rm,
            rv,
            use_batch,
            momentum,
            self.eps,
            activation,
            dropout,
            residual,
        )

    def get_config(self) -> dict:
        return {
            "num_features": self.num_features,
            "eps": self.eps,
            "momentum": self.momentum,
            "affine": self.affine,
            "track_running_stats": self.track_running_stats,
        }

    @classmethod
    def state_shapes(
        cls, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True
    ) -> dict[str, tuple[int, ...]]:
        """weight and bias (with `affine`), running_mean and running_var: all (num_features,),
        and the 0-d num_batches_tracked (with `track_running_stats`)."""
        n = (_size("num_features", num_features),)
        stats = {"running_mean": n, "running_var": n, "num_batches_tracked": ()}
        return {**({"weight": n, "bias": n} if affine else {}), **(stats if track_running_stats else {})}

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class _SyncBatchNormFn(Function):
    """Batch normalization with the statistics of the global batch across ranks, as
    PyTorch's SyncBatchNorm: forward gathers each rank's (count, mean, sum of squared
    deviations) and combines them in float64, in rank order (Chan et al.'s pairwise update:
    no cancellation from E[x^2] - mean^2, and the same bits on every rank); backward reduces
    (sum g, sum g x_hat). Each rank's gradient for x is that of its share of the global mean
    loss; weight and bias get the local sums, which the data-parallel average completes."""

    @staticmethod
    def forward(ctx, x, weight, bias, bn, momentum):
        c = bn.num_features
        n_local = x.shape[0]
        mean_local = x.mean(0)
        m2_local = ((x - mean_local) ** 2).sum(0)
        mine = np.concatenate([[float(n_local)], _np64(mean_local), _np64(m2_local)])
        n, mean, m2 = 0.0, np.zeros(c), np.zeros(c)
        for row in _mpi.allgather_array(mine):
            nb, mb, m2b = row[0], row[1 : c + 1], row[c + 1 :]
            if nb == 0:
                continue
            delta = mb - mean
            total = n + nb
            mean = mean + delta * (nb / total)
            m2 = m2 + m2b + delta * delta * (n * nb / total)
            n = total
        if n < 2:
            raise ValueError(
                f"SyncBatchNorm: expected more than 1 value per channel across ranks, got {int(n)}"
            )
        var = m2 / n
        invstd = 1.0 / np.sqrt(var + bn.eps)
        if momentum is not None:
            m = momentum
            unbiased = var * n / (n - 1)
            bn.running_mean.copy_(_tensor_like(bn.running_mean, (1 - m) * _np64(bn.running_mean) + m * mean))
            bn.running_var.copy_(_tensor_like(bn.running_var, (1 - m) * _np64(bn.running_var) + m * unbiased))
        mean_t, invstd_t = _tensor_like(x, mean), _tensor_like(x, invstd)
        x_hat = (x - mean_t) * invstd_t
        ctx.save_for_backward(x_hat, invstd_t, weight)
        ctx.n = n
        y = x_hat * weight + bias if weight is not None else x_hat
        return y

    @staticmethod
    def backward(ctx, g):
        x_hat, invstd, weight = ctx.saved_tensors
        sum_g, sum_gx = g.sum(0), (g * x_hat).sum(0)
        c = sum_g.shape[0]
        both = _mpi.allreduce_array(np.concatenate([_np64(sum_g), _np64(sum_gx)]), "sum")
        mean_g, mean_gx = _tensor_like(g, both[:c] / ctx.n), _tensor_like(g, both[c:] / ctx.n)
        scale = invstd * weight if weight is not None else invstd
        gx = (g - mean_g - x_hat * mean_gx) * scale
        if weight is None:
            return gx, None, None, None, None
        return gx, sum_gx, sum_g, None, None


def _np64(t: Tensor) -> np.ndarray:
    """`t`'s values as a float64 NumPy array (from either device)."""
    return t.detach().cpu().numpy().astype(np.float64)


def _tensor_like(t: Tensor, a) -> Tensor:
    """The NumPy array `a` as a tensor of `t`'s dtype, on `t`'s device."""
    return _core.from_numpy(np.ascontiguousarray(a)).to(t.device, t.dtype)


class SyncBatchNorm(BatchNorm1d):
    """Batch normalization whose training statistics are those of the global batch across
    the processes of an MPI job (mean and variance reduced in forward, the gradient's two
    sums in backward), as PyTorch's ``nn.SyncBatchNorm``; in one process, or in eval mode,
    exactly `BatchNorm1d`. The same parameters, buffers and checkpoints as `BatchNorm1d`.

    >>> model = fg.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    """

    _input_ranks = (2,)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or _mpi.ensure().size == 1:
            return super().forward(x)
        self._check_input(x)
        rm, _, _, momentum = self._stats()
        return _SyncBatchNormFn.apply(x, self.weight, self.bias, self, momentum if rm is not None else None)

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group=None) -> Module:
        """`module` with every `BatchNorm1d` replaced by a `SyncBatchNorm` holding the same
        parameters, running statistics and settings (in place; returns `module`, or the new
        layer when `module` is itself a BatchNorm1d). `process_group` is accepted for
        PyTorch's signature: the group is always the whole MPI world."""
        if isinstance(module, BatchNorm1d) and not isinstance(module, SyncBatchNorm):
            new = cls(
                module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
            )
            if module.affine:
                new.weight, new.bias = module.weight, module.bias
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                new.register_buffer(name, getattr(module, name))
            new.training = module.training
            return new
        for name, child in list(module._modules.items()):
            converted = cls.convert_sync_batchnorm(child, process_group)
            if converted is not child:
                setattr(module, name, converted)
        return module


class Dropout(Module):
    """Inverted dropout: in training, zeroes elements with probability p and scales the
    rest by 1/(1-p); the identity in eval mode."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p
        del inplace  # PyTorch's flag: the result is always a new tensor (see _Activation)

    def forward(self, x: Tensor) -> Tensor:
        return _core.dropout(x, self.p, self.training)

    def get_config(self) -> dict:
        return {"p": self.p}

    @classmethod
    def state_shapes(cls, p=0.5, inplace=False) -> dict[str, tuple[int, ...]]:
        """Nothing: dropout holds no tensors."""
        return {}

    def extra_repr(self) -> str:
        return f"p={self.p}"


class AlphaDropout(Dropout):
    """Dropout for SELU networks: keeps activations' mean 0 and variance 1 (p=0.05 or 0.1)."""

    def forward(self, x: Tensor) -> Tensor:
        return _core.alpha_dropout(x, self.p, self.training)


class _Activation(Module):
    """Base of the activation layers. PyTorch's `inplace=True` is accepted and computes out
    of place: the layer's output is what a network uses, and overwriting an input the graph
    still needs would corrupt its gradient."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        del inplace

    def get_config(self) -> dict:
        return {}

    @classmethod
    def state_shapes(cls, **config) -> dict[str, tuple[int, ...]]:
        """Nothing: activations hold no tensors (their constructors check the arguments)."""
        return {}


class ReLU(_Activation):
    """max(x, 0)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.relu()


class SELU(_Activation):
    """Scaled exponential linear unit (self-normalizing networks)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.selu()


class ELU(_Activation):
    """x if x > 0 else alpha (e^x - 1)."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__(inplace)
        self.alpha = alpha

    def forward(self, x: Tensor) -> Tensor:
        return x.elu(self.alpha)

    def get_config(self) -> dict:
        return {"alpha": self.alpha}


class Sigmoid(_Activation):
    """Logistic sigmoid."""

    def forward(self, x: Tensor) -> Tensor:
        return x.sigmoid()


class Tanh(_Activation):
    """Hyperbolic tangent."""

    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()


class _AlongDim(_Activation):
    """An activation applied along one dim (the softmax family). `dim=None` is PyTorch's
    implicit, deprecated choice (0 for 0-, 1- and 3-D input, else 1), with its warning."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def _dim(self, x: Tensor) -> int:
        from .spatial import _softmax_dim  # noqa: PLC0415

        return _softmax_dim(type(self).__name__, self.dim, x.ndim)

    def get_config(self) -> dict:
        return {"dim": self.dim}


class Softmax(_AlongDim):
    """Softmax along `dim`."""

    def forward(self, x: Tensor) -> Tensor:
        return x.softmax(self._dim(x))


class Identity(_Activation):
    """Returns its input."""

    def forward(self, x: Tensor) -> Tensor:
        return x


class LeakyReLU(_Activation):
    """x if x > 0 else negative_slope * x."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__(inplace)
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return x.leaky_relu(self.negative_slope)

    def get_config(self) -> dict:
        return {"negative_slope": self.negative_slope}

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class GELU(_Activation):
    """x * Phi(x) (`approximate="tanh"`: the tanh approximation)."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return x.gelu(self.approximate)

    def get_config(self) -> dict:
        return {"approximate": self.approximate}


class SiLU(_Activation):
    """x * sigmoid(x) (swish)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.silu()


class Mish(_Activation):
    """x * tanh(softplus(x))."""

    def forward(self, x: Tensor) -> Tensor:
        return x.mish()


class Hardswish(_Activation):
    """x * relu6(x + 3) / 6."""

    def forward(self, x: Tensor) -> Tensor:
        return x.hardswish()


class Hardsigmoid(_Activation):
    """relu6(x + 3) / 6."""

    def forward(self, x: Tensor) -> Tensor:
        return x.hardsigmoid()


class ReLU6(_Activation):
    """min(max(x, 0), 6)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.relu6()


class Hardtanh(_Activation):
    """x clamped into [min_val, max_val] (min_val > max_val is a ValueError)."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
        super().__init__(inplace)
        if min_val > max_val:
            raise ValueError(f"Hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
        self.min_val, self.max_val = min_val, max_val

    def forward(self, x: Tensor) -> Tensor:
        return x.hardtanh(self.min_val, self.max_val)

    def get_config(self) -> dict:
        return {"min_val": self.min_val, "max_val": self.max_val}

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"


class LogSigmoid(_Activation):
    """log(sigmoid(x)), computed stably."""

    def forward(self, x: Tensor) -> Tensor:
        return x.logsigmoid()


class Softsign(_Activation):
    """x / (1 + |x|)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.softsign()


class CELU(_Activation):
    """max(0, x) + min(0, alpha (e^(x / alpha) - 1)) (alpha 0 is a ValueError)."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__(inplace)
        if alpha == 0:
            raise ValueError("CELU: alpha cannot be 0 (the op divides by it)")
        self.alpha = alpha

    def forward(self, x: Tensor) -> Tensor:
        return x.celu(self.alpha)

    def get_config(self) -> dict:
        return {"alpha": self.alpha}

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Softplus(_Activation):
    """log(1 + e^(beta x)) / beta, and x itself where beta x > threshold."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x: Tensor) -> Tensor:
        return x.softplus(self.beta, self.threshold)

    def get_config(self) -> dict:
        return {"beta": self.beta, "threshold": self.threshold}

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class LogSoftmax(_AlongDim):
    """log(softmax(x)) along `dim`, computed stably (not a Softmax: `fit` keeps it)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.log_softmax(self._dim(x))


class Flatten(_Activation):
    """Flattens dims `start_dim` to `end_dim` into one (by default all but the batch dim)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim, self.end_dim)

    def get_config(self) -> dict:
        return {"start_dim": self.start_dim, "end_dim": self.end_dim}


class Unflatten(_Activation):
    """Splits dim `dim` into `unflattened_size` (one entry may be -1), as PyTorch's
    `nn.Unflatten`: Flatten's inverse, e.g. (N, 784) -> (N, 1, 28, 28)."""

    def __init__(self, dim: int, unflattened_size: Sequence[int]):
        super().__init__()
        self.dim, self.unflattened_size = int(dim), tuple(int(v) for v in unflattened_size)

    def forward(self, x: Tensor) -> Tensor:
        return x.unflatten(self.dim, self.unflattened_size)

    def get_config(self) -> dict:
        return {"dim": self.dim, "unflattened_size": list(self.unflattened_size)}


class Sequential(Module):
    """Runs its layers in order. Indexing gives a layer; slicing gives a Sequential.

    As PyTorch's, an ordered dict of layers names them (`Sequential(OrderedDict([("fc",
    Linear(4, 2)), ("act", ReLU())]))`: `model.fc`, state dict keys `fc.weight`).

    It also has Keras's `compile`, `fit`, `evaluate`, `predict` and `save`, those of
    `ferrograd.train.Model`: the training layer, above `nn`, gives them to this class when
    ferrograd is imported (declared below for type checkers)."""

    if TYPE_CHECKING:  # set by ferrograd.train (`_install`); see ferrograd.train.Model
        compile: Callable[..., None]
        fit: Callable[..., Any]
        evaluate: Callable[..., dict]
        predict: Callable[..., Any]
        save: Callable[..., None]

    def __init__(
        self,
        *layers: Module,
        layers_list: Iterable[Module] | None = None,
        names: list[str] | None = None,
        **kw,
    ):
        super().__init__()
        if "layers" in kw:  # from a saved config
            layers_list = kw.pop("layers")
        if kw:
            raise TypeError(f"Sequential: unexpected arguments {sorted(kw)}")
        if len(layers) == 1 and isinstance(layers[0], dict):
            names, layers = [str(k) for k in layers[0]], tuple(layers[0].values())
        all_layers = list(layers) + list(layers_list or [])
        if names is not None and len(names) != len(all_layers):
            raise ValueError(f"Sequential: {len(names)} names for {len(all_layers)} layers")
        for i, m in enumerate(all_layers):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: layer {i} is a {type(m).__name__}, not a Module")
            self.add_module(names[i] if names is not None else str(i), m)

    def forward(self, x):
        return self._run(x, None)[0]

    def _run(self, x, skip: Tensor | None) -> tuple:
        """The forward pass; with `skip` (a Residual block's shortcut), added inside the last
        layers' kernels when they are a fused BatchNorm1d -> ReLU (-> Dropout) of the
        shortcut's shape. Returns (output, whether `skip` was added)."""
        mods = list(self._modules.values())
        added = False
        i = 0
        while i < len(mods):
            m = mods[i]
            nxt = mods[i + 1] if i + 1 < len(mods) else None
            # Linear then an activation whose derivative follows from its output: one fused
            # call (the activation runs in the matrix product's epilogue on the GPU);
            # exact types only, so subclasses keep theirs; a hooked layer runs on its own
            hooked = "_hooks" in m.__dict__ or (nxt is not None and "_hooks" in nxt.__dict__)
            act = _fused_activation(nxt) if type(m) is Linear and not hooked else None
            if (
                act is not None
                and isinstance(m, Linear)
                and isinstance(x, Tensor)
                and x.ndim >= 1
                and x.shape[-1] == m.in_features
            ):
                # and a dropout after them in training: its mask in the same node
                drop = mods[i + 2] if i + 2 < len(mods) else None
                p = _fused_dropout(drop)
                if p is None:
                    x = _core.linear(x, m.weight, m.bias, *act)
                    i += 2
                else:
                    x = _core.linear(
                        x, m.weight, m.bias, *act, dropout=p, alpha_dropout=type(drop) is AlphaDropout
                    )
                    i += 3
            elif (
                type(m) is BatchNorm1d
                and type(nxt) is ReLU
                and isinstance(x, Tensor)
                and x.ndim == 2
                and not hooked
            ):
                # BatchNorm1d then ReLU (then Dropout): relu and the mask inside the
                # normalization's kernels; the same mask as the Dropout module would draw
                drop = mods[i + 2] if i + 2 < len(mods) else None
                with_drop = (
                    isinstance(drop, Dropout) and type(drop) is Dropout and "_hooks" not in drop.__dict__
                )
                end = i + (3 if with_drop else 2)
                # the shortcut joins the last group's kernels when it fits the output
                res = skip if end == len(mods) and skip is not None and skip.shape == x.shape else None
                p = drop.p if isinstance(drop, Dropout) and with_drop and drop.training else 0.0
                x = m._normalize(x, "relu", p, res)
                added = res is not None
                i = end
            else:
                x = m(x)
                i += 1
        return x, added

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, i):
        mods = list(self._modules.values())
        if isinstance(i, slice):
            return Sequential(*mods[i])
        return mods[i]

    def append(self, m: Module) -> Sequential:
        """Adds `m` at the end; returns the Sequential."""
        setattr(self, str(len(self._modules)), m)
        return self

    def insert(self, index: int, m: Module, name: str | None = None) -> Sequential:
        """Puts `m` before layer `index` (PyTorch's `Sequential.insert`); returns the
        Sequential. Numbered layers are numbered again (state dict keys move with them);
        in a Sequential of named layers `m` takes `name`."""
        if not isinstance(m, Module):
            raise TypeError(f"Sequential.insert: expected a Module, got {type(m).__name__}")
        n = len(self._modules)
        if not -n <= index <= n:
            raise IndexError(f"Sequential.insert: index {index} out of range for {n} layers")
        index = index + n if index < 0 else index
        items = list(self._modules.items())
        numbered = [k for k, _ in items] == [str(i) for i in range(n)]
        if not numbered and (name is None or name in self._modules):
            raise ValueError(
                f"Sequential.insert: a Sequential of named layers needs a new name, got {name!r}"
            )
        items.insert(index, ("" if numbered else name or "", m))
        for k in list(self._modules):
            self.__dict__.pop(k, None)
        self._modules.clear()
        for i, (k, mod) in enumerate(items):
            setattr(self, str(i) if numbered else k, mod)
        return self

    def get_config(self) -> dict:
        cfg: dict = {"layers": list(self._modules.values())}
        if list(self._modules) != [str(i) for i in range(len(self._modules))]:
            cfg["names"] = list(self._modules)
        return cfg

    @classmethod
    def state_shapes(cls, layers=(), layers_list=None, names=None) -> dict[str, tuple[int, ...]]:
        """Each layer's tensors under its name (its index, or `names`)."""
        all_layers = list(layers) + list(layers_list or [])
        if names is None:
            names = [str(i) for i in range(len(all_layers))]
        if len(names) != len(all_layers):
            raise ValueError(f"{len(names)} names for {len(all_layers)} layers")
        return _prefixed(list(zip(names, all_layers)))


class ModuleDict(Module):
    """Modules by name, registered as children, as PyTorch's: `d["enc"]`, `d.items()`, in
    insertion order; for a custom `forward` that picks among them."""

    def __init__(self, modules=None, keys: list[str] | None = None):
        super().__init__()
        if isinstance(modules, dict):
            modules = list(modules.items())
        elif keys is not None:  # from a saved config
            if len(keys) != len(modules or []):
                raise ValueError(f"ModuleDict: {len(keys)} keys for {len(modules or [])} modules")
            modules = list(zip(keys, modules or []))
        for k, m in modules or []:
            self[k] = m

    def __setitem__(self, key: str, m: Module) -> None:
        if not isinstance(m, Module):
            raise TypeError(f"ModuleDict: expected a Module for {key!r}, got {type(m).__name__}")
        self.add_module(str(key), m)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __delitem__(self, key: str) -> None:
        del self._modules[key]
        object.__delattr__(self, key)

    def __contains__(self, key) -> bool:
        return key in self._modules

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        """The names, in insertion order."""
        return self._modules.keys()

    def values(self):
        """The modules, in insertion order."""
        return self._modules.values()

    def items(self):
        """(name, module) pairs, in insertion order."""
        return self._modules.items()

    def update(self, modules) -> None:
        """Adds or replaces modules from a dict or (name, module) pairs."""
        for k, m in modules.items() if isinstance(modules, dict) else modules:
            self[k] = m

    def forward(self, *args, **kwargs):
        """A ModuleDict is a container: pick from it in your own forward."""
        raise NotImplementedError("ModuleDict has no forward; pick its modules in your module's forward")

    def get_config(self) -> dict:
        return {"modules": list(self._modules.values()), "keys": list(self._modules)}

    @classmethod
    def state_shapes(cls, modules=None, keys=None) -> dict[str, tuple[int, ...]]:
        """Each module's tensors under its key."""
        modules = list(modules or [])
        if keys is None or len(keys) != len(modules):
            raise ValueError("a ModuleDict config needs one key per module")
        return _prefixed(list(zip(keys, modules)))


class ModuleList(Module):
    """A list of modules, registered as children (their parameters are the list's); for
    loops in a custom `forward`, as PyTorch's."""

    def __init__(self, modules=None):
        super().__init__()
        for m in modules or []:
            self.append(m)

    def append(self, m: Module) -> ModuleList:
        """Adds `m` at the end; returns the list."""
        if not isinstance(m, Module):
            raise TypeError(f"ModuleList: expected a Module, got {type(m).__name__}")
        setattr(self, str(len(self._modules)), m)
        return self

    def extend(self, modules) -> ModuleList:
        """Adds each of `modules`; returns the list."""
        for m in modules:
            self.append(m)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, i):
        mods = list(self._modules.values())
        if isinstance(i, slice):
            return ModuleList(mods[i])
        return mods[i]

    def forward(self, *args, **kwargs):
        """A ModuleList is a container: iterate over it in your own forward."""
        raise NotImplementedError("ModuleList has no forward; iterate over it in your module's forward")

    def get_config(self) -> dict:
        return {"modules": list(self._modules.values())}

    @classmethod
    def state_shapes(cls, modules=None) -> dict[str, tuple[int, ...]]:
        """Each module's tensors under its index."""
        return _prefixed([(str(i), m) for i, m in enumerate(modules or [])])


_FUSABLE: dict[type, str] = {ReLU: "relu", SELU: "selu", Tanh: "tanh", Sigmoid: "sigmoid"}


def _fused_activation(m: Module | None) -> tuple[str, float | None] | None:
    """(name, alpha) of an activation module `linear` can fuse, else None."""
    if type(m) is ELU and m.alpha > 0:
        return ("elu", float(m.alpha))
    if type(m) is LeakyReLU and m.negative_slope >= 0:
        return ("leaky_relu", float(m.negative_slope))
    name = _FUSABLE.get(type(m))
    return None if name is None else (name, None)


def _fused_dropout(m: Module | None) -> float | None:
    """The probability of a Dropout or AlphaDropout (exact types, no hooks) in training
    with 0 < p < 1, which `linear` can apply in its own node; else None."""
    if not isinstance(m, Dropout) or type(m) not in (Dropout, AlphaDropout):
        return None
    if "_hooks" in m.__dict__ or not m.training:
        return None
    p = float(m.p)
    return p if 0.0 < p < 1.0 else None


class Residual(Module):
    """output = shortcut(x) + body(x), where shortcut is the identity or, when widths differ,
    a Linear projection (`in_features` and `out_features` given and different)."""

    def __init__(
        self, body: Module, in_features: int | None = None, out_features: int | None = None, projection=None
    ):
        super().__init__()
        self.body = body
        self.in_features, self.out_features = in_features, out_features
        if (
            projection is None
            and in_features is not None
            and out_features is not None
            and in_features != out_features
        ):
            projection = Linear(in_features, out_features, bias=False)
        self.projection = projection

    def forward(self, x: Tensor) -> Tensor:
        if type(self.body) is Sequential and "_hooks" not in self.body.__dict__ and isinstance(x, Tensor):
            # the shortcut added inside the body's last fused batch norm where it can be
            skip = self.projection(x) if self.projection is not None else x
            y, added = self.body._run(x, skip)
            if added:
                return y
        else:
            y = self.body(x)
            skip = self.projection(x) if self.projection is not None else x
        if tuple(skip.shape) != tuple(y.shape):
            raise ShapeError(
                f"Residual: body output {tuple(y.shape)} does not match the shortcut {tuple(skip.shape)}; "
                "give in_features and out_features to add a projection"
            )
        return skip + y

    def get_config(self) -> dict:
        return {
            "body": self.body,
            "in_features": self.in_features,
            "out_features": self.out_features,
            "projection": self.projection,
        }

    @classmethod
    def state_shapes(
        cls, body, in_features=None, out_features=None, projection=None
    ) -> dict[str, tuple[int, ...]]:
        """The body's tensors, and the projection's (given, or the bias-free Linear the
        constructor adds when the widths differ)."""
        if (
            projection is None
            and in_features is not None
            and out_features is not None
            and in_features != out_features
        ):
            projection = Linear.state_shapes(in_features, out_features, bias=False)
        children = [("body", body)] + ([("projection", projection)] if projection is not None else [])
        return _prefixed(children)
