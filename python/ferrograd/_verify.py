"""`fg.gpu.verify`: one training step on the CPU and on the GPU from the same weights,
compared layer by layer against the float32 tolerance each op allows.

Each leaf layer is checked in isolation: it gets the input the CPU run gave it (on both
devices), the same dropout mask (one seed) and the same output gradient, so a difference
in its row is that layer's own, not one carried from upstream; the first row over its
tolerance names the layer to look at. The loss and the weights after one optimizer step
are then compared end to end (a looser bound: errors add up along the network).

The tolerance of an op is `factor * eps32 * sqrt(n) * scale`: eps32 = 2**-23, `n` the
length of the sums the op makes (1 for elementwise ops; for a Linear the largest of its
input width, output width and batch, since its gradients sum over those), `scale` the
largest magnitude of the CPU's result. Summing n float32 terms in another order moves a
result by about eps32 * sqrt(n) of its scale; `factor` (16 by default) leaves room for
the few ulps by which the GPU's exp, log and tanh differ from the host's.
"""

from __future__ import annotations

import copy
import math
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

import numpy as np

from . import _core
from . import losses as _losses
from ._core import DeviceError, Tensor
from ._device import gpu_available
from .autograd import no_grad
from .nn import layers
from .optim import SGD

EPS32 = 2.0**-23


@dataclass
class VerifyRow:
    """One compared quantity: `what` (output, input grad, a parameter's grad, ...) of
    `layer`, its largest difference and the tolerance it was held to."""

    layer: str
    kind: str
    what: str
    diff: float
    tol: float

    @property
    def ok(self) -> bool:
        """Whether the difference is within the tolerance."""
        return self.diff <= self.tol


@dataclass
class VerifyReport:
    """What `verify` found: every row, and the first one over its tolerance (None when
    the two devices agree)."""

    rows: list[VerifyRow] = field(default_factory=list)

    @property
    def first_failure(self) -> VerifyRow | None:
        """The first row over its tolerance, in the order the layers ran."""
        return next((r for r in self.rows if not r.ok), None)

    @property
    def ok(self) -> bool:
        """Whether every row is within its tolerance."""
        return self.first_failure is None

    def __str__(self) -> str:
        w = max([len(r.layer) for r in self.rows] + [5])
        k = max([len(r.kind) for r in self.rows] + [4])
        c = max([len(r.what) for r in self.rows] + [8])
        head = f"{'layer':<{w}}  {'type':<{k}}  {'compared':<{c}}  {'max |cpu-gpu|':>13}  {'tolerance':>10}"
        lines = [head]
        for r in self.rows:
            mark = "" if r.ok else "  <-- over"
            cells = f"{r.layer:<{w}}  {r.kind:<{k}}  {r.what:<{c}}"
            lines.append(f"{cells}  {r.diff:>13.3e}  {r.tol:>10.3e}{mark}")
        bad = self.first_failure
        if bad is None:
            lines.append("Every layer agrees within its float32 tolerance.")
        else:
            times = bad.diff / bad.tol if bad.tol else math.inf
            lines.append(
                f"First layer over its tolerance: {bad.layer} ({bad.kind}): {bad.what} differs by "
                f"{bad.diff:.3e}, {times:.1f}x its tolerance {bad.tol:.3e}."
            )
        return "\n".join(lines)


def _np(t: Tensor) -> np.ndarray:
    return t.detach().cpu().float().numpy().astype(np.float64)


def _diff(a: Tensor, b: Tensor) -> float:
    """Largest |a - b|, where two equal infinities or two NaNs agree and any other
    non-finite mismatch is infinite."""
    x, y = _np(a), _np(b)
    if x.shape != y.shape:
        return math.inf
    same = (x == y) | (np.isnan(x) & np.isnan(y))
    d = np.where(same, 0.0, np.abs(x - y))
    d = np.where(np.isnan(d), math.inf, d)
    return float(d.max()) if d.size else 0.0


def _scale(t: Tensor) -> float:
    v = np.abs(_np(t))
    v = v[np.isfinite(v)]
    return float(v.max()) if v.size else 0.0


def _elementwise(m) -> bool:
    drops = tuple(getattr(layers, n) for n in ("Dropout", "AlphaDropout", "Dropout2d") if hasattr(layers, n))
    return isinstance(m, (layers._Activation, *drops))


