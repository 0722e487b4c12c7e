"""Diagnostics that explain training: why is the network not learning?

>>> d = fg.diagnose(model, x[:256], y[:256])      # prints one table, warns for each problem
>>> history = fg.train.fit(model, x, y, epochs=5, monitor=True)
>>> history.history["selu_var_max_dev"], history.monitor[-1]["layers"]

What is measured, on one batch (the first `batch_size` samples of x and y):

- **activations**: the output of every `nn.Linear`, `nn.SELU` and `nn.ReLU` module, with
  its mean and variance pooled over the batch and the units;
- **dead units** (ReLU layers): a unit is dead when its output is <= 0 (so exactly 0) for
  every sample of the batch; the figure is the fraction of the layer's units that are dead;
- **gradient norms** (Linear layers): the L2 norm of the gradient of the loss on the batch
  with respect to the layer's parameters (weight and bias together), from one backward pass.

The batch runs as in training but without dropout: `nn.Dropout` and `nn.AlphaDropout` are
off (eval mode: their noise would blur the figures), and `nn.BatchNorm1d` normalizes with
the batch's statistics (training mode: what the next training step sees; an untrained
BatchNorm's running statistics would leave deep residual networks unnormalized). The
model's train/eval mode, its parameters, its buffers (BatchNorm's running statistics, put
back after the batch) and its gradients are as they were afterwards: `diagnose` has no
side effect on the model. Layers are found by calling the model with forward hooks on the
modules above (`Module.register_forward_hook`; a hooked layer of an `nn.Sequential` runs
on its own, not fused with its neighbour); a functional activation (`x.relu()` in a custom
`forward`) is not a module and is not seen.

The rules, each a module-level constant (and a keyword argument of `diagnose` and
`TrainingMonitor`):

- SELU layers drift (`SELU_MEAN_TOL`, `SELU_VAR_FACTOR`): a SELU layer's output should keep
  mean 0 and variance 1; it is flagged when |mean| > 0.2, or variance outside [1/2, 2]. (At
  initialization a lecun_normal network on standardized inputs stays within 0.02 of mean 0
  and 0.1 of variance 1; he-normal weights push the variance to 2.5-5 by the second to
  fourth layer, Linear's default uniform init shrinks it to 0.2-0.4.)
- Before training, the ways to break self-normalization (`check_self_normalizing`, for a
  network with an `nn.SELU`): a plain `nn.Dropout` (use `nn.AlphaDropout`), an
  `nn.BatchNorm1d` (remove it), and a Linear layer feeding a SELU whose weights are not
  lecun_normal. The Linear layers checked are those followed directly by an `nn.SELU` in a
  `Sequential` (an output layer feeds no SELU and may keep any init). The init is judged
  from the weights: r = std(weight) * sqrt(fan_in) is 1 for lecun_normal, sqrt(2) = 1.41 for
  he/kaiming-normal and 1/sqrt(3) = 0.58 for Linear's default uniform(+-1/sqrt(fan_in)); a
  layer is flagged when |r - 1| > max(`INIT_STD_TOL` = 0.15, 4 / sqrt(2 n)) for a weight of n
  entries (4 standard errors of a sample std: a 64x20 weight has 1280 entries, so its r is
  accurate to about 2%, and the tolerance is 0.15). This judges the current weights: a
  trained network's weights have moved from their init, so the check is meant for before
  training.
- Dead ReLU units (`DEAD_FRACTION_TOL`): a ReLU layer is flagged when more than half of its
  units are dead.
- Vanishing/exploding gradients (`VANISHING_RATIO`, `EXPLODING_RATIO`): the ratio of the
  first Linear layer's gradient norm to the last one's (in the order the layers run) is
  flagged below 1e-3 (vanishing: the first layers do not learn) or above 1e3 (exploding).
  A gradient or loss that is not finite is always flagged.

Each problem found is issued with `warnings.warn(..., ferrograd.TrainingWarning)`, so it can
be filtered (`warnings.simplefilter("ignore", fg.TrainingWarning)`) or turned into an error
(`"error"`); a healthy network raises none.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

import numpy as np

from . import _core
from . import losses as _losses
from ._core import Tensor
from ._modelinfo import device_of, logit_model
from .autograd import enable_grad, no_grad
from .callbacks import Callback
from .errors import TrainingWarning
from .nn import SELU, AlphaDropout, BatchNorm1d, Dropout, Linear, Module, ReLU, Sequential

__all__ = [
    "SELU_MEAN_TOL",
    "SELU_VAR_FACTOR",
    "INIT_STD_TOL",
    "DEAD_FRACTION_TOL",
    "VANISHING_RATIO",
    "EXPLODING_RATIO",
    "TrainingWarning",
    "LayerStats",
    "Issue",
    "Diagnosis",
    "diagnose",
    "check_self_normalizing",
    "TrainingMonitor",
    "SelfNormalizationMonitor",
]

#: A SELU layer's output is flagged when the absolute value of its mean exceeds this.
SELU_MEAN_TOL = 0.2
#: A SELU layer's output is flagged when its variance is outside [1/factor, factor].
SELU_VAR_FACTOR = 2.0
#: A Linear feeding a SELU is flagged when |std(weight) * sqrt(fan_in) - 1| exceeds this
#: (or 4 standard errors of the sample std, for small weights).
INIT_STD_TOL = 0.15
#: A ReLU layer is flagged when more than this fraction of its units are dead.
DEAD_FRACTION_TOL = 0.5
#: Vanishing gradients: first Linear's gradient norm / last Linear's below this.
VANISHING_RATIO = 1e-3
#: Exploding gradients: first Linear's gradient norm / last Linear's above this.
EXPLODING_RATIO = 1e3


# ---------------------------------------------------------------------------- results


@dataclass
class LayerStats:
    """One recorded layer: its name in the model (`named_modules`), its type, its output
    width, its output's mean and variance (pooled over batch and units), the fraction of dead
    units (ReLU layers, else None) and its gradient norm (Linear layers, else None)."""

    name: str
    kind: str
    units: int
    mean: float
    var: float
    dead_fraction: float | None = None
    grad_norm: float | None = None


@dataclass
class Issue:
    """A problem found: `kind` ("selu_drift", "init", "dropout", "batchnorm", "dead_units",
    "vanishing", "exploding", "not_finite"), the layer it concerns ("" for the whole model)
    and the message, which names the fix."""

    kind: str
    layer: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass
class Diagnosis:
    """What `diagnose` found: per-layer rows, the gradient ratio, the problems, as a table
    (`str(d)`, `d.table()`), or plain data (`d.to_dict()`, `d.figures()`)."""

    model: str
    samples: int
    loss: float | None
    layers: list[LayerStats] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    selu: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        """The problems found, as messages (each names its fix); empty for a healthy network."""
        return [i.message for i in self.issues]

    @property
    def grad_ratio(self) -> float | None:
        """First Linear layer's gradient norm / last one's (None without two Linear layers
        with gradients)."""
        norms = [r.grad_norm for r in self.layers if r.grad_norm is not None]
        if len(norms) < 2:
            return None
        first, last = norms[0], norms[-1]
        if last == 0.0:
            return math.inf if first > 0 else math.nan
        return first / last

    def figures(self) -> dict[str, float]:
        """The per-epoch summary `fit(monitor=True)` logs into the History (only the keys
        that apply to the network):

        - `selu_mean_max_dev`: the largest |mean| of a SELU layer's output;
        - `selu_var_max_dev`: the largest |variance - 1| of a SELU layer's output;
        - `dead_max`: the largest fraction of dead units of a ReLU layer;
        - `grad_norm_min`, `grad_norm_max`: the smallest and largest Linear gradient norms;
        - `grad_norm_ratio`: first Linear layer's gradient norm / last one's;
        - `problems`: how many problems were found.
        """
        out: dict[str, float] = {}
        selu = [r for r in self.layers if r.kind == "SELU"]
        if selu:
            out["selu_mean_max_dev"] = max(abs(r.mean) for r in selu)
            out["selu_var_max_dev"] = max(abs(r.var - 1.0) for r in selu)
        dead = [r.dead_fraction for r in self.layers if r.dead_fraction is not None]
        if dead:
            out["dead_max"] = max(dead)
        norms = [r.grad_norm for r in self.layers if r.grad_norm is not None]
        if norms:
            out["grad_norm_min"], out["grad_norm_max"] = min(norms), max(norms)
        ratio = self.grad_ratio
        if ratio is not None:
            out["grad_norm_ratio"] = ratio
        out["problems"] = float(len(self.issues))
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain data: model, samples, loss, selu, layers (a dict per row), grad_ratio,
        problems (messages), issues (kind, layer, message), notes."""
        return {
            "model": self.model,
            "samples": self.samples,
            "loss": self.loss,
            "selu": self.selu,
            "layers": [asdict(r) for r in self.layers],
            "grad_ratio": self.grad_ratio,
            "problems": self.problems,
            "issues": [asdict(i) for i in self.issues],
            "notes": list(self.notes),
        }

    def table(self) -> str:
        """The rows as one table, then the gradient ratio, the problems and the notes."""
        loss = "" if self.loss is None else f"; loss {self.loss:.4g}"
        lines = [f"Diagnosis of {self.model} on {self.samples} samples (dropout off{loss})"]
        head = ("layer", "type", "units", "mean", "var", "dead", "grad norm")
        rows = [
            (
                r.name or "(model)",
                r.kind,
                str(r.units),
                f"{r.mean:.3f}",
                f"{r.var:.3f}",
                "" if r.dead_fraction is None else f"{100 * r.dead_fraction:.0f}%",
                "" if r.grad_norm is None else f"{r.grad_norm:.3e}",
            )
            for r in self.layers
        ]
        widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(head)]

        def fmt(cells: tuple[str, ...]) -> str:
            left = "  ".join(c.ljust(w) for c, w in zip(cells[:2], widths[:2]))
            right = "  ".join(c.rjust(w) for c, w in zip(cells[2:], widths[2:]))
            return f"{left}  {right}".rstrip()

        lines.append(fmt(head))
        lines.append("-" * len(fmt(head)))
        lines += [fmt(row) for row in rows]
        ratio = self.grad_ratio
        if ratio is not None:
            lines.append(f"gradient norm, first Linear / last Linear: {ratio:.3g}")
        if self.issues:
            lines.append(f"{len(self.issues)} problem(s):")
            lines += [f"  - {i.message}" for i in self.issues]
        else:
            lines.append("no problems found")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


