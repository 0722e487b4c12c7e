"""Sampling from distributions, as PyTorch's: `fg.bernoulli`, `fg.multinomial`, `fg.normal`,
`fg.poisson`, and the in-place `Tensor.bernoulli_`, `exponential_`, `random_`.

Every draw comes from ferrograd's global generator (`fg.manual_seed` makes it
reproducible): uniform and normal draws directly; Poisson counts from a NumPy generator
seeded by a draw of ours. The samples are data (no gradient flows through them); results
are made on the host and placed on the probabilities' device.
"""

from __future__ import annotations

import numpy as np

from . import _core
from ._composite import _method
from ._core import ArgumentError, DTypeError, ShapeError, Tensor
from ._creation import rand, randint, randn
from .autograd import no_grad

__all__ = ["bernoulli", "multinomial", "normal", "poisson"]


def _uniform_np(shape) -> np.ndarray:
    return rand(*shape, dtype=_core.dtype.float64).numpy().reshape(shape)


def _place(a: np.ndarray, like: Tensor, dtype=None) -> Tensor:
    t = _core.from_numpy(np.array(a, order="C"))
    return t.to(like.device, dtype or like.dtype)


def bernoulli(input: Tensor, p: float | None = None, *, generator=None) -> Tensor:  # noqa: A002
    """1 with probability `input` (or `p`), else 0, elementwise, as `torch.bernoulli`; the
    result has the input's dtype and device."""
    if generator is not None:
        raise ArgumentError("bernoulli: ferrograd has one generator per process; pass generator=None")
    probs = (
        input.detach().cpu().numpy().astype(np.float64)
        if p is None
        else np.full(tuple(input.shape), float(p))
    )
    if probs.size and (np.isnan(probs).any() or probs.min() < 0 or probs.max() > 1):
        raise ArgumentError("bernoulli: probabilities must be in [0, 1]")
    draws = _uniform_np(probs.shape)
    return _place((draws < probs).astype(np.float64), input)


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *, generator=None) -> Tensor:  # noqa: A002
    """Indices drawn from each row of non-negative weights (1-D or 2-D), as
    `torch.multinomial`: with replacement by the weights' cumulative sums, without it by
    the Gumbel top-k trick (each index at most once); int64."""
    if generator is not None:
        raise ArgumentError("multinomial: ferrograd has one generator per process; pass generator=None")
    if input.ndim not in (1, 2):
        raise ShapeError(f"multinomial: expected 1-D or 2-D weights, got shape {tuple(input.shape)}")
    w = input.detach().cpu().numpy().astype(np.float64)
    rows = w.reshape(-1, w.shape[-1])
    n = rows.shape[1]
    if not isinstance(num_samples, int) or num_samples <= 0:
        raise ArgumentError(f"multinomial: num_samples must be a positive int, got {num_samples!r}")
    if np.isnan(rows).any() or (rows < 0).any() or np.isinf(rows).any():
        raise ArgumentError("multinomial: weights must be finite and non-negative")
    if (rows.sum(1) <= 0).any():
        raise ArgumentError("multinomial: each row's weights must sum to more than zero")
    if not replacement and num_samples > (rows > 0).sum(1).min():
        raise ArgumentError(
            f"multinomial: cannot draw {num_samples} samples without replacement from a row with "
            f"{int((rows > 0).sum(1).min())} nonzero weights"
        )
    u = _uniform_np((rows.shape[0], num_samples if replacement else n))
    if replacement:
        cdf = np.cumsum(rows, 1)
        cdf /= cdf[:, -1:]
        out = np.stack([np.minimum(np.searchsorted(c, r, side="right"), n - 1) for c, r in zip(cdf, u)])
    else:
        with np.errstate(divide="ignore"):
            keys = np.log(rows) - np.log(-np.log(np.clip(u, 1e-300, None)))
        out = np.argsort(-keys, axis=1, kind="stable")[:, :num_samples]
    out = out.astype(np.int64)
    if input.ndim == 1:
        out = out.reshape(-1)
    return _core.from_numpy(np.ascontiguousarray(out))


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None) -> Tensor:
    """Normal samples, as `torch.normal`: tensors `mean` and/or `std` (broadcast, one draw
    each), or numbers with `size`."""
    if generator is not None:
        raise ArgumentError("normal: ferrograd has one generator per process; pass generator=None")
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        like = mean if isinstance(mean, Tensor) else std
        m = mean.detach() if isinstance(mean, Tensor) else mean
        s = std.detach() if isinstance(std, Tensor) else std
        if isinstance(s, Tensor) and bool((s < 0).any().item()):
            raise ArgumentError("normal: std must be >= 0")
        shape = np.broadcast_shapes(
            tuple(m.shape) if isinstance(m, Tensor) else (), tuple(s.shape) if isinstance(s, Tensor) else ()
        )
        z = randn(*shape, dtype=like.dtype if like.dtype.is_floating_point else None).to(like.device)
        return z * s + m
    if size is None:
        raise ArgumentError("normal: give size when mean and std are numbers")
    if std < 0:
        raise ArgumentError(f"normal: std must be >= 0, got {std}")
    shape = tuple(size) if isinstance(size, (list, tuple)) else (int(size),)
    z = randn(*shape, dtype=dtype)
    z = z * float(std) + float(mean)
    return z if device is None else z.to(device)


