"""Read a run folder into plain dataclasses for the report; nothing here plots or writes.

A run may still be in progress, or resumed after a kill: a file that does not exist yet is
``None`` (the report says "not yet"), and a file that does not parse becomes a line of
``RunData.notes`` instead of an error, so that one damaged file never hides the rest. The
readers import neither torch nor Lightning (``rzero_pl.ground.io`` and ``rzero_pl.benchmarks`` do,
and cost seconds to import), so a report is quick to make on a login node.

What is read, and from where (see ``rzero_pl.run.evolution`` for the run folder)::

    state.json                         phases: steps, step range, seconds, kept, skipped
    config.yaml                        the planned iterations and the curriculum's band
    eval/baseline/eval.json, iterK/eval/eval.json       accuracy and its 95 % interval
    iterK/curriculum/curriculum.json   counts, label accuracies, share histogram
    iterK/curriculum/questions.jsonl   why each candidate was dropped; a few samples
    analysis/iterK.json                difficulty against the fixed solver (optional)
    tensorboard/                       the challenger's reward and p̂ per rollout step
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from rzero_pl.benchmarks.metrics import wilson_interval

# The scalars plotted per rollout step: (run's TensorBoard tag, what the plot calls it).
SCALARS = {
    "challenger/reward_mean": "challenger reward",
    "challenger/vote/share_mean": "p̂ (mean vote share)",
    "solver/reward_mean": "solver reward",
}
# analysis/iterK.json's numbers the report shows (``rzero-pl analyze``): the first three are
# the issue's; the solvers' vote accuracies are shown too when the file holds them.
DIFFICULTY_KEYS = (
    "fixed_share_mean",
    "iteration_share_mean",
    "label_accuracy",
    "fixed_vote_accuracy",
    "iteration_vote_accuracy",
)


@dataclass
class Score:
    """One benchmark's accuracy after one evaluation; ``interval`` says where [low, high]
    came from: ``stored`` (eval.json's ``ci95``) or ``wilson`` (computed here)."""

    benchmark: str
    accuracy: float
    low: float
    high: float
    n_problems: int
    interval: str


@dataclass
class Sample:
    """One candidate question of a curriculum, as ``questions.jsonl`` holds it."""

    id: Any
    question: str
    votes: list[Any]
    label: Any
    share: float
    kept: bool
    reason: str
    label_correct: bool | None


@dataclass
class Curriculum:
    """``curriculum.json`` plus the drop reasons and a few samples of ``questions.jsonl``."""

    report: dict[str, Any]
    reasons: dict[str, int] | None = None
    samples: list[Sample] = field(default_factory=list)


@dataclass
class Iteration:
    number: int
    evaluation: list[Score] | None = None
    curriculum: Curriculum | None = None
    difficulty: dict[str, float | None] | None = None


@dataclass
class Phase:
    """One entry of ``state.json``'s phases (``info``: what else it records)."""

    name: str
    steps: int
    step_start: int
    step_end: int
    seconds: float | None
    info: dict[str, Any]


@dataclass
class RunData:
    run_dir: str
    phases: list[Phase] | None
    planned_iterations: int | None
    band: tuple[float, float] | None
    baseline: list[Score] | None
    iterations: list[Iteration]
    scalars: dict[str, list[tuple[int, float]]] | None
    notes: list[str] = field(default_factory=list)
    best: dict[str, Any] | None = None  # state.json's collapse-guard records
    stopped: dict[str, Any] | None = None


# ----------------------------------------------------------------------------- pure parts


def score_of(name: str, entry: dict[str, Any]) -> Score:
    """A benchmark entry of ``eval.json`` as a :class:`Score`.

    The stored ``ci95`` when present; else a Wilson interval from accuracy × n_problems
    correct of n_problems (exact for k = 1; for mean@k it treats problems as the unit).
    """
    accuracy, n = float(entry["accuracy"]), int(entry.get("n_problems", 0))
    stored = entry.get("ci95")
    if isinstance(stored, list | tuple) and len(stored) == 2:
        return Score(name, accuracy, float(stored[0]), float(stored[1]), n, "stored")
    low, high = wilson_interval(accuracy * n, n)
    return Score(name, accuracy, low, high, n, "wilson")


def last_per_step(events: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """One value per step, the last one written, sorted by step.

    A resumed phase logs again the steps its killed process had logged past its last
    checkpoint; the later value is the one the run kept.
    """
    latest: dict[int, float] = {}
    for step, value in events:
        latest[step] = value
    return sorted(latest.items())


def iteration_of_step(step: int, phases: list[Phase]) -> int | None:
    """The iteration whose finished phase owns ``step`` of the axis, else None (not yet
    recorded: the phase in progress, or the baseline)."""
    for phase in phases:
        match = re.fullmatch(r"iter(\d+)/.+", phase.name)
        if match and phase.step_start <= step < phase.step_end:
            return int(match.group(1))
    return None


def pick_samples(rows: list[dict[str, Any]], per_kind: int) -> list[Sample]:
    """The first ``per_kind`` kept and the first ``per_kind`` dropped well-formed questions."""
    kept = [r for r in rows if r.get("question") is not None and r.get("kept")]
    dropped = [r for r in rows if r.get("question") is not None and not r.get("kept")]
    return [_sample(r) for r in kept[:per_kind] + dropped[:per_kind]]


def _sample(row: dict[str, Any]) -> Sample:
    correct = row.get("label_correct")
    return Sample(
        id=row.get("id"),
        question=str(row["question"]),
        votes=list(row.get("votes") or []),
        label=row.get("label"),
        share=float(row.get("share") or 0.0),
        kept=bool(row.get("kept")),
        reason=str(row.get("reason", "")),
        label_correct=None if correct is None else bool(correct),
    )


def difficulty_of(value: Any) -> dict[str, float | None] | None:
    """The known keys of an ``analysis/iterK.json`` (format not fixed yet): numbers or None;
    None when it is not a dict or holds none of them."""
    if not isinstance(value, dict):
        return None
    out = {
        key: float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
        for key in DIFFICULTY_KEYS
        for v in [value.get(key)]
    }
    return out if any(v is not None for v in out.values()) else None


# ----------------------------------------------------------------------------- reading


class _Reader:
    """Reads files of one run folder; a damaged one becomes a note, not an error."""

    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir
        self.notes: list[str] = []

    def path(self, *parts: str) -> str:
        return os.path.join(self.run_dir, *parts)

    def json(self, *parts: str) -> Any:
        path = self.path(*parts)
        if not os.path.exists(path):
            return None
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            self.notes.append(f"{path}: unreadable ({err})")
            return None

    def evaluation(self, *parts: str) -> list[Score] | None:
        summary = self.json(*parts, "eval.json")
        if summary is None:
            return None
        try:
            return [score_of(n, e) for n, e in summary["benchmarks"].items()]
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            self.notes.append(f"{self.path(*parts, 'eval.json')}: unexpected content ({err!r})")
            return None

    def curriculum(self, it: int, per_kind: int) -> Curriculum | None:
        report = self.json(f"iter{it}", "curriculum", "curriculum.json")
        if not isinstance(report, dict):
            return None
        curriculum = Curriculum(report)
        path = self.path(f"iter{it}", "curriculum", "questions.jsonl")
        if not os.path.exists(path):
            return curriculum
        try:
            with open(path, encoding="utf-8") as f:
                rows = [json.loads(line) for line in f if line.strip()]
            curriculum.reasons = {}
            for row in rows:
                reason = str(row.get("reason", "?"))
                curriculum.reasons[reason] = curriculum.reasons.get(reason, 0) + 1
            curriculum.samples = pick_samples(rows, per_kind)
        except (OSError, UnicodeDecodeError, ValueError, TypeError, AttributeError) as err:
            self.notes.append(f"{path}: unreadable ({err})")
        return curriculum

    def difficulty(self, it: int) -> dict[str, float | None] | None:
        raw = self.json("analysis", f"iter{it}.json")
        found = difficulty_of(raw)
        if raw is not None and found is None:
            keys = ", ".join(DIFFICULTY_KEYS[:3])
            self.notes.append(f"{self.path('analysis', f'iter{it}.json')}: none of {keys}")
        return found

    def state(self) -> tuple[list[Phase] | None, dict[str, Any]]:
        """``state.json``'s phases, and its ``best`` and ``stopped`` records (the collapse
        guard's) when it holds them."""
        state = self.json("state.json")
        if not isinstance(state, dict):
            return None, {}
        guard = {k: state[k] for k in ("best", "stopped") if isinstance(state.get(k), dict)}
        try:
            phases = [_phase(name, entry) for name, entry in (state.get("phases") or {}).items()]
        except (TypeError, ValueError, AttributeError) as err:
            self.notes.append(f"{self.path('state.json')}: unexpected phases ({err!r})")
            return None, guard
        return phases, guard

    def config(self) -> tuple[int | None, tuple[float, float] | None]:
        """The planned iterations and the band, from the ``config.yaml`` the CLI saved."""
        path = self.path("config.yaml")
        if not os.path.exists(path):
            return None, None
        try:
            import yaml

            with open(path, encoding="utf-8") as f:
                config = yaml.safe_load(f) or {}
            evolution = _init_args(config.get("evolution"))
            # evolution.vote.band since the curriculum moved into the evolution; data.band before
            band = _init_args(evolution.get("vote")).get("band")
            band = band or _init_args(config.get("data")).get("band")
            iterations = evolution.get("iterations")
            return (
                int(iterations) if isinstance(iterations, int) else None,
                (float(band[0]), float(band[1])) if isinstance(band, list) else None,
            )
        except Exception as err:  # noqa: BLE001  a config we cannot read only loses the plan
            self.notes.append(f"{path}: unreadable ({err})")
            return None, None

    def scalars(self) -> dict[str, list[tuple[int, float]]] | None:
        folder = self.path("tensorboard")
        if not os.path.isdir(folder) or not any(
            name.startswith("events.out.tfevents") for name in os.listdir(folder)
        ):
            return None
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        guidance = {"scalars": 0, "tensors": 1, "histograms": 1, "images": 1, "audio": 1}
        try:
            events = EventAccumulator(folder, size_guidance=guidance)
            events.Reload()  # drops what a killed process logged past its restart marker
            tags = set(events.Tags()["scalars"])
            return {
                tag: last_per_step([(e.step, e.value) for e in events.Scalars(tag)])
                for tag in SCALARS
                if tag in tags
            }
        except Exception as err:  # noqa: BLE001  a torn event file must not hide the report
            self.notes.append(f"{folder}: unreadable TensorBoard events ({err})")
            return None


def _phase(name: str, entry: dict[str, Any]) -> Phase:
    axis = ("steps", "step_start", "step_end")
    rest = {k: v for k, v in entry.items() if k not in axis}
    seconds = rest.pop("seconds", None)
    steps, start, end = (int(entry.get(k, 0)) for k in axis)
    return Phase(name, steps, start, end, None if seconds is None else float(seconds), rest)


def _init_args(section: Any) -> dict[str, Any]:
    if not isinstance(section, dict):
        return {}
    return section.get("init_args", section) or {}


def _iteration_numbers(run_dir: str, phases: list[Phase] | None, planned: int | None) -> list[int]:
    found = [int(m.group(1)) for n in os.listdir(run_dir) if (m := re.fullmatch(r"iter(\d+)", n))]
    found += [int(m.group(1)) for p in phases or [] if (m := re.match(r"iter(\d+)/", p.name))]
    analysis = os.path.join(run_dir, "analysis")
    if os.path.isdir(analysis):
        found += [
            int(m.group(1))
            for n in os.listdir(analysis)
            if (m := re.fullmatch(r"iter(\d+)\.json", n))
        ]
    return list(range(1, max([planned or 0, *found]) + 1))


def read_run(run_dir: str, samples_per_kind: int = 3) -> RunData:
    """Everything the report shows about ``run_dir``; missing parts are None."""
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"{run_dir}: no such run folder")
    reader = _Reader(run_dir)
    phases, guard = reader.state()
    planned, band = reader.config()
    iterations = [
        Iteration(
            number=it,
            evaluation=reader.evaluation(f"iter{it}", "eval"),
            curriculum=reader.curriculum(it, samples_per_kind),
            difficulty=reader.difficulty(it),
        )
        for it in _iteration_numbers(run_dir, phases, planned)
    ]
    return RunData(
        run_dir=run_dir,
        phases=phases,
        planned_iterations=planned,
        band=band,
        baseline=reader.evaluation("eval", "baseline"),
        iterations=iterations,
        scalars=reader.scalars(),
        notes=reader.notes,
        best=guard.get("best"),
        stopped=guard.get("stopped"),
    )