# ---------------------------------------------------------------------------- checks


def _selu_net(model: Module) -> bool:
    return any(isinstance(m, SELU) for m in model.modules())


def _names(model: Module) -> dict[int, str]:
    return {id(m): name for name, m in model.named_modules()}


def _feeding_selu(model: Module) -> Iterator[tuple[str, Linear]]:
    """The Linear layers followed directly by an nn.SELU in a Sequential, with their names."""
    names = _names(model)
    for m in model.modules():
        if isinstance(m, Sequential):
            layers = list(m)
            for a, b in zip(layers, layers[1:]):
                if isinstance(a, Linear) and isinstance(b, SELU):
                    yield names.get(id(a), "?"), a


def _init_ratio(weight: Tensor, init_std_tol: float = INIT_STD_TOL) -> tuple[float, float]:
    """(std(weight) * sqrt(fan_in), the tolerance for it) of a Linear weight (out, in): the
    tolerance is `init_std_tol`, or 4 standard errors of a sample std of n entries
    (4 / sqrt(2 n)) when that is larger."""
    w = weight.detach().cpu().numpy().astype(np.float64)
    r = float(w.std() * math.sqrt(w.shape[1]))
    return r, max(init_std_tol, 4.0 / math.sqrt(2.0 * w.size))


def _init_guess(r: float) -> str:
    known = {"he/kaiming-normal": math.sqrt(2.0), "Linear's default uniform": 1.0 / math.sqrt(3.0)}
    name, ref = min(known.items(), key=lambda kv: abs(kv[1] - r))
    return f" (that of {name}, {ref:.2f})" if abs(ref - r) < 0.1 else ""


