"""The paper's self-play analysis of a run, iteration by iteration.

Writes ``RUN_DIR/analysis/iterK.json`` (one row per iteration, see
``rzero_pl.analysis.dynamics``), ``RUN_DIR/analysis/analysis.md`` (the table, shaped like
the paper's) and the same numbers as ``analysis/…`` TensorBoard scalars at the step of each
iteration's evaluation.

``Analysis`` runs as an ``evolution.analysis`` setting, after every iteration's evaluation,
with the base solver as the fixed one (saved once as ``analysis/base_solver``), or afterwards
on a run folder: ``rzero-pl analyze RUN_DIR`` (``rzero_pl.run.posthoc``, which rebuilds the
run from its ``config.yaml``).
"""

from __future__ import annotations

import os
from typing import Any

from rzero_pl.analysis.dynamics import (
    Judge,
    markdown_table,
    recorded_columns,
    sample_questions,
    solver_columns,
    vote_and_judge,
    write_row,
)
from rzero_pl.analysis.probe import probe_row
from rzero_pl.errors import MAX_ITEMS, check_number
from rzero_pl.ground.io import read_json, write_text_atomic
from rzero_pl.models.sources import ModelSource
from rzero_pl.scale.distributed import is_rank_zero


class Analysis:
    """The per-iteration analysis (``evolution.analysis``; ``rzero-pl analyze`` afterwards).

    Args:
        sample: Questions per iteration (the first valid candidates of its curriculum).
        fixed_solver: Saved solver weights of the fixed solver (None: the base solver).
        reference: Without exact truth: a reference solver (a stronger model) whose majority
            answer judges the pseudo-labels; named in every row of the output. Refused when
            the task has exact truth (it would be ignored).
    """

    def __init__(
        self,
        sample: int = 200,
        fixed_solver: str | None = None,
        reference: ModelSource | None = None,
    ) -> None:
        check_number("analysis.sample", sample, at_least=1, at_most=MAX_ITEMS)
        self.sample = sample
        self.fixed_solver = fixed_solver
        self.reference = reference
        self._judge: Judge | None = None

    def judge(self, truth: Any) -> Judge:
        """Exact truth when the task has it, else the reference solver, else none."""
        if self._judge is None:
            if truth is not None and self.reference is not None:
                raise ValueError(
                    f"analysis.reference (--reference): this run's curriculum has exact truth "
                    f"({type(truth).__name__}), which judges the labels; remove the reference"
                )
            if truth is not None:
                self._judge = Judge(f"truth ({type(truth).__name__})", truth=truth)
            elif self.reference is not None:
                from rzero_pl.models.actor import Actor
                from rzero_pl.models.policy import Policy

                actor = Actor(Policy(self.reference, roles=("solver",)))
                self._judge = Judge(f"reference solver ({self.reference!r})", reference=actor)
            else:
                raise ValueError(
                    "analysis: no truth (curriculum.truth) and no reference solver "
                    "(analysis.reference): pseudo-label accuracy cannot be measured"
                )
        return self._judge

    def base_folder(self, run_dir: str) -> str:
        return self.fixed_solver or os.path.join(run_dir, "analysis", "base_solver")

    def keep_base(self, actor: Any, run_dir: str) -> None:
        """Save the base solver once, before any training (collective under FSDP)."""
        folder = self.base_folder(run_dir)
        if self.fixed_solver is None and not os.path.isdir(folder):
            actor.policy.save_role("solver", folder)

    def iteration(
        self, it: int, run_dir: str, actor: Any, vote: Any, truth: Any, restore: str
    ) -> dict:
        """Analyse iteration ``it`` with the actor's current solver as the iteration's; the
        fixed solver is loaded for its pass and ``restore`` (weights) reloaded after."""
        rows = sample_questions(os.path.join(run_dir, f"iter{it}", "curriculum"), self.sample)
        judge = self.judge(truth)
        questions = [r["question"] for r in rows]
        refs = judge.references(questions, vote)
        row: dict[str, Any] = {"iteration": it, "questions": len(rows), "judge": judge.name}
        row["fixed_solver"] = self.fixed_solver or "base"
        row["iteration_solver"] = os.path.relpath(restore, run_dir)
        row.update(recorded_columns(rows, judge, refs))
        if rows:
            with actor.gathered():  # FSDP: ranks generate unequal amounts
                iteration = vote_and_judge(actor, vote, rows, judge, refs)
            actor.load_role("solver", self.base_folder(run_dir))
            with actor.gathered():
                fixed = vote_and_judge(actor, vote, rows, judge, refs)
            actor.load_role("solver", restore)
            row.update(solver_columns("iteration", rows, *iteration))
            row.update(solver_columns("fixed", rows, *fixed))
            row.update(self.probe(run_dir, actor, vote, restore))
        if is_rank_zero():
            write_row(os.path.join(run_dir, "analysis"), row)
            write_table(run_dir)
        return row

    def probe(self, run_dir: str, actor: Any, vote: Any, restore: str) -> dict:
        """The label-free probe columns of the actor's current solver, whose weights are
        ``restore`` (``rzero_pl.analysis.probe``)."""
        return probe_row(run_dir, self.sample, actor, vote, self.base_folder(run_dir), restore)


def write_table(run_dir: str) -> str:
    """``analysis/analysis.md`` from every ``analysis/iterK.json`` written so far."""
    folder = os.path.join(run_dir, "analysis")
    rows = []
    for name in sorted(os.listdir(folder), key=lambda n: (len(n), n)):
        if name.startswith("iter") and name.endswith(".json"):
            rows.append(read_json(os.path.join(folder, name)))
    text = "# Self-play dynamics\n\n" + markdown_table(rows)
    write_text_atomic(os.path.join(folder, "analysis.md"), text)
    return text


def latest_solver(run_dir: str, it: int) -> str | None:
    """The newest saved solver weights up to iteration ``it`` (None: the base)."""
    for k in range(it, 0, -1):
        folder = os.path.join(run_dir, f"iter{k}", "solver", "weights")
        if os.path.isdir(folder):
            return folder
    return None
