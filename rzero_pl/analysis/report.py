"""``rzero-pl report RUN_DIR``: one self-contained HTML page that shows what a run did.

The page holds every plot as an embedded PNG (matplotlib's Agg canvas, no display and no
pyplot state), so it can be mailed or copied anywhere and opened offline. Sections: the
phases of ``state.json`` with their seconds; benchmark accuracy per iteration with its 95 %
interval; the challenger's reward and p̂ per rollout step; each curriculum's share histogram,
kept count and label accuracy; difficulty against the fixed solver (``rzero-pl analyze``);
a few sample questions with their votes and label. A part the run has not reached yet says
so. Every number in a table cell carries its exact value in ``data-value`` and a ``data-key``
naming where it comes from, so that tests (and scripts) can check the page against the run.

    python -m rzero_pl.analysis.report RUN_DIR [--out RUN_DIR/report.html]
"""

from __future__ import annotations

import argparse
import base64
import html
import os
import sys
from datetime import datetime, timezone

from rzero_pl.analysis.report_data import DIFFICULTY_KEYS, SCALARS, RunData, read_run
from rzero_pl.analysis.report_plots import (
    plot_accuracy,
    plot_difficulty,
    plot_histograms,
    plot_rollouts,
)

CURRICULUM_FIELDS = (
    ("candidates", "candidates", "int"),
    ("valid", "well-formed", "int"),
    ("kept", "kept", "int"),
    ("share_mean", "mean share", "float"),
    ("label_accuracy", "label accuracy", "pct"),
    ("kept_label_accuracy", "kept-label accuracy", "pct"),
)
STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; vertical-align: top; }
td.text, th { text-align: left; }
.notyet { color: #a60; font-style: italic; text-align: left; }
.note { color: #b00; }
img { max-width: 100%; }
code { background: #f3f3f3; padding: 1px 4px; }
"""


# ----------------------------------------------------------------------------- cells


def fmt(value: float | int | None, kind: str) -> str:
    """How a number is shown: ``pct`` as 12.3 %, ``float`` with 3 decimals, ``int``, ``s``."""
    if value is None:
        return "n/a"
    if kind == "pct":
        return f"{100 * value:.1f} %"
    if kind == "float":
        return f"{value:.3f}"
    if kind == "s":
        return f"{value:.1f} s"
    return str(int(value))


def num(key: str, value: float | int | None, kind: str) -> str:
    """A table cell for a number, with its source and exact value as attributes."""
    if value is None:
        return '<td class="notyet">n/a</td>'
    return f'<td data-key="{_e(key)}" data-value="{value!r}">{fmt(value, kind)}</td>'


def text(value: object) -> str:
    return f'<td class="text">{_e(value)}</td>'


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def table(headers: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(f"<tr>{row}</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def image(name: str, png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img data-plot="{name}" alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def not_yet(what: str) -> str:
    return f'<p class="notyet">Not yet: {_e(what)}.</p>'


# ----------------------------------------------------------------------------- sections


def missing_phases(recorded: list[str], planned: int | None) -> list[str]:
    """The phases a run of ``planned`` iterations still has to record, in order.

    A run without evaluation records no ``baseline``: when training phases are recorded and
    no evaluation phase is, the evaluation phases are not expected either.
    """
    names = ["baseline"]
    for it in range(1, (planned or 0) + 1):
        names += [f"iter{it}/{p}" for p in ("challenger", "curriculum", "solver", "eval")]
    evaluates = any(n == "baseline" or n.endswith("/eval") for n in recorded)
    if recorded and not evaluates:
        names = [n for n in names if n != "baseline" and not n.endswith("/eval")]
    return [n for n in names if n not in recorded]


def run_status(run: RunData) -> tuple[str, list[str]]:
    """One sentence on where the run stands, and the phases it still has to record."""
    missing = missing_phases([p.name for p in run.phases or []], run.planned_iterations)
    if run.stopped:
        after, reason = run.stopped.get("after"), run.stopped.get("reason")
        return f"Stopped by the collapse guard after {after}: {reason}.", []
    if missing:
        return f"Not finished (or still running): next phase {missing[0]}.", missing
    if run.planned_iterations:
        return f"Finished: {run.planned_iterations} iteration(s).", []
    return "The planned iterations are unknown (no readable config.yaml).", []


def header_section(run: RunData) -> str:
    parts = [f"<h1>R-Zero run <code>{_e(os.path.abspath(run.run_dir))}</code></h1>"]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f"<p>Report made {stamp}.</p>")
    if run.phases is None:
        parts.append(not_yet("no state.json: the run has not finished its first phase"))
        return "".join(parts) + _notes(run)
    status, missing = run_status(run)
    total = sum(p.seconds or 0.0 for p in run.phases)
    parts.append(f"<p>{_e(status)} Recorded phases took {_e(fmt(total, 's'))} in all.</p>")
    if run.best:
        iteration, metric = run.best.get("iteration"), run.best.get("metric")
        parts.append(f"<p>Best iteration (best.json): {_e(iteration)} by {_e(metric)}.</p>")
    rows = [
        text(p.name)
        + num(f"phase/{p.name}/steps", p.steps, "int")
        + text(f"{p.step_start}–{p.step_end}")
        + num(f"phase/{p.name}/seconds", p.seconds, "s")
        + text(_phase_detail(p.info))
        for p in run.phases
    ]
    rows += [text(name) + '<td class="notyet" colspan="4">not yet</td>' for name in missing]
    headers = ["phase", "steps", "step axis", "seconds", "recorded"]
    return "".join(parts) + table(headers, rows) + _notes(run)


def _phase_detail(info: dict) -> str:
    shown = []
    for key in ("skipped", "kept", "accuracy", "problems"):
        if key in info:
            value = info[key]
            if key == "accuracy" and isinstance(value, dict):
                value = ", ".join(f"{b} {fmt(a, 'pct')}" for b, a in value.items())
            elif isinstance(value, dict):
                value = ", ".join(f"{k} {v}" for k, v in value.items())
            shown.append(f"{key}: {value}")
    return "; ".join(shown)


def _notes(run: RunData) -> str:
    if not run.notes:
        return ""
    items = "".join(f'<li class="note">{_e(n)}</li>' for n in run.notes)
    return f"<p>Files the report could not read:</p><ul>{items}</ul>"


def accuracy_section(run: RunData) -> str:
    parts = ["<h2>Benchmark accuracy</h2>"]
    evaluations = [("baseline", run.baseline)]
    evaluations += [(f"iter{it.number}", it.evaluation) for it in run.iterations]
    if all(scores is None for _, scores in evaluations):
        return parts[0] + not_yet("no evaluation has been written (eval/baseline/eval.json)")
    parts.append(image("accuracy", plot_accuracy(evaluations), "accuracy per iteration"))
    rows = []
    for tag, scores in evaluations:
        if scores is None:
            rows.append(text(tag) + '<td class="notyet" colspan="6">not yet</td>')
            continue
        for s in scores:
            key = f"eval/{tag}/{s.benchmark}"
            rows.append(
                text(tag)
                + text(s.benchmark)
                + num(f"{key}/accuracy", s.accuracy, "pct")
                + num(f"{key}/ci95_low", s.low, "pct")
                + num(f"{key}/ci95_high", s.high, "pct")
                + num(f"{key}/n_problems", s.n_problems, "int")
                + text(s.interval)
            )
    headers = ["evaluation", "benchmark", "accuracy", "95 % low", "95 % high", "problems"]
    parts.append(table([*headers, "interval"], rows))
    parts.append(
        "<p>Interval <em>stored</em>: eval.json's ci95 (Wilson for one sample per problem, a "
        "normal interval over problems for mean@k); <em>wilson</em>: computed here.</p>"
    )
    return "".join(parts)


def rollout_section(run: RunData) -> str:
    parts = ["<h2>Challenger per rollout step</h2>"]
    if not run.scalars or not any(run.scalars.values()):
        folder = os.path.join(run.run_dir, "tensorboard")
        return parts[0] + not_yet(f"no rollout step logged in {folder}")
    png = plot_rollouts(run.scalars, run.phases or [])
    parts.append(image("rollouts", png, "challenger reward and p̂ per rollout step"))
    shown = ", ".join(f"{SCALARS[t]} (<code>{_e(t)}</code>)" for t in run.scalars)
    parts.append(
        f"<p>{shown}; x is the run's step axis, one point per rollout step (the last value "
        "logged at a step, so a resumed phase shows what it kept). The challenger's reward "
        "peaks when p̂ = 0.5.</p>"
    )
    return "".join(parts)


def curriculum_section(run: RunData) -> str:
    parts = ["<h2>Curricula</h2>"]
    built = [it for it in run.iterations if it.curriculum is not None]
    if not built:
        return parts[0] + not_yet("no curriculum has been written (iterK/curriculum)")
    png = plot_histograms([(it.number, it.curriculum.report) for it in built], run.band)
    parts.append(image("share_histograms", png, "share histogram per iteration"))
    rows = []
    for it in run.iterations:
        if it.curriculum is None:
            rows.append(text(f"iter{it.number}") + '<td class="notyet" colspan="7">not yet</td>')
            continue
        report, key = it.curriculum.report, f"curriculum/iter{it.number}"
        cells = "".join(num(f"{key}/{f}", report.get(f), kind) for f, _, kind in CURRICULUM_FIELDS)
        reasons = it.curriculum.reasons
        why = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items())) if reasons else "n/a"
        rows.append(text(f"iter{it.number}") + cells + text(why))
    headers = ["iteration", *(label for _, label, _ in CURRICULUM_FIELDS), "candidates by reason"]
    parts.append(table(headers, rows))
    return "".join(parts)


def difficulty_section(run: RunData) -> str:
    parts = ["<h2>Difficulty against the fixed solver</h2>"]
    found = [(it.number, it.difficulty) for it in run.iterations if it.difficulty]
    if not found:
        command = f"rzero-pl analyze {run.run_dir}"
        return parts[0] + (
            '<p class="notyet">The analysis has not been run (no analysis/iterK.json). '
            f"Run <code>{_e(command)}</code>, then make this report again.</p>"
        )
    keys = [k for k in DIFFICULTY_KEYS if any(d[k] is not None for _, d in found)]
    parts.append(image("difficulty", plot_difficulty(found, keys), "difficulty per iteration"))
    rows = [
        text(f"iter{it}") + "".join(num(f"difficulty/iter{it}/{k}", d[k], "float") for k in keys)
        for it, d in found
    ]
    parts.append(table(["iteration", *keys], rows))
    parts.append(
        "<p>From analysis/iterK.json: <em>fixed</em> is the fixed solver (the base) voting on "
        "that iteration's questions, <em>iteration</em> the solver that labelled them; a lower "
        "share is a harder question. Label accuracy: how often the majority label is right.</p>"
    )
    return "".join(parts)


def samples_section(run: RunData) -> str:
    parts = ["<h2>Sample questions</h2>"]
    with_samples = [it for it in run.iterations if it.curriculum and it.curriculum.samples]
    if not with_samples:
        return parts[0] + not_yet("no curriculum questions (iterK/curriculum/questions.jsonl)")
    headers = ["id", "question", "votes", "label", "share", "kept / reason", "label right"]
    for it in with_samples:
        parts.append(f"<h3>iter{it.number}</h3>")
        rows = []
        for s in it.curriculum.samples:
            votes = ", ".join("∅" if v is None else str(v) for v in s.votes)
            right = "?" if s.label_correct is None else ("yes" if s.label_correct else "no")
            rows.append(
                f'<td data-sample="iter{it.number}/{_e(s.id)}">{_e(s.id)}</td>'
                + text(s.question)
                + text(votes)
                + text("∅" if s.label is None else s.label)
                + num(f"sample/iter{it.number}/{s.id}/share", s.share, "float")
                + text("kept" if s.kept else s.reason)
                + text(right)
            )
        parts.append(table(headers, rows))
    return "".join(parts)


def render(run: RunData) -> str:
    """The whole page."""
    title = f"R-Zero run {os.path.basename(os.path.abspath(run.run_dir))}"
    sections = (
        header_section(run),
        accuracy_section(run),
        rollout_section(run),
        curriculum_section(run),
        difficulty_section(run),
        samples_section(run),
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}'
        f"</title><style>{STYLE}</style></head><body>{''.join(sections)}</body></html>\n"
    )


# ----------------------------------------------------------------------------- command


def write_report(run_dir: str, out: str | None = None, samples: int = 3) -> str:
    """Read ``run_dir``, write the page to ``out`` (default ``RUN_DIR/report.html``)."""
    out = out or os.path.join(run_dir, "report.html")
    page = render(read_run(run_dir, samples_per_kind=samples))
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    # Renamed into place: a reader (or a browser reloading) never sees half a page.
    tmp = os.path.join(folder, f".{os.path.basename(out)}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(page)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return out


def main(argv: list[str] | None = None) -> int:
    """``rzero-pl report RUN_DIR [--out FILE] [--samples N]``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="rzero-pl report", description="Write one self-contained HTML page about a run."
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (evolution.run_dir)")
    parser.add_argument("--out", default=None, help="the page (default: RUN_DIR/report.html)")
    parser.add_argument(
        "--samples", type=int, default=3, help="kept and dropped questions shown per iteration"
    )
    args = parser.parse_args(argv)
    if not os.path.isdir(args.run_dir):
        print(f"rzero-pl report: {args.run_dir}: no such run folder", file=sys.stderr)
        return 2
    if args.samples < 0:
        parser.error("--samples must be >= 0")
    out = write_report(args.run_dir, args.out, args.samples)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