def _structure_issues(model: Module, init_std_tol: float = INIT_STD_TOL) -> list[Issue]:
    if not _selu_net(model):
        return []
    names = _names(model)
    out: list[Issue] = []
    for m in model.modules():
        name = names.get(id(m), "?")
        if isinstance(m, Dropout) and not isinstance(m, AlphaDropout):
            out.append(
                Issue(
                    "dropout",
                    name,
                    f"layer '{name}' is a plain nn.Dropout inside a SELU network: it sets dropped units "
                    "to 0 and rescales the rest, which breaks self-normalization (mean 0, variance 1); "
                    f"fix: use nn.AlphaDropout({m.p}) instead",
                )
            )
        elif isinstance(m, BatchNorm1d):
            out.append(
                Issue(
                    "batchnorm",
                    name,
                    f"layer '{name}' is an nn.BatchNorm1d inside a SELU network: SELU normalizes "
                    "itself, and batchnorm's batch statistics break its fixed point; "
                    "fix: remove the batchnorm layers from the SELU network",
                )
            )
    for name, lin in _feeding_selu(model):
        r, tol = _init_ratio(lin.weight, init_std_tol)
        if abs(r - 1.0) > tol:
            out.append(
                Issue(
                    "init",
                    name,
                    f"layer '{name}' (Linear feeding a SELU) has weight std {r:.2f}/sqrt(fan_in)"
                    f"{_init_guess(r)}, not lecun_normal's 1/sqrt(fan_in) (tolerance {tol:.2f}): "
                    "SELU self-normalizes only with lecun_normal weights; fix: build it with "
                    "nn.Linear(in, out, init='lecun_normal') or call nn.init.lecun_normal(layer.weight) "
                    "and zero the bias (this judges the current weights: check before training)",
                )
            )
    return out


