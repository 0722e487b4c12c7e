"""The tuning recipe's seven steps (`recipe`, `RecipeResult`, `build`)."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from .. import models as _models
from .. import nn
from .. import optim as _optim
from ..nn import Module
from . import _trial
from ._lr import LRSearch, _search
from ._report import _plot, _report
from ._rules import (
    DIVERGENCE_FACTOR,
    GROWTH_PATIENCE,
    MIN_IMPROVEMENT,
    OVERFIT_GAP,
    OVERFIT_PATIENCE,
    PARAM_MARGIN,
    PATIENCE,
    RISE_TOLERANCE,
    START_LR,
    STOP_PATIENCE,
    UNDERFIT_GAP,
)
from ._trial import (
    _DEPTH,
    _DROPOUT,
    OptimizerSpec,
    _auto_epochs,
    _better,
    _Clock,
    _key,
    _Log,
    _logged_trial,
    _optimizer,
    _Problem,
)

# ---------------------------------------------------------------------------- the recipe


def _residual_without_batchnorm(
    in_features: int, out_features: int, width: int, blocks: int, dropout: float = 0.0, head: str = "linear"
) -> nn.Sequential:
    """`models.residual` without BatchNorm (the recipe's steps 1-4): Linear -> ReLU, then
    `blocks` residual blocks of (Linear -> ReLU -> Dropout) x 2, then the output layer."""
    layers: list[Module] = [nn.Linear(in_features, width), nn.ReLU()]
    for _ in range(blocks):
        body: list[Module] = []
        for _ in range(2):
            body += [nn.Linear(width, width), nn.ReLU()]
            if dropout > 0:
                body.append(nn.Dropout(dropout))
        layers.append(nn.Residual(nn.Sequential(*body)))
    layers.append(nn.Linear(width, out_features))
    return _models._head(layers, head)


def build(config: dict) -> Module:
    """A fresh (untrained) model from a recipe's `config` (its architecture and arguments).

    >>> model = fg.tune.build(result.config)
    """
    arch, kw = config["architecture"], dict(config["kwargs"])
    n_in, n_out = config["in_features"], config["out_features"]
    if arch == "standard":
        return _models.standard(n_in, n_out, **kw)
    if arch == "residual":
        if kw.pop("batchnorm"):
            return _models.residual(n_in, n_out, layers_per_block=2, **kw)
        return _residual_without_batchnorm(n_in, n_out, **kw)
    if arch in ("selu", "self_normalizing"):
        return _models.self_normalizing(n_in, n_out, **kw)
    raise ValueError(f"tune: unknown architecture {arch!r} (choose from standard, residual, selu)")


def _kwargs(arch: str, width: int, depth: int, batchnorm: bool, dropout: float, head: str) -> dict:
    if arch == "standard":
        return {"width": width, "depth": depth, "dropout": dropout, "batchnorm": batchnorm, "head": head}
    if arch == "residual":
        return {"width": width, "blocks": depth, "dropout": dropout, "batchnorm": batchnorm, "head": head}
    return {"width": width, "depth": depth, "alpha_dropout": dropout, "head": head}


def _plain_params(arch: str, n_in: int, n_out: int, width: int, depth: int) -> int:
    """Parameters of the unregularized network (no batchnorm), in closed form."""
    hidden = depth - 1 if arch != "residual" else 2 * depth
    return n_in * width + width + hidden * (width * width + width) + width * n_out + n_out


def _start_width(arch: str, n_in: int, n_out: int, depth: int, n_train: int, margin: float) -> int:
    w = 1
    while _plain_params(arch, n_in, n_out, w, depth) < margin * n_train:
        w += 1
    return w


class RecipeResult:
    """The recipe's result: `model` (trained, best weights), `config` (builder, arguments,
    optimizer, lr, loss, budget; `fg.tune.build(config)` rebuilds it), `trials` (every trial,
    with its stage and decision), `verdict`, `report` (Markdown), `lr_search`, `plot(path)`."""

    def __init__(
        self,
        model: Module,
        config: dict,
        trials: list[dict],
        report: str,
        verdict: str,
        lr_search: LRSearch,
    ):
        self.model, self.config, self.trials = model, config, trials
        self.report, self.verdict, self.lr_search = report, verdict, lr_search
        self.interrupted = False

    def __str__(self) -> str:
        return self.report

    def __repr__(self) -> str:
        return f"RecipeResult(config={self.config!r}, trials={len(self.trials)}, verdict={self.verdict!r})"

    def to_dict(self) -> dict:
        """A dict of plain values: config, verdict, trials, report (floats may be NaN or inf;
        `strict_json` spells them for strict JSON)."""
        return {
            "config": dict(self.config),
            "verdict": self.verdict,
            "trials": [dict(t) for t in self.trials],
            "report": self.report,
        }

    def plot(self, path: str | os.PathLike) -> str:
        """Loss and val_loss of every trial in order (matplotlib when installed; otherwise a
        built-in SVG writer for a ".svg" path, ImportError for any other)."""
        ts = [t for t in self.trials if not t["diverged"]]
        idx = [float(i + 1) for i in range(len(ts))]
        series = [
            ("loss", idx, [t.get("loss", math.nan) for t in ts]),
            ("val_loss", idx, [t.get("val_loss", math.nan) for t in ts]),
        ]
        return _plot(os.fspath(path), "tuning recipe", "trial", "loss", series, False, [], None)


def recipe(
    x: Any,
    y: Any,
    architecture: str = "standard",
    *,
    loss: str | None = None,
    optimizer: OptimizerSpec = "adam",
    depth: int | None = None,
    epochs: int | None = None,
    steps: int | None = None,
    batch_size: int = 32,
    max_trials: int | None = 30,
    time_budget: float | None = None,
    seed: int = 0,
    validation_split: float = 0.2,
    validation_data: Any = None,
    metric: str = "val_loss",
    lr_trials: int = 8,
    patience: int = PATIENCE,
    stop_patience: int = STOP_PATIENCE,
    divergence_factor: float = DIVERGENCE_FACTOR,
    overfit_gap: float = OVERFIT_GAP,
    underfit_gap: float = UNDERFIT_GAP,
    rise_tolerance: float = RISE_TOLERANCE,
    min_improvement: float = MIN_IMPROVEMENT,
    growth_patience: int = GROWTH_PATIENCE,
    overfit_patience: int = OVERFIT_PATIENCE,
    param_margin: float = PARAM_MARGIN,
    max_width: int = 2048,
    bn_growth: int = 2,
    dropout_rates: Sequence[float] | None = None,
    device: str | None = None,
    log: str | os.PathLike | None = None,
    verbose: int = 1,
    stream: IO[str] | None = None,
) -> RecipeResult:
    """The tuning recipe's seven steps as one call (see the module docstring for the steps
    and the rules); returns a `RecipeResult`.

    - `architecture`: "standard", "residual" or "selu"; `depth` (None: 2 hidden layers,
      2 residual blocks, 4 SELU layers) stays fixed while the width grows.
    - Budget: `epochs` per trial, or `steps` (optimizer steps per trial; None for both:
      about `AUTO_STEPS` steps as whole epochs); trials stop early after `stop_patience`
      epochs without improvement. `max_trials` (all trials, the learning-rate search's
      `lr_trials` included), `time_budget` (seconds; the learning-rate search may use a third
      of it; a trial starts only when the time left exceeds the last trial's duration, and a
      running trial is cut when the time runs out: it does not count, and the recipe ends
      with the best trial so far).
    - `metric` decides (default "val_loss"); `optimizer` and `loss` as in `learning_rate`.
    - Rules: `overfit_gap`, `underfit_gap`, `rise_tolerance`, `min_improvement`,
      `growth_patience`, `overfit_patience`, `param_margin`, `max_width`, `bn_growth`, `dropout_rates`,
      `patience` and `divergence_factor` (the learning-rate search's).
    - `log`: a JSON-lines file; trials already there (same settings) are not run again.
    """
    arch = "selu" if architecture == "self_normalizing" else architecture
    if arch not in _DEPTH:
        raise ValueError(
            f"recipe: architecture must be 'standard', 'residual' or 'selu', got {architecture!r}"
        )
    problem = _Problem(x, y, loss, validation_split, validation_data)
    opt_name, opt = _optimizer(optimizer)
    r = _Recipe(
        problem=problem,
        arch=arch,
        opt_name=opt_name,
        opt=opt,
        depth=_DEPTH[arch] if depth is None else depth,
        epochs=_auto_epochs(epochs, problem.n_train, batch_size, steps),
        steps=steps,
        batch_size=batch_size,
        seed=seed,
        metric=metric,
        rates=tuple(dropout_rates) if dropout_rates is not None else _DROPOUT[arch],
        lr_trials=lr_trials,
        patience=patience,
        stop_patience=stop_patience,
        divergence_factor=divergence_factor,
        overfit_gap=overfit_gap,
        underfit_gap=underfit_gap,
        rise_tolerance=rise_tolerance,
        min_improvement=min_improvement,
        growth_patience=growth_patience,
        overfit_patience=overfit_patience,
        param_margin=param_margin,
        max_width=max_width,
        bn_growth=bn_growth,
        device=device,
        clock=_Clock(max_trials, time_budget),
        tlog=_Log(log),
        verbose=verbose,
        out=stream or sys.stdout,
    )
    r.say(
        f"tuning recipe: {arch} network, {problem.n_train} training and {problem.xv.shape[0]} validation "
        f"samples, {problem.loss}, {opt_name}; each trial: up to "
        + (f"{steps} steps" if steps is not None else f"{epochs if epochs is not None else r.epochs} epochs")
        + f" (batch {batch_size}), early stop after {stop_patience} epochs without improving {metric}"
    )
    width = r.start()
    lr = r.learning_rate(width)
    width, over_at = r.grow(width, lr)
    width, last = r.batchnorm(width, over_at, lr)
    base, first_drop, use_bn = r.dropout(width, last, lr)
    r.dropout_grow(base, first_drop, use_bn, lr)
    r.retune_lr()
    return r.verdict()


@dataclass
class _Recipe:
    """The recipe between its stages: the problem, the budget, the rules and the trials so
    far. `recipe()` calls the stages in order; each prints its decisions through `say`."""

    problem: _Problem
    arch: str
    opt_name: str
    opt: Callable[..., _optim.Optimizer]
    depth: int
    epochs: int
    steps: int | None
    batch_size: int
    seed: int
    metric: str
    rates: tuple[float, ...]
    lr_trials: int
    patience: int
    stop_patience: int
    divergence_factor: float
    overfit_gap: float
    underfit_gap: float
    rise_tolerance: float
    min_improvement: float
    growth_patience: int
    overfit_patience: int
    param_margin: float
    max_width: int
    bn_growth: int
    device: str | None
    clock: _Clock
    tlog: _Log
    verbose: int
    out: IO[str]
    lines: list[str] = field(default_factory=list)
    trials: list[dict] = field(default_factory=list)
    models_held: dict[str, Module] = field(default_factory=dict)
    interrupted: bool = False
    search: LRSearch | None = None

    def __post_init__(self) -> None:
        self.key = _key(
            {
                "search": "recipe",
                "architecture": self.arch,
                "depth": self.depth,
                "optimizer": self.opt_name,
                "loss": self.problem.loss,
                "epochs": self.epochs,
                "steps": self.steps,
                "batch_size": self.batch_size,
                "seed": self.seed,
                "metric": self.metric,
                "stop_patience": self.stop_patience,
                "data": self.problem.fingerprint(),
                "device": self.device,
            }
        )

    # ------------------------------------------------------------ printing and one trial

    def say(self, s: str) -> None:
        """One line of the path taken: printed (when verbose) and kept for the report."""
        self.lines.append(s)
        if self.verbose:
            self.out.write(s + "\n")
            self.out.flush()

    def config_of(self, width: int, bn: bool, p: float, lr: float) -> dict:
        """The config of one network of the recipe (what `build` takes)."""
        builder = {
            "standard": "ferrograd.models.standard",
            "residual": "ferrograd.models.residual" if bn else "ferrograd.tune._residual_without_batchnorm",
            "selu": "ferrograd.models.self_normalizing",
        }[self.arch]
        return {
            "architecture": self.arch,
            "builder": builder,
            "in_features": self.problem.n_in,
            "out_features": self.problem.n_out,
            "kwargs": _kwargs(self.arch, width, self.depth, bn, p, self.problem.head),
            "optimizer": self.opt_name,
            "lr": lr,
            "loss": self.problem.loss,
            "metric": self.metric,
            "epochs": self.epochs,
            "steps": self.steps,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "device": self.device,
        }

    def describe(self, t: dict) -> str:
        reg = [] if not t["batchnorm"] else ["batchnorm"]
        if t["dropout"]:
            reg.append(("alpha_dropout" if self.arch == "selu" else "dropout") + f" {t['dropout']:g}")
        return f"width {t['width']} ({t['params']} params), " + (", ".join(reg) or "no regularization")

    @staticmethod
    def figures(t: dict) -> str:
        keys = (
            "loss",
            "train_loss",
            "val_loss",
            "acc",
            "train_acc",
            "val_acc",
            "mae",
            "train_mae",
            "val_mae",
        )
        figs = [f"{k} {t[k]:.4g}" for k in keys if k in t]
        return ", ".join(figs) + f" (best epoch {t['best_epoch']}/{t['epochs']}, {t['seconds']:.1f}s)"

    def train(self, cfg: dict, deadline: float | None) -> tuple[dict, Module, bool]:
        """Trains the network of `cfg` under the recipe's budget and rules (a `_run`)."""
        return _trial._run(
            lambda: build(cfg),
            self.problem,
            self.opt,
            cfg["lr"],
            epochs=self.epochs,
            steps=self.steps,
            deadline=deadline,
            batch_size=self.batch_size,
            seed=self.seed,
            device=self.device,
            divergence_factor=self.divergence_factor,
            metric=self.metric,
            stop_patience=self.stop_patience,
        )

    def run(self, stage: str, width: int, bn: bool, p: float, lr: float) -> dict | None:
        """One trial (or its record from the log); None when the budget (or Ctrl-C) ends
        the recipe, a cut trial included."""
        if self.interrupted or not self.clock.can_run():
            return None
        cfg = self.config_of(width, bn, p, lr)
        tid = json.dumps({"kwargs": cfg["kwargs"], "lr": lr}, sort_keys=True)
        rec, model, self.interrupted = _logged_trial(
            self.tlog,
            self.key,
            tid,
            self.clock,
            lambda: self.train(cfg, self.clock.deadline()),
            {"width": width, "batchnorm": bn, "dropout": p, "config": cfg},
        )
        if rec is None:
            return None
        rec.update(stage=stage, id=tid)
        self.trials.append(rec)
        if rec.get("cut"):
            rec["decision"] = f"cut ({rec['cut']}); not counted"
            self.say(f"{stage}: {self.describe(rec)}: {rec['decision']}")
            return None
        if model is not None:
            self.models_held[tid] = model
        return rec

    def finished(self) -> list[dict]:
        """The recipe's counted trials: not diverged, not cut, not the learning-rate search's."""
        return [t for t in self.trials if not t["diverged"] and not t.get("cut") and t.get("id") is not None]

    def best_of(self, ts: list[dict]) -> dict:
        best = ts[0]
        for t in ts[1:]:
            if _better(t["score"], best["score"], self.metric):
                best = t
        return best

    def stop_line(self, stage: str) -> None:
        self.say(f"{stage}: budget: {self.clock.why}; stopping here")

    def decide(self, t: dict, text: str) -> None:
        t["decision"] = text
        self.say(f"{t['stage']}: {self.describe(t)}: {self.figures(t)}; {text}")

    # ------------------------------------------------------------ the rules

    @staticmethod
    def gap(t: dict) -> float:
        """(val_loss - train_loss) / val_loss, the training loss measured as the validation
        loss is (`train_loss`; the running `loss` for records without it)."""
        v = t.get("val_loss", math.nan)
        return (v - t.get("train_loss", t.get("loss", math.nan))) / abs(v) if v else math.nan

    def overfit(self, t: dict, prev: dict | None, growing: bool = False) -> str | None:
        """The first overfitting rule that fires, with its numbers; None when none does. While
        `growing`, val_rise and gap count only when the doubling from `prev` did not improve the metric
        by more than min_improvement (early stopping already keeps the best epoch)."""
        if t["diverged"]:
            return None
        metric, tol, mi = self.metric, self.rise_tolerance, self.min_improvement
        h = t.get("history", {})
        tr, va = h.get("loss", []), h.get(metric, [])
        b = t["best_epoch"] - 1
        helped = growing and (prev is None or _better(t["score"], prev["score"], metric, mi))
        if len(va) - 1 - b >= self.stop_patience and len(tr) == len(va) and not helped:
            fell = (tr[b] - tr[-1]) / abs(tr[b]) if tr[b] else 0.0
            rose = abs(va[-1] - va[b]) / abs(va[b]) if va[b] else 0.0
            if fell > mi and _better(va[b], va[-1], metric, tol):
                return (
                    f"rule val_rise: {metric} went from {va[b]:.4g} at epoch {b + 1} to {va[-1]:.4g} at "
                    f"epoch {len(va)} ({rose:.1%} worse > rise_tolerance {tol:.0%}) while loss "
                    f"fell from {tr[b]:.4g} to {tr[-1]:.4g} "
                    f"({fell:.0%} > min_improvement {mi:.0%})"
                )
        g = self.gap(t)
        if math.isfinite(g) and g > self.overfit_gap and not helped:
            return (
                f"rule gap: (val_loss {t['val_loss']:.4g} - train_loss "
                f"{t.get('train_loss', t['loss']):.4g}) / val_loss = "
                f"{g:.0%} > overfit_gap {self.overfit_gap:.0%}"
            )
        if prev is not None and not prev["diverged"] and "val_loss" in t and "val_loss" in prev:
            rise = (t["val_loss"] - prev["val_loss"]) / abs(prev["val_loss"])
            if rise > tol and t["loss"] < prev["loss"]:
                return (
                    f"rule capacity: val_loss rose from {prev['val_loss']:.4g} to {t['val_loss']:.4g} "
                    f"(+{rise:.0%} > rise_tolerance {tol:.0%}) while loss fell from "
                    f"{prev['loss']:.4g} to {t['loss']:.4g}"
                )
        return None

    def fit_state(self, t: dict) -> str:
        """Why no overfitting rule fired, in words (the gap and the metric's trend)."""
        metric, tol = self.metric, self.rise_tolerance
        g = self.gap(t)
        va = t.get("history", {}).get(metric, [])
        b = t["best_epoch"] - 1
        if t["best_epoch"] == len(va):
            trend = f"{metric} still improving at epoch {len(va)}"
        elif _better(va[b], va[-1], metric, tol):
            trend = (
                f"{metric} worsened from {va[b]:.4g} to {va[-1]:.4g} after epoch {b + 1}, which counts "
                "only when a doubling does not help (rule val_rise while growing); early stopping kept "
                f"epoch {b + 1}"
            )
        else:
            trend = (
                f"{metric} {va[-1]:.4g} at epoch {len(va)}, within rise_tolerance {tol:.0%} "
                f"of its best {va[t['best_epoch'] - 1]:.4g}"
            )
        if math.isfinite(g) and g > self.overfit_gap:
            # only reached while growing, when the doubling helped (see `overfit`)
            return (
                f"gap {g:.0%} > overfit_gap {self.overfit_gap:.0%}, which counts only when a doubling does "
                f"not help (rule gap while growing; this one improved {metric}), {trend}"
            )
        return f"gap {g:.0%} <= overfit_gap {self.overfit_gap:.0%}, {trend}"

    # ------------------------------------------------------------ the stages

    def start(self) -> int:
        """Steps 1-2: the starting width, no regularization."""
        p = self.problem
        width = _start_width(self.arch, p.n_in, p.n_out, self.depth, p.n_train, self.param_margin)
        params = _plain_params(self.arch, p.n_in, p.n_out, width, self.depth)
        depth_word = {"standard": "hidden layers", "residual": "residual blocks", "selu": "SELU layers"}[
            self.arch
        ]
        self.say(
            f"1 start: width {width}, {self.depth} {depth_word}: {params} parameters >= param_margin "
            f"{self.param_margin:g} x {p.n_train} training samples (the smallest such width)"
        )
        self.say("2 no regularization: no batchnorm, no dropout")
        return width

    def learning_rate(self, width: int) -> float:
        """Step 3: the learning-rate search on the starting network, with at most `lr_trials`
        trials and a third of the time budget."""
        clock = self.clock
        lr_clock = _Clock(
            self.lr_trials if clock.max_trials is None else max(1, min(self.lr_trials, clock.max_trials - 1)),
            None if clock.time_budget is None else clock.time_budget / 3,
        )
        out = self.out
        quiet: Callable[[str], Any] = (
            (lambda s: (out.write(s + "\n"), out.flush())) if self.verbose >= 2 else (lambda s: None)
        )
        start_cfg = self.config_of(width, False, 0.0, START_LR)
        search = _search(
            lambda: build(start_cfg),
            self.problem,
            self.opt,
            self.opt_name,
            json.dumps(start_cfg["kwargs"], sort_keys=True),
            lr_clock,
            self.tlog,
            quiet,
            start=START_LR,
            epochs=self.epochs,
            steps=self.steps,
            batch_size=self.batch_size,
            seed=self.seed,
            metric=self.metric,
            patience=self.patience,
            divergence_factor=self.divergence_factor,
            min_lr=1e-7,
            device=self.device,
            stage="3 learning rate",
        )
        self.search = search
        clock.trials += len(search.trials)
        if search.trials:
            clock.last_seconds = search.trials[-1]["seconds"]
        for t in search.trials:
            t.update(width=width, batchnorm=False, dropout=0.0, id=None)
            self.trials.append(t)
        if search.interrupted:
            self.interrupted = True
        if search.best_lr is None:
            raise RuntimeError("recipe: every learning rate tried diverged:\n" + search.table())
        lr = search.best_lr
        b = search.best or {}
        tried = ", ".join(
            f"{t['lr']:g}" + (" (diverged)" if t["diverged"] else " (cut)" if t.get("cut") else "")
            for t in search.trials
        )
        self.say(
            f"3 learning rate: tried {tried} with {self.opt_name}; "
            f"best lr {lr:g} ({self.metric} {b.get('score', math.nan):.4g}); "
            f"search ended: {search.stopped_because}"
        )
        return lr

    def grow(self, width: int, lr: float) -> tuple[int, dict | None]:
        """Step 4: double the width until the network overfits (or growth stalls, or
        `max_width`). Returns the width reached and the trial there."""
        metric, mi = self.metric, self.min_improvement
        prev: dict | None = None
        current = self.run("4 grow", width, False, 0.0, lr)
        over_at: dict | None = None
        stalls = 0
        nxt = "adding batchnorm" if self.arch != "selu" else "adding dropout"
        signal: dict | None = None  # the trial where an overfitting rule fired, while confirming
        confirms = 0
        best: dict | None = None  # the best growth trial so far
        while current is not None:
            if current["diverged"]:
                self.decide(
                    current, f"diverged at lr {lr:g} ({current['reason']}); keeping the previous width"
                )
                over_at = signal or prev
                break
            if signal is not None and best is not None:
                if not _better(current["score"], best["score"], metric, mi):
                    over_at = signal
                    self.decide(
                        current,
                        f"{metric} {current['score']:.4g} does not beat the best so far "
                        f"({best['score']:.4g} at width {best['width']}) by min_improvement {mi:.0%}: "
                        f"overfitting confirmed from width {signal['width']}; {nxt}",
                    )
                    break
                self.say(
                    f"4 grow: the overfitting signal at width {signal['width']} was noise: width "
                    f"{current['width']} beats the best {metric} so far ({best['score']:.4g})"
                )
                signal, confirms = None, 0
            if best is None or _better(current["score"], best["score"], metric):
                best = current
            why = self.overfit(current, prev, growing=True)
            if why and confirms < self.overfit_patience and current["width"] * 2 <= self.max_width:
                # one trial's verdict is noisy (a doubling may lose to its predecessor by chance):
                # look one doubling further before concluding (rule overfit_patience)
                signal, confirms = signal or current, confirms + 1
                self.decide(
                    current,
                    f"overfitting signal at width {current['width']} ({why}); confirming with width "
                    f"{current['width'] * 2} (rule overfit_patience={self.overfit_patience})",
                )
                prev, current = current, self.run("4 grow", current["width"] * 2, False, 0.0, lr)
                continue
            if why:
                over_at = signal or current
                self.decide(current, f"overfitting at width {over_at['width']} ({why}); {nxt}")
                break
            if prev is not None:
                improved = _better(current["score"], prev["score"], metric, mi) or (
                    current["loss"] < prev["loss"] * (1 - mi)
                )
                stalls = 0 if improved else stalls + 1
            if stalls >= self.growth_patience:
                self.decide(
                    current,
                    f"growth stalled: {stalls} doublings improved neither {metric} nor loss by "
                    f"min_improvement {mi:.0%} (rule growth_patience={self.growth_patience}): "
                    "capacity is not the limit",
                )
                over_at = current
                break
            if current["width"] * 2 > self.max_width:
                self.decide(
                    current,
                    f"underfitting ({self.fit_state(current)}) but width {current['width'] * 2} "
                    f"> max_width {self.max_width}",
                )
                over_at = current
                break
            self.decide(
                current,
                f"underfitting: no overfitting rule fired ({self.fit_state(current)}); "
                f"doubling width to {current['width'] * 2}",
            )
            prev, current = current, self.run("4 grow", current["width"] * 2, False, 0.0, lr)
        if current is None:
            self.stop_line("4 grow")
            over_at = over_at or signal
        return (over_at or prev or {"width": width})["width"], over_at

    def batchnorm(self, width: int, over_at: dict | None, lr: float) -> tuple[int, dict | None]:
        """Step 5: batchnorm at the width reached, then a bit more capacity (at most
        `bn_growth` doublings) until it overfits again. Skipped for SELU networks."""
        if self.arch == "selu":
            self.say(
                "5 batchnorm: skipped: self-normalizing networks keep their activations normalized with SELU"
            )
            return width, over_at
        if over_at is None or self.interrupted:
            return width, over_at
        last = over_at
        bn = self.run("5 batchnorm", width, True, 0.0, lr)
        if bn is None:
            self.stop_line("5 batchnorm")
        grown = 0
        bn_prev: dict | None = None
        while bn is not None:
            if bn["diverged"]:
                self.decide(bn, f"diverged at lr {lr:g} ({bn['reason']}); keeping the previous network")
                break
            last = bn
            why = self.overfit(bn, bn_prev, growing=bn_prev is not None)
            if why:
                self.decide(bn, f"overfitting with batchnorm at width {bn['width']} ({why}); adding dropout")
                break
            if grown >= self.bn_growth or bn["width"] * 2 > self.max_width:
                limit = (
                    f"bn_growth={self.bn_growth}"
                    if grown >= self.bn_growth
                    else f"max_width {self.max_width}"
                )
                self.decide(
                    bn, f"no overfitting rule fired ({self.fit_state(bn)}), {limit} reached; adding dropout"
                )
                break
            self.decide(
                bn,
                f"no overfitting rule fired with batchnorm ({self.fit_state(bn)}); "
                f"doubling width to {bn['width'] * 2}",
            )
            grown += 1
            bn_prev, bn = bn, self.run("5 batchnorm", bn["width"] * 2, True, 0.0, lr)
            if bn is None:
                self.stop_line("5 batchnorm")
        return last["width"], last

    def dropout(self, width: int, last: dict | None, lr: float) -> tuple[dict | None, dict | None, bool]:
        """Step 6: dropout at `dropout_rates` in turn until the network no longer overfits
        or the metric gets worse. Returns (the trial it builds on, the first dropout trial,
        batchnorm on)."""
        metric = self.metric
        use_bn = self.arch != "selu" and last is not None and last["batchnorm"]
        base = last
        first_drop: dict | None = None
        if base is None or self.interrupted:
            return base, first_drop, use_bn
        name = "alpha_dropout" if self.arch == "selu" else "dropout"
        for p in self.rates:
            d = self.run("6 dropout", width, use_bn, p, lr)
            if d is None:
                self.stop_line("6 dropout")
                break
            first_drop = first_drop or d
            why = self.overfit(d, None)
            if not _better(d["score"], base["score"], metric):
                self.decide(
                    d,
                    f"{metric} went from {base['score']:.4g} to {d['score']:.4g} with {name} {p:g}: "
                    "not better; stopping here",
                )
                break
            if why:
                self.decide(d, f"better, but still overfitting ({why}); trying more dropout")
                base = d
                continue
            self.decide(
                d,
                f"{metric} improved from {base['score']:.4g} to {d['score']:.4g} "
                "and no overfitting rule fired",
            )
            break
        return base, first_drop, use_bn

    def dropout_grow(self, base: dict | None, first_drop: dict | None, use_bn: bool, lr: float) -> None:
        """Step 6, continued: more capacity with dropout on, while a doubling improves the
        metric by more than min_improvement (at most `bn_growth` doublings). Measured on the
        MNIST sample, the recipe otherwise ended at the width chosen without dropout."""
        grow_from = base if (base is not None and base.get("dropout", 0.0) > 0) else first_drop
        if grow_from is None or grow_from["diverged"] or self.interrupted:
            return
        metric, mi = self.metric, self.min_improvement
        cur = grow_from
        for _ in range(self.bn_growth):
            if cur["width"] * 2 > self.max_width:
                self.say(
                    f"6 dropout, grow: width {cur['width'] * 2} > max_width {self.max_width}; stopping here"
                )
                break
            nxt = self.run("6 dropout, grow", cur["width"] * 2, use_bn, cur["dropout"], lr)
            if nxt is None:
                self.stop_line("6 dropout, grow")
                break
            if nxt["diverged"] or not _better(nxt["score"], cur["score"], metric, mi):
                self.decide(
                    nxt,
                    f"{metric} {nxt['score']:.4g} against {cur['score']:.4g} at width {cur['width']}: "
                    f"doubling with dropout did not improve it by min_improvement {mi:.0%}; stopping here",
                )
                break
            self.decide(
                nxt,
                f"{metric} improved from {cur['score']:.4g} to {nxt['score']:.4g} "
                "with dropout on: doubling again",
            )
            cur = nxt

    def retune_lr(self) -> None:
        """Step 6, last: the learning rate again, on the best network so far (step 3 tuned it
        on the smallest; the best rate moves with capacity and regularization): halve, then
        double, while a step improves the metric by more than min_improvement."""
        done = self.finished()
        if not done or self.interrupted:
            return
        metric, mi = self.metric, self.min_improvement
        top = self.best_of(done)
        cur = top
        for factor in (0.5, 2.0):
            tr: dict | None = None
            while True:
                new_lr = cur["lr"] * factor
                tr = self.run("6 learning rate", top["width"], top["batchnorm"], top["dropout"], new_lr)
                if tr is None:
                    self.stop_line("6 learning rate")
                    break
                if tr["diverged"] or not _better(tr["score"], cur["score"], metric, mi):
                    self.decide(
                        tr,
                        f"lr {new_lr:g}: {metric} {tr['score']:.4g} does not improve on {cur['score']:.4g} "
                        f"at lr {cur['lr']:g} by min_improvement {mi:.0%}",
                    )
                    break
                self.decide(
                    tr, f"lr {new_lr:g} improved {metric} from {cur['score']:.4g} to {tr['score']:.4g}"
                )
                cur = tr
            if cur is not top or tr is None:
                break  # halving helped (or the budget ran out): no need to try doubling

    def verdict(self) -> RecipeResult:
        """Step 7: the verdict on the best trial, its model (trained again when it came from
        the log) and the report."""
        pool = self.finished() or [t for t in self.trials if not t["diverged"] and not t.get("cut")]
        best = self.best_of(pool)
        g = self.gap(best)
        if math.isfinite(g) and g > self.overfit_gap:
            verdict = "overfit"
            why = f"gap {g:.0%} > overfit_gap {self.overfit_gap:.0%}: not enough regularization"
        elif math.isfinite(g) and g < self.underfit_gap:
            verdict = "underfit"
            why = (
                f"gap {g:.0%} < underfit_gap {self.underfit_gap:.0%} (training not better than validation): "
                "too few parameters or too much regularization"
            )
        else:
            verdict = "well tuned"
            why = (
                "training better than validation but comparable: "
                f"gap {g:.0%} in [{self.underfit_gap:.0%}, {self.overfit_gap:.0%}]"
            )
        cfg = best.get("config") or self.config_of(
            best["width"], best["batchnorm"], best["dropout"], best["lr"]
        )
        self.say(
            f"7 verdict: best trial ({best['stage']}): {self.describe(best)}, lr {best['lr']:g}: "
            f"{self.figures(best)}; {verdict}: {why}"
        )
        model = self.models_held.get(best.get("id") or "")
        if model is None:  # from the log (or the learning-rate search): train it again, deterministically
            model = self.train(cfg, None)[1]
        model.eval()
        config = dict(cfg)
        config["params"] = best["params"]
        config["best_epoch"] = best["best_epoch"]
        report = _report(
            self.arch, self.problem, config, self.trials, self.lines, verdict, why, self.metric, self.clock
        )
        assert self.search is not None
        result = RecipeResult(model, config, self.trials, report, verdict, self.search)
        result.interrupted = self.interrupted
        return result