def _sum_length(m, args: list) -> int:
    """How many terms the op's sums (forward and backward) run over, at most."""
    if _elementwise(m):
        return 1
    t = next((a for a in args if isinstance(a, Tensor)), None)
    if t is None or t.ndim == 0:
        return 1
    last = t.shape[-1] if t.shape[-1] else 1
    rows = max(1, t.numel() // last)
    n = max(last, rows)
    out = getattr(m, "out_features", None) or getattr(m, "out_channels", None)
    if isinstance(out, int):
        n = max(n, out)
    return n


def _float_tensor(a: Any) -> bool:
    return isinstance(a, Tensor) and a.dtype.is_floating_point


def _isolated(module, args: list, device: str, seed: int, gout_seed: int):
    """The module run alone on `device` from `args`: output, input gradients and parameter
    gradients for a fixed output gradient."""
    m = copy.deepcopy(module).to(device)
    for p in m.parameters():
        p.grad = None
    ins = [a.detach().to(device).requires_grad_() if _float_tensor(a) else a for a in args]
    ins = [a.to(device) if isinstance(a, Tensor) and not _float_tensor(a) else a for a in ins]
    _core.manual_seed(seed)
    out = m(*ins)
    if not isinstance(out, Tensor):
        got = type(out).__name__
        raise TypeError(f"gpu.verify: layer {type(module).__name__} returned {got}, not a tensor")
    grads: list[Tensor | None] = []
    pgrads: list[tuple[str, Tensor | None]] = []
    if out.requires_grad and out.dtype.is_floating_point:
        rng = np.random.default_rng(gout_seed)
        gout = _core.from_numpy(rng.standard_normal(tuple(out.shape)).astype(np.float32)).to(out.dtype)
        out.backward(gout.to(device))
        grads = [a.grad if _float_tensor(a) else None for a in ins]
        pgrads = [(n, p.grad) for n, p in m.named_parameters()]
    return out, grads, pgrads


def verify(
    model,
    x,
    y,
    *,
    loss: Callable[[Tensor, Tensor], Tensor] | None = None,
    optimizer: Callable[[list], Any] | None = None,
    seed: int = 0,
    factor: float = 16.0,
    file: TextIO | None = sys.stdout,
) -> VerifyReport:
    """Runs one training step of `model` on the CPU and on the GPU from the same weights
    and reports, layer by layer, the largest difference of activations, input and weight
    gradients against the float32 tolerance expected for that op, then the loss and the
    updated weights; names the first layer over its tolerance. Prints the report to `file`
    (None: silent) and returns it (`report.ok`, `report.first_failure`, `report.rows`).

    `x`, `y`: a batch of inputs and targets (tensors or arrays). `loss`: a function of
    (output, target); by default cross-entropy for integer targets, else mean squared
    error. `optimizer`: builds the optimizer from a parameter list (default SGD, lr 0.01:
    its update is the gradient itself, so the weight rows measure the gradients). The model
    itself is not changed: both runs use copies, in training mode. `seed` fixes dropout
    masks (one generator serves both devices, so the masks agree) and the output gradients
    of the isolated layer runs. Raises DeviceError when no GPU is available."""
    if not gpu_available():
        raise DeviceError("gpu.verify: no GPU adapter is available to compare against")
    x = x if isinstance(x, Tensor) else _core.from_numpy(np.asarray(x))
    y = y if isinstance(y, Tensor) else _core.from_numpy(np.asarray(y))
    x, y = x.detach().cpu(), y.detach().cpu()
    if loss is None:
        loss = _losses.mse if y.dtype.is_floating_point else _losses.cross_entropy
    make_opt = optimizer if optimizer is not None else (lambda ps: SGD(ps, lr=0.01))
    base = copy.deepcopy(model).to("cpu")
    base.train()
    report = VerifyReport()

    # the input each leaf layer gets in the CPU run (its first call), from a copy whose
    # leaves carry a recording hook
    calls: list[tuple[str, Any, list]] = []
    seen: set[int] = set()
    probe = copy.deepcopy(base)
    for name, m in probe.named_modules():
        if next(m.children(), None) is not None:
            continue

        def hook(mod, args, out, name=name):
            if id(mod) not in seen:
                seen.add(id(mod))
                kept = [a.detach() if isinstance(a, Tensor) else a for a in args]
                calls.append((name or type(mod).__name__, mod, kept))

        m.register_forward_hook(hook)
    with no_grad():
        _core.manual_seed(seed)
        probe(x)
    for _, mod, _ in calls:
        mod.__dict__.pop("_hooks", None)  # the isolated runs copy these modules

    sums = 0
    for i, (name, mod, args) in enumerate(calls):
        kind = type(mod).__name__
        n = _sum_length(mod, args)
        sums += n
        c_out, c_grads, c_pgrads = _isolated(mod, args, "cpu", seed + i, seed + 1000 + i)
        g_out, g_grads, g_pgrads = _isolated(mod, args, "gpu", seed + i, seed + 1000 + i)

        def tol(ref: Tensor, n: int = n) -> float:
            return factor * EPS32 * math.sqrt(n) * _scale(ref)

        report.rows.append(VerifyRow(name, kind, "output", _diff(c_out, g_out), tol(c_out)))
        for k, (a, b) in enumerate(zip(c_grads, g_grads)):
            if a is not None and b is not None:
                what = "input grad" if len(c_grads) == 1 else f"input {k} grad"
                report.rows.append(VerifyRow(name, kind, what, _diff(a, b), tol(a)))
        for (pn, a), (_, b) in zip(c_pgrads, g_pgrads):
            if a is not None and b is not None:
                report.rows.append(VerifyRow(name, kind, f"{pn}.grad", _diff(a, b), tol(a)))

    # the whole step, end to end
    end_to_end = max(1, sums)
    steps = {}
    for dev in ("cpu", "gpu"):
        m = copy.deepcopy(base).to(dev)
        m.train()
        before = [p.detach().clone() for p in m.parameters()]
        opt = make_opt(list(m.parameters()))
        _core.manual_seed(seed)
        value = loss(m(x.to(dev)), y.to(dev))
        opt.zero_grad()
        value.backward()
        opt.step()
        deltas = [(n, p.detach() - b) for (n, p), b in zip(m.named_parameters(), before)]
        steps[dev] = (value.detach(), deltas)
    (c_loss, c_deltas), (g_loss, g_deltas) = steps["cpu"], steps["gpu"]
    loose = factor * EPS32 * math.sqrt(end_to_end)
    report.rows.append(
        VerifyRow("(model)", type(model).__name__, "loss", _diff(c_loss, g_loss), loose * _scale(c_loss))
    )
    # one scale for every update: a gradient that sums to nearly 0 (a bias before a batch
    # norm) keeps the rounding of its terms, which are as large as the others'
    step_scale = max([_scale(a) for _, a in c_deltas] + [0.0])
    for (pn, a), (_, b) in zip(c_deltas, g_deltas):
        report.rows.append(VerifyRow("(model)", "step", f"{pn} update", _diff(a, b), loose * step_scale))
    if file is not None:
        print(report, file=file)
    return report