def check_self_normalizing(model: Module) -> list[str]:
    """The pre-training checks of a SELU network (one with an `nn.SELU`; any other gives []):
    plain `nn.Dropout` (fix: `nn.AlphaDropout`), `nn.BatchNorm1d` (fix: remove it) and Linear
    layers feeding a SELU whose weights are not lecun_normal (the rule is in the module's
    docstring: |std(weight) * sqrt(fan_in) - 1| > max(0.15, 4 / sqrt(2 n))). Returns the
    problems as messages, each naming its fix; it issues no warning."""
    return [i.message for i in _structure_issues(model)]


# ---------------------------------------------------------------------------- recording


def _as_input(a: Any, device: str) -> Tensor:
    t = a if isinstance(a, Tensor) else _core.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    if t.dtype != _core.dtype.float32 and t.dtype != _core.dtype.float64:
        t = t.to(_core.dtype.float32)
    return t if device == "cpu" else t.to(device)


def _as_target(a: Any, kind: str, device: str) -> Tensor:
    if isinstance(a, Tensor):
        t = a
    else:
        arr = np.asarray(a)
        dt = np.int64 if np.issubdtype(arr.dtype, np.integer) else np.float32
        t = _core.from_numpy(np.ascontiguousarray(arr, dtype=dt))
    if kind == "cross_entropy" and t.ndim == 1 and t.dtype != _core.dtype.int64:
        t = t.to(_core.dtype.int64)
    elif kind in ("mse", "binary_cross_entropy") and t.dtype != _core.dtype.float32:
        t = t.to(_core.dtype.float32)
    # int64 labels stay on the CPU: the GPU backend holds float32 tensors
    return t if device == "cpu" or t.dtype != _core.dtype.float32 else t.to(device)


@dataclass
class _Record:
    name: str
    module: Module
    out: Tensor


@contextmanager
def _recording(model: Module, names: dict[int, str]) -> Iterator[list[_Record]]:
    """While active: each call of a Linear, SELU or ReLU module in `model` appends (name,
    module, output) to the list yielded, through forward hooks (a `Sequential` runs a hooked
    layer on its own, so a fused Linear+SELU or BatchNorm+ReLU is seen as two modules)."""
    records: list[_Record] = []

    def record(m: Module, args: tuple, out: Any) -> None:
        if isinstance(out, Tensor):
            records.append(_Record(names.get(id(m), "?"), m, out))

    handles = [
        m.register_forward_hook(record) for m in model.modules() if isinstance(m, (Linear, SELU, ReLU))
    ]
    try:
        yield records
    finally:
        for h in handles:
            h.remove()


def _stats(t: Tensor) -> tuple[np.ndarray, int]:
    a = t.detach().cpu().numpy().astype(np.float64)
    if a.ndim == 0:
        a = a.reshape(1, 1)
    elif a.ndim == 1:
        a = a.reshape(-1, 1)
    else:
        a = a.reshape(-1, a.shape[-1])
    return a, a.shape[1]


def _grad_norm(m: Module) -> float | None:
    total, seen = 0.0, False
    for p in m.parameters():
        g = p.grad
        if g is not None:
            total += float(np.sum(g.detach().cpu().numpy().astype(np.float64) ** 2))
            seen = True
    return math.sqrt(total) if seen else None


