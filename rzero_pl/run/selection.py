"""The collapse guard: keep the best iteration, stop when self-play stops helping.

Self-play runs rise and then fall (the paper's 4th iteration collapses; our toy runs have
lost accuracy after the 1st). After every evaluation the evolution asks ``BestIteration``:

- the **best** iteration is the one with the highest metric (the baseline, iteration 0,
  counts: if no iteration beats the base, the base is the best); ties keep the earlier one;
- an iteration **beats** the best when its whole 95 % interval lies above the best value
  so far: a raw difference of a few problems on a 500-problem benchmark is noise;
- with ``patience`` set, the run stops once that many iterations in a row have not beaten
  the best.

The metric is a benchmark's accuracy from ``eval.json`` (its Wilson interval), or the mean
accuracy over every benchmark evaluated (the interval: the mean of their bounds, which is
wider than the mean's own interval, so the rule errs towards "not beaten"), or, with no
labelled benchmark at all, the label-free probe confidence (``signal: probe_confidence``: the
solver's mean vote share p̂ on a fixed probe of the run's own questions,
``rzero_pl.analysis.probe``; the evolution needs ``analysis`` for it). Lower is better there:
on the toy world a solver that decays grows surer of its own answers, so within a run p̂ moves
against accuracy (mean within-run rank correlation -0.90, -0.91 and -0.70 in the three arms
that decay, 5 runs each; -0.86 on average over 10 decaying runs looked at only after the rule
was fixed; bench/RESULTS.md, "A label-free collapse signal"). The probe cannot
rank the base (it is less sure than any trained solver whether better or not), so with it
the best is the trained iteration with the lowest p̂, and one beats it when its whole
interval lies below that value. The decision is a
pure function of the evaluation files, so a resumed run decides exactly as the first did.
The best iteration is written to ``RUN_DIR/best.json`` and to ``state.json``'s ``best``;
``RUN_DIR/best`` as a role's weights folder loads it (``resolve_weights``).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Literal

from rzero_pl.errors import MAX_ITERATIONS, ConfigError, check_number
from rzero_pl.ground.io import read_json, write_json_atomic


@dataclass(frozen=True)
class Score:
    """A metric's value and its 95 % interval."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class Decision:
    """What the guard concluded after the evaluations so far."""

    best: int  # iteration (0: the base)
    best_score: Score
    stale: int  # iterations since the best was last beaten (or since the base)
    stop: bool


def score_of(summary: dict, benchmark: str | None) -> Score:
    """The metric of one ``eval.json`` summary: ``benchmark``'s accuracy, or the mean."""
    benchmarks = summary["benchmarks"]
    names = [benchmark] if benchmark is not None else sorted(benchmarks)
    missing = [n for n in names if n not in benchmarks]
    if missing:
        raise ValueError(
            f"selection.benchmark: {missing[0]!r} was not evaluated ({sorted(benchmarks)})"
        )
    rows = [benchmarks[n] for n in names]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return Score(
        mean([r["accuracy"] for r in rows]),
        mean([r["ci95"][0] for r in rows]),
        mean([r["ci95"][1] for r in rows]),
    )


def decide(scores: list[Score], patience: int | None) -> Decision:
    """The guard's rule over ``scores[i]`` of iteration ``i`` (``scores[0]``: the base)."""
    best, stale = 0, 0
    for i, score in enumerate(scores[1:], start=1):
        beaten = score.low > scores[best].value
        if score.value > scores[best].value:
            best = i
        stale = 0 if beaten else stale + 1
    stop = patience is not None and stale >= patience
    return Decision(best, scores[best], stale, stop)


def decide_lowest(scores: list[Score], patience: int | None) -> Decision:
    """The guard's rule when lower is better, over the trained iterations only: ``scores[i]``
    is iteration ``i + 1``'s; the best is the lowest, beaten by a whole interval below it."""
    flipped = [Score(-s.value, -s.high, -s.low) for s in scores]
    d = decide(flipped, patience)
    return Decision(d.best + 1, scores[d.best], d.stale, d.stop)


