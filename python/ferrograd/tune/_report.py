"""The recipe's Markdown report and the plots (matplotlib, or a small SVG writer)."""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

from ._trial import _fmt

if TYPE_CHECKING:
    from ._trial import _Clock, _Problem


def _report(
    arch: str,
    problem: _Problem,
    config: dict,
    trials: list[dict],
    lines: list[str],
    verdict: str,
    why: str,
    metric: str,
    clock: _Clock,
) -> str:
    kw = ", ".join(f"{k}={v!r}" for k, v in config["kwargs"].items())
    out = [
        f"# Tuning recipe: {arch}",
        "",
        f"{problem.n_train} training and {problem.xv.shape[0]} validation samples, loss {problem.loss}, "
        f"decided on {metric}; {len(trials)} trials in {clock.elapsed():.1f}s.",
        "",
        f"**Result**: `{config['builder']}({config['in_features']}, {config['out_features']}, {kw})`, "
        f"{config['params']} parameters, {config['optimizer']} at lr {config['lr']:g}. **{verdict}**: {why}.",
        "",
        "## Path taken",
        "",
    ]
    out += [f"- {line}" for line in lines]
    out += ["", "## Trials", "", "| stage | width | batchnorm | dropout | lr | loss | val_loss | diverged |"]
    out.append("|---|---|---|---|---|---|---|---|")
    for t in trials:
        out.append(
            f"| {t.get('stage', '')} | {t.get('width', '')} | {t.get('batchnorm', '')} "
            f"| {t.get('dropout', '')} "
            f"| {t['lr']:g} | {_fmt(t.get('loss', math.nan))} | {_fmt(t.get('val_loss', math.nan))} "
            f"| {'yes' if t['diverged'] else 'no'} |"
        )
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------- plots


def _plot(
    path: str,
    title: str,
    xlabel: str,
    ylabel: str,
    series: list[tuple[str, list[float], list[float]]],
    logx: bool,
    marks: list[float],
    best: float | None,
) -> str:
    try:
        import matplotlib  # type: ignore[import-not-found]  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found]  # noqa: PLC0415
    except ImportError:
        if path.lower().endswith(".svg"):
            return _svg(path, title, xlabel, ylabel, series, logx, marks, best)
        raise ImportError(
            "plot needs matplotlib, which is not installed: pip install matplotlib "
            "(or give a path ending in .svg for the built-in SVG writer)"
        ) from None
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, xs, ys in series:
        ax.plot(xs, ys, marker="o", label=label)
    for m in marks:
        ax.axvline(m, color="red", alpha=0.4, linestyle=":")
    if best is not None:
        ax.axvline(best, color="green", alpha=0.5)
    if logx:
        ax.set_xscale("log", base=2)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _svg(
    path: str,
    title: str,
    xlabel: str,
    ylabel: str,
    series: list[tuple[str, list[float], list[float]]],
    logx: bool,
    marks: list[float],
    best: float | None,
) -> str:
    """A dependency-free line chart: one polyline per series, dashed red lines at `marks`
    (diverged rates), a green line at `best`."""
    w, h, m = 640, 400, 60
    fx = (lambda v: math.log2(v)) if logx else (lambda v: v)
    pts = [(fx(a), b) for _, xs, ys in series for a, b in zip(xs, ys) if math.isfinite(b)]
    xs_all = [p[0] for p in pts] + [fx(v) for v in marks] + ([fx(best)] if best is not None else [])
    ys_all = [p[1] for p in pts]
    x0, x1 = (min(xs_all), max(xs_all)) if xs_all else (0.0, 1.0)
    y0, y1 = (min(ys_all), max(ys_all)) if ys_all else (0.0, 1.0)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)

    def px(v: float) -> float:
        return m + (v - x0) / (x1 - x0) * (w - 2 * m)

    def py(v: float) -> float:
        return h - m - (v - y0) / (y1 - y0) * (h - 2 * m)

    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"]
    e = html.escape
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="14">{e(title)}</text>',
        f'<line x1="{m}" y1="{h - m}" x2="{w - m}" y2="{h - m}" stroke="black"/>',
        f'<line x1="{m}" y1="{m}" x2="{m}" y2="{h - m}" stroke="black"/>',
        f'<text x="{w / 2}" y="{h - 15}" text-anchor="middle">{e(xlabel)}</text>',
        f'<text x="15" y="{h / 2}" transform="rotate(-90 15 {h / 2})" '
        f'text-anchor="middle">{e(ylabel)}</text>',
    ]
    for i in range(5):
        xv, yv = x0 + (x1 - x0) * i / 4, y0 + (y1 - y0) * i / 4
        xt = f"{2**xv:.3g}" if logx else f"{xv:.3g}"
        parts.append(f'<text x="{px(xv):.1f}" y="{h - m + 16}" text-anchor="middle">{xt}</text>')
        parts.append(f'<text x="{m - 6}" y="{py(yv) + 4:.1f}" text-anchor="end">{yv:.3g}</text>')
    for v in marks:
        parts.append(
            f'<line x1="{px(fx(v)):.1f}" y1="{m}" x2="{px(fx(v)):.1f}" y2="{h - m}" '
            'stroke="red" stroke-dasharray="4"/>'
        )
    if best is not None:
        parts.append(
            f'<line x1="{px(fx(best)):.1f}" y1="{m}" x2="{px(fx(best)):.1f}" y2="{h - m}" stroke="green"/>'
        )
    for k, (label, xs, ys) in enumerate(series):
        c = colors[k % len(colors)]
        p = [(px(fx(a)), py(b)) for a, b in zip(xs, ys) if math.isfinite(b)]
        if p:
            parts.append(
                f'<polyline fill="none" stroke="{c}" stroke-width="2" points="'
                + " ".join(f"{a:.1f},{b:.1f}" for a, b in p)
                + '"/>'
            )
            parts += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{c}"/>' for a, b in p]
        parts.append(f'<text x="{w - m - 80}" y="{m + 16 * k}" fill="{c}">{e(label)}</text>')
    parts.append("</svg>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts) + "\n")
    return path