def _diagnose(
    model: Module,
    x: Any,
    y: Any = None,
    loss: Any = None,
    batch_size: int = 256,
    selu_mean_tol: float = SELU_MEAN_TOL,
    selu_var_factor: float = SELU_VAR_FACTOR,
    dead_fraction_tol: float = DEAD_FRACTION_TOL,
    vanishing_ratio: float = VANISHING_RATIO,
    exploding_ratio: float = EXPLODING_RATIO,
    init_std_tol: float = INIT_STD_TOL,
    check_init: bool = True,
) -> Diagnosis:
    """`diagnose` without printing or warning."""
    if batch_size < 1:
        raise ValueError(f"diagnose: batch_size must be >= 1, got {batch_size}")
    device = device_of(model)
    xt = _as_input(x, device)[:batch_size]
    if loss is None and y is not None:
        is_int = (
            y.dtype == _core.dtype.int64
            if isinstance(y, Tensor)
            else np.issubdtype(np.asarray(y).dtype, np.integer)
        )
        loss = "cross_entropy" if is_int else "mse"
    kind, loss_fn = _losses.get(loss) if loss is not None else ("none", None)
    yt = _as_target(y, kind, device)[:batch_size] if y is not None else None
    if yt is not None and yt.shape[0] != xt.shape[0]:
        raise ValueError(f"diagnose: x has {xt.shape[0]} samples but y has {yt.shape[0]}")
    names = _names(model)
    params = list(model.parameters())
    saved_grads = [p.grad for p in params]
    was_training = {id(m): m.training for m in model.modules()}
    with no_grad():  # BatchNorm's running statistics, updated by a batch in training mode
        saved_buffers = [(b, b.clone()) for b in model.buffers()]
    batch_stats = xt.shape[0] > 1  # a batch of one cannot be batch-normalized
    run = logit_model(model, kind) if yt is not None else model
    loss_value: float | None = None
    norms: dict[int, float | None] = {}
    try:
        model.eval()
        for m in model.modules():
            if isinstance(m, BatchNorm1d) and batch_stats:
                object.__setattr__(m, "training", True)
        for p in params:
            p.grad = None
        with enable_grad(), _recording(run, names) as records:
            out = run(xt)
            if yt is not None and loss_fn is not None:
                loss_t = loss_fn(out, yt)
                loss_value = float(loss_t.item())
                if any(p.requires_grad for p in params):
                    loss_t.backward()
                norms = {id(r.module): _grad_norm(r.module) for r in records if isinstance(r.module, Linear)}
        with no_grad():
            rows = []
            for r in records:
                a, units = _stats(r.out)
                dead = float(np.mean(np.all(a <= 0.0, axis=0))) if isinstance(r.module, ReLU) else None
                rows.append(
                    LayerStats(
                        r.name,
                        type(r.module).__name__,
                        units,
                        float(a.mean()),
                        float(a.var()),
                        dead,
                        norms.get(id(r.module)) if isinstance(r.module, Linear) else None,
                    )
                )
    finally:
        for p, g in zip(params, saved_grads):
            p.grad = g
        for m in model.modules():
            object.__setattr__(m, "training", was_training.get(id(m), m.training))
        with no_grad():
            for b, before in saved_buffers:
                b.copy_(before)

    d = Diagnosis(type(model).__name__, xt.shape[0], loss_value, rows, selu=_selu_net(model))
    if check_init:
        d.issues += _structure_issues(model, init_std_tol)
        if d.selu and any(True for _ in _feeding_selu(model)):
            d.notes.append(
                "the init check judges the current weights; a trained network's weights have moved "
                "from their init, so it is meant for before training"
            )
    d.issues += _figure_issues(
        d, selu_mean_tol, selu_var_factor, dead_fraction_tol, vanishing_ratio, exploding_ratio
    )
    return d