def probe_scores(run_dir: str, it: int) -> list[Score]:
    """The probe p̂ of the base and of iterations 1..``it`` (``analysis/probe_base.json`` and
    ``analysis/iterK.json``); a missing one is one line naming the file."""
    folder = os.path.join(run_dir, "analysis")
    base = read_json(os.path.join(folder, "probe_base.json"))
    if base is None:
        raise FileNotFoundError(
            f"{os.path.join(folder, 'probe_base.json')}: missing; selection.signal probe_confidence "
            "reads the probe the analysis writes (set evolution.analysis)"
        )
    scores = [Score(base["share_mean"], *base["share_ci95"])]
    for k in range(1, it + 1):
        path = os.path.join(folder, f"iter{k}.json")
        row = read_json(path) or {}
        if "probe_share_mean" not in row:
            raise ValueError(f"{path}: no probe_share_mean; run rzero-pl analyze --probe-only")
        scores.append(Score(row["probe_share_mean"], *row["probe_share_ci95"]))
    return scores


class BestIteration:
    """Keep the best iteration by a benchmark's accuracy (or a label-free signal); optionally
    stop early.

    Args:
        benchmark: The benchmark whose accuracy decides (None: the mean accuracy over every
            benchmark the evolution evaluates).
        patience: Stop after this many iterations in a row that did not beat the best
            (beyond its 95 % interval); None never stops early.
        signal: ``benchmark`` (the evaluation's accuracy) or ``probe_confidence`` (the
            label-free probe p̂ of the analysis, lower is better, the base not a candidate;
            see bench/RESULTS.md for how it tracks accuracy).
    """

    def __init__(
        self,
        benchmark: str | None = None,
        patience: int | None = None,
        signal: Literal["benchmark", "probe_confidence"] = "benchmark",
    ) -> None:
        check_number(
            "selection.patience", patience, at_least=1, at_most=MAX_ITERATIONS, optional=True
        )
        if signal == "probe_share":
            raise ConfigError(
                "selection.signal: probe_share (higher p̂ is better) kept the worst iteration "
                "of a decaying run; use probe_confidence (lower p̂ is better)"
            )
        if signal not in ("benchmark", "probe_confidence"):
            raise ConfigError(
                f"selection.signal: {signal!r} is not one of 'benchmark', 'probe_confidence'"
            )
        if signal == "probe_confidence" and benchmark is not None:
            raise ConfigError(
                "selection.benchmark: set with signal probe_confidence, which reads no "
                "benchmark; remove one of them"
            )
        self.benchmark = benchmark
        self.patience = patience
        self.signal = signal

    def decide(self, summaries: list[dict]) -> Decision:
        """The decision after the evaluations ``summaries`` (the base's first)."""
        return decide([score_of(s, self.benchmark) for s in summaries], self.patience)

    def decide_run(self, run_dir: str, it: int, eval_folders: list[str]) -> Decision:
        """The decision after iteration ``it``, read from the run folder by ``signal``:
        the evaluations ``eval_folders`` (the base's first) or the probe."""
        if self.signal == "probe_confidence":
            return decide_lowest(probe_scores(run_dir, it)[1:], self.patience)
        return self.decide([read_summary(f) for f in eval_folders])

    def record(self, run_dir: str, decision: Decision) -> dict:
        """Write ``best.json`` (rank 0 only writes; every rank returns the record)."""
        from rzero_pl.scale.distributed import is_rank_zero

        it = decision.best
        record = {
            "iteration": it,
            "metric": "probe p̂ (label-free, lowest)"
            if self.signal == "probe_confidence"
            else self.benchmark or "mean accuracy",
            "score": asdict(decision.best_score),
            "stale": decision.stale,
            "weights": {
                role: None if it == 0 else os.path.join(f"iter{it}", role, "weights")
                for role in ("challenger", "solver")
            },
        }
        if is_rank_zero():
            write_json_atomic(os.path.join(run_dir, "best.json"), record)
        return record


def read_summary(folder: str) -> dict:
    """The ``eval.json`` summary written into an evaluation ``folder``; a missing, damaged or
    incomplete one is one line naming the file."""
    path = os.path.join(folder, "eval.json")
    redo = (
        "restore it, or delete its phase's entry (and every later one) from state.json to redo them"
    )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: missing; {redo}")
    try:
        summary = read_json(path)
    except ValueError as err:
        raise ValueError(f"{str(err).split(';')[0]}; {redo}") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("benchmarks"), dict):
        raise ValueError(f"{path}: no 'benchmarks' object (not an evaluation summary); {redo}")
    return summary