def poisson(input: Tensor, generator=None) -> Tensor:  # noqa: A002
    """Poisson counts with rates `input` (non-negative), as `torch.poisson`: the input's
    dtype and device."""
    if generator is not None:
        raise ArgumentError("poisson: ferrograd has one generator per process; pass generator=None")
    rates = input.detach().cpu().numpy().astype(np.float64)
    if rates.size and (np.isnan(rates).any() or rates.min() < 0):
        raise ArgumentError("poisson: rates must be non-negative")
    seed = int(randint(0, 2**62, (1,)).item())
    counts = np.random.default_rng(seed).poisson(rates)
    return _place(counts.astype(np.float64), input)


# ---------------------------------------------------------------------------- in place


def _check_fill(name: str, t: Tensor) -> None:
    if t.requires_grad and t.is_leaf and _core.is_grad_enabled():
        raise RuntimeError(
            f"{name}: a tensor that requires grad cannot be modified in place while grad mode is on "
            "(a leaf); wrap the update in no_grad()"
        )


def _bernoulli_(self: Tensor, p=0.5, *, generator=None) -> Tensor:
    """In place: 1 with probability `p` (a number or a tensor), else 0."""
    _check_fill("bernoulli_", self)
    probs = p if isinstance(p, Tensor) else _core.full(list(self.shape), float(p), _core.dtype.float64)
    if isinstance(p, Tensor):
        probs = p.expand(*self.shape)
    with no_grad():
        self.copy_(bernoulli(probs, generator=generator).to(self.device, self.dtype))
    return self


def _exponential_(self: Tensor, lambd: float = 1.0, *, generator=None) -> Tensor:
    """In place: exponential samples with rate `lambd`, -log(1 - u) / lambd."""
    _check_fill("exponential_", self)
    if generator is not None:
        raise ArgumentError("exponential_: ferrograd has one generator per process; pass generator=None")
    if not self.dtype.is_floating_point:
        raise DTypeError(f"exponential_: expected a floating-point tensor, got {self.dtype}")
    if lambd <= 0:
        raise ArgumentError(f"exponential_: lambd must be > 0, got {lambd}")
    u = _uniform_np(tuple(self.shape))
    with no_grad():
        self.copy_(_place(-np.log1p(-u) / float(lambd), self))
    return self


def _random_(self: Tensor, from_: int = 0, to: int | None = None, *, generator=None) -> Tensor:
    """In place: integers uniform in [from_, to) (one argument: [0, from_)), as
    `Tensor.random_`; without bounds, [0, 2^24] for float32 (the integers it holds exactly)."""
    _check_fill("random_", self)
    if generator is not None:
        raise ArgumentError("random_: ferrograd has one generator per process; pass generator=None")
    if to is None:
        lo, hi = (0, from_) if from_ else (0, 2**24 + 1 if self.dtype.is_floating_point else 2**31)
    else:
        lo, hi = from_, to
    draws = randint(int(lo), int(hi), tuple(self.shape))
    with no_grad():
        self.copy_(draws.to(self.device, self.dtype))
    return self


def _install() -> None:
    for name, fn in (("bernoulli_", _bernoulli_), ("exponential_", _exponential_), ("random_", _random_)):
        if not hasattr(Tensor, name):
            setattr(Tensor, name, fn)
    for name in ("bernoulli", "multinomial", "poisson"):
        if not hasattr(Tensor, name):
            setattr(Tensor, name, _method(globals()[name], name))


_install()