def _figure_issues(
    d: Diagnosis,
    selu_mean_tol: float,
    selu_var_factor: float,
    dead_fraction_tol: float,
    vanishing_ratio: float,
    exploding_ratio: float,
) -> list[Issue]:
    out: list[Issue] = []
    if d.loss is not None and not math.isfinite(d.loss):
        out.append(
            Issue("not_finite", "", f"the loss is {d.loss}: lower the learning rate, or check the inputs")
        )
    for r in d.layers:
        if r.kind == "SELU":
            lo, hi = 1.0 / selu_var_factor, selu_var_factor
            if not (abs(r.mean) <= selu_mean_tol and lo <= r.var <= hi):
                out.append(
                    Issue(
                        "selu_drift",
                        r.name,
                        f"SELU layer '{r.name}' drifted from self-normalization: mean {r.mean:.3f}, "
                        f"variance {r.var:.3f} (tolerance: |mean| <= {selu_mean_tol}, variance in "
                        f"[{lo:.3g}, {hi:.3g}]); fix: lecun_normal init of the Linear layers, "
                        "standardized inputs (mean 0, variance 1 per feature), AlphaDropout, "
                        "no batchnorm, or a lower learning rate",
                    )
                )
        if r.dead_fraction is not None and r.dead_fraction > dead_fraction_tol:
            out.append(
                Issue(
                    "dead_units",
                    r.name,
                    f"ReLU layer '{r.name}': {100 * r.dead_fraction:.0f}% of its {r.units} units are dead "
                    f"(0 for all {d.samples} samples; tolerance {100 * dead_fraction_tol:.0f}%); fix: a "
                    "lower learning rate, he_normal init, BatchNorm before the ReLU, or LeakyReLU",
                )
            )
        if r.grad_norm is not None and not math.isfinite(r.grad_norm):
            out.append(
                Issue(
                    "not_finite",
                    r.name,
                    f"layer '{r.name}' has a gradient norm of {r.grad_norm}: lower the learning rate "
                    "or clip the gradients (nn.utils.clip_grad_norm_)",
                )
            )
    ratio = d.grad_ratio
    if ratio is not None and math.isfinite(ratio):
        if ratio < vanishing_ratio:
            out.append(
                Issue(
                    "vanishing",
                    "",
                    f"vanishing gradients: the first Linear layer's gradient norm is {ratio:.3g} of the "
                    f"last one's (threshold {vanishing_ratio:g}); fix: residual connections, "
                    "BatchNorm, ReLU/SELU rather than sigmoid/tanh, he_normal (ReLU) or lecun_normal "
                    "(SELU) init",
                )
            )
        elif ratio > exploding_ratio:
            out.append(
                Issue(
                    "exploding",
                    "",
                    f"exploding gradients: the first Linear layer's gradient norm is {ratio:.3g} times "
                    f"the last one's (threshold {exploding_ratio:g}); fix: a lower learning rate, "
                    "gradient clipping (nn.utils.clip_grad_norm_), BatchNorm, or smaller init",
                )
            )
    return out


