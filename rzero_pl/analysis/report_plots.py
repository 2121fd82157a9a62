"""The report's plots, each returned as PNG bytes.

Figures are made with matplotlib's object API on the Agg canvas (``Figure.savefig``), never
through pyplot: no display is needed, no global figure state is left behind, and the report
can be made from a thread or a notebook without switching anyone's backend.
"""

from __future__ import annotations

import io
import math
import re
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from rzero_pl.analysis.report_data import SCALARS, Phase, Score, iteration_of_step

DPI = 80
IN_BAND, OUT_OF_BAND, PENDING = "#2a9d55", "#9aa0a6", "#555555"


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)  # the Agg canvas, whatever backend the process has chosen
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _color(index: int) -> str:
    palette = ["#1f77b4", "#ff7f0e", "#9467bd", "#d62728", "#8c564b", "#e377c2", "#17becf"]
    return palette[index % len(palette)]


def plot_accuracy(evaluations: list[tuple[str, list[Score] | None]]) -> bytes:
    """Accuracy per evaluation (baseline, iter1, …), one line per benchmark, 95 % bars."""
    present = [(tag, scores) for tag, scores in evaluations if scores is not None]
    benchmarks = sorted({s.benchmark for _, scores in present for s in scores})
    fig = Figure(figsize=(9, 4), layout="constrained")
    ax = fig.add_subplot()
    for b, name in enumerate(benchmarks):
        points = [
            (x, s) for x, (_, scores) in enumerate(present) for s in scores if s.benchmark == name
        ]
        xs = [x + 0.04 * (b - (len(benchmarks) - 1) / 2) for x, _ in points]  # no overlap
        acc = [100 * s.accuracy for _, s in points]
        below = [100 * (s.accuracy - s.low) for _, s in points]
        above = [100 * (s.high - s.accuracy) for _, s in points]
        ax.errorbar(
            xs, acc, yerr=[below, above], marker="o", capsize=4, label=name, color=_color(b)
        )
    ax.set_xticks(range(len(present)), [tag for tag, _ in present])
    ax.set_ylabel("accuracy (%), 95 % interval")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    ax.set_title("Solver accuracy per iteration")
    return _png(fig)


def plot_rollouts(scalars: dict[str, list[tuple[int, float]]], phases: list[Phase]) -> bytes:
    """One panel per logged scalar of ``SCALARS``, points coloured by iteration."""
    tags = [tag for tag in SCALARS if scalars.get(tag)]
    fig = Figure(figsize=(9, 2.6 * len(tags) + 0.4), layout="constrained")
    axes = fig.subplots(len(tags), 1, sharex=True, squeeze=False)[:, 0]
    starts = [
        (int(m.group(1)), p.step_start)
        for p in phases
        if (m := re.fullmatch(r"iter(\d+)/challenger", p.name))
    ]
    for ax, tag in zip(axes, tags, strict=True):
        _rollout_panel(ax, scalars[tag], phases)
        for it, step in starts:
            ax.axvline(step - 0.5, color="#bbb", linestyle=":", linewidth=1)
            ax.annotate(
                f"iter{it}",
                (step - 0.5, 1),
                xycoords=("data", "axes fraction"),
                fontsize="small",
                color="#777",
                va="top",
            )
        if tag.endswith("share_mean"):
            ax.axhline(0.5, color="#999", linestyle="--", linewidth=1)
        ax.set_ylabel(SCALARS[tag])
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("run step (state.json's step axis: optimizer steps of all phases)")
    return _png(fig)


def _rollout_panel(ax: Any, points: list[tuple[int, float]], phases: list[Phase]) -> None:
    groups: dict[int | None, list[tuple[int, float]]] = {}
    for step, value in points:
        groups.setdefault(iteration_of_step(step, phases), []).append((step, value))
    for it, group in sorted(groups.items(), key=lambda g: math.inf if g[0] is None else g[0]):
        label = f"iter{it}" if it is not None else "phase in progress (not in state.json)"
        color = _color(it - 1) if it is not None else PENDING
        ax.plot(
            [s for s, _ in group],
            [v for _, v in group],
            "o-",
            color=color,
            label=label,
            markersize=4,
        )
    ax.legend(loc="best", fontsize="x-small")


def plot_histograms(
    reports: list[tuple[int, dict[str, Any]]], band: tuple[float, float] | None
) -> bytes:
    """Each curriculum's share histogram: how many questions' majority won k of m votes."""
    cols = min(len(reports), 4)
    rows = math.ceil(len(reports) / cols)
    fig = Figure(figsize=(2.6 * cols + 1, 2.6 * rows + 0.3), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (it, report) in zip(axes, reports, strict=False):
        counts = report.get("share_histogram") or []
        ax.set_title(
            f"iter{it}: kept {report.get('kept', '?')} of {report.get('candidates', '?')}",
            fontsize="medium",
        )
        if len(counts) < 2:
            ax.text(0.5, 0.5, "no histogram", ha="center", transform=ax.transAxes)
            continue
        m = len(counts) - 1
        shares = [k / m for k in range(m + 1)]
        inside = [band is not None and band[0] <= s <= band[1] for s in shares]
        colors = [IN_BAND if keep else OUT_OF_BAND for keep in inside]
        ax.bar(shares, counts, width=0.8 / m, color=colors)
        ax.set_xlabel(f"share (k of m = {m} votes)")
        ax.set_ylabel("questions")
    for ax in axes[len(reports) :]:
        ax.set_visible(False)
    if band is not None:
        fig.suptitle(f"green: in the band [{band[0]:g}, {band[1]:g}] (kept)", fontsize="small")
    return _png(fig)


def plot_difficulty(found: list[tuple[int, dict[str, float | None]]], keys: list[str]) -> bytes:
    """Grouped bars per iteration, one bar per key of ``keys`` (shares and accuracies,
    all in [0, 1]) that the iteration's analysis holds."""
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / len(keys)
    for k, key in enumerate(keys):
        points = [(x, d[key]) for x, (_, d) in enumerate(found) if d.get(key) is not None]
        xs = [x - 0.4 + width * (k + 0.5) for x, _ in points]
        ax.bar(xs, [v for _, v in points], width=width, label=key, color=_color(k))
    ax.set_xticks(range(len(found)), [f"iter{it}" for it, _ in found])
    ax.set_ylim(0, 1)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    ax.set_title("Difficulty of each iteration's questions")
    return _png(fig)