def _warn(issues: list[Issue]) -> None:
    """Warns each issue, pointing at the first caller outside ferrograd (the user's call of
    `diagnose` or `fit`)."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(0), 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    for i in issues:
        warnings.warn(i.message, TrainingWarning, stacklevel=level)


def diagnose(
    model: Module,
    x: Any,
    y: Any = None,
    loss: Any = None,
    batch_size: int = 256,
    stream: TextIO | None = None,
    *,
    selu_mean_tol: float = SELU_MEAN_TOL,
    selu_var_factor: float = SELU_VAR_FACTOR,
    dead_fraction_tol: float = DEAD_FRACTION_TOL,
    vanishing_ratio: float = VANISHING_RATIO,
    exploding_ratio: float = EXPLODING_RATIO,
    init_std_tol: float = INIT_STD_TOL,
    check_init: bool = True,
    verbose: bool = True,
) -> Diagnosis:
    """Explains a network on one batch: per-layer activation mean and variance (SELU nets),
    fraction of dead units (ReLU layers), gradient norm (Linear layers) and the problems
    found, printed as one table to `stream` (stdout; `verbose=False` prints nothing).

    >>> d = fg.diagnose(model, x_train[:256], y_train[:256])
    >>> d.problems, d.to_dict()["layers"][0]

    - The batch is the first `batch_size` samples of x (and y); it runs with dropout off
      and BatchNorm on the batch's statistics, and afterwards the model's mode, parameters,
      buffers and gradients are as they were.
    - `loss`: as `fit`'s (a name or a callable); by default cross-entropy for integer labels
      and MSE otherwise; a final Softmax/Sigmoid is skipped for classification, as `fit`
      does. With `y=None` there is no backward pass and no gradient norm.
    - The rules and their tolerances (the keyword arguments, defaults the module's
      constants) are stated in the `ferrograd.diagnostics` docstring. With `check_init`, a
      SELU network's structure and init are checked too (`check_self_normalizing`); the init
      check judges the current weights, so it is meant for before training.
    - Each problem is also issued as a `ferrograd.TrainingWarning`; a healthy network
      raises none.
    """
    d = _diagnose(
        model,
        x,
        y,
        loss,
        batch_size,
        selu_mean_tol,
        selu_var_factor,
        dead_fraction_tol,
        vanishing_ratio,
        exploding_ratio,
        init_std_tol,
        check_init,
    )
    if verbose:
        out = stream or sys.stdout
        out.write(d.table() + "\n")
        out.flush()
    _warn(d.issues)
    return d


# ---------------------------------------------------------------------------- monitor


class TrainingMonitor(Callback):
    """A callback that diagnoses the model after each epoch on a fixed batch (`x`, `y`: the
    first `batch_size` samples) and logs the figures; `fit(..., monitor=True)` adds one on
    the first training samples.

    >>> mon = fg.diagnostics.TrainingMonitor(x[:256], y[:256])
    >>> fg.train.fit(model, x, y, epochs=10, callbacks=[mon])
    >>> mon.records[-1]["layers"]

    - At the start of training (with `check_init`), a SELU network's structure and init are
      checked (`check_self_normalizing`): the checks for "before training".
    - After each epoch: `Diagnosis.figures()` (e.g. `selu_mean_max_dev`, `dead_max`,
      `grad_norm_ratio`) is added to the epoch's logs (so later callbacks, such as
      `CSVLogger` or `EarlyStopping(monitor="dead_max")`, see them) and appended to the
      History of the `fit` running (`history.history["selu_var_max_dev"]`), and
      `Diagnosis.to_dict()` is appended to `self.records` and to `history.monitor`.
    - Each problem is warned (`ferrograd.TrainingWarning`) the first time it is found for a
      layer in a training run (with `warn=True`), not again each epoch.

    The tolerances are `diagnose`'s keyword arguments."""

    def __init__(
        self,
        x: Any,
        y: Any = None,
        loss: Any = None,
        batch_size: int = 256,
        warn: bool = True,
        check_init: bool = True,
        **tolerances: float,
    ) -> None:
        allowed = {
            "selu_mean_tol",
            "selu_var_factor",
            "dead_fraction_tol",
            "vanishing_ratio",
            "exploding_ratio",
            "init_std_tol",
        }
        unknown = set(tolerances) - allowed
        if unknown:
            raise TypeError(
                f"TrainingMonitor: unknown tolerances {sorted(unknown)} (allowed: {sorted(allowed)})"
            )
        self.x, self.y, self.loss, self.batch_size = x, y, loss, batch_size
        self.warn, self.check_init, self.tolerances = warn, check_init, tolerances
        self.records: list[dict[str, Any]] = []
        self._warned: set[tuple[str, str]] = set()

    def _issue(self, issues: list[Issue]) -> None:
        fresh = [i for i in issues if (i.kind, i.layer) not in self._warned]
        self._warned |= {(i.kind, i.layer) for i in fresh}
        if self.warn:
            _warn(fresh)

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.records, self._warned = [], set()
        if self.check_init:
            self._issue(_structure_issues(self.model, self.tolerances.get("init_std_tol", INIT_STD_TOL)))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        tol = self.tolerances
        d = _diagnose(
            self.model,
            self.x,
            self.y,
            self.loss,
            self.batch_size,
            tol.get("selu_mean_tol", SELU_MEAN_TOL),
            tol.get("selu_var_factor", SELU_VAR_FACTOR),
            tol.get("dead_fraction_tol", DEAD_FRACTION_TOL),
            tol.get("vanishing_ratio", VANISHING_RATIO),
            tol.get("exploding_ratio", EXPLODING_RATIO),
            check_init=False,  # the weights are trained now: judged at on_train_begin
        )
        figures = d.figures()
        record = {"epoch": epoch, **d.to_dict()}
        self.records.append(record)
        if logs is not None:
            logs.update(figures)
        history = getattr(self.model, "history", None)
        if history is not None and isinstance(getattr(history, "history", None), dict):
            for k, v in figures.items():
                history.history.setdefault(k, []).append(float(v))
            if isinstance(getattr(history, "monitor", None), list):
                history.monitor.append(record)
        self._issue(d.issues)


#: The issue's name for the monitor of SELU networks: the same callback (it also reports
#: dead units and gradient norms, which a SELU network's figures simply lack).
SelfNormalizationMonitor = TrainingMonitor
