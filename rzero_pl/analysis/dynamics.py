"""The paper's analysis of self-play, per iteration: difficulty, label accuracy, diversity.

For a fixed sample of each iteration's challenger questions (the first ``sample`` valid
candidates of ``iterK/curriculum/questions.jsonl``, in the challenger's sampling order):

- **difficulty** the paper's way: p̂ and vote accuracy under one *fixed* solver (the base,
  or any saved solver weights) and under the solver *trained* in that iteration; the
  labelling solver's (the previous iteration's) p̂ is the one recorded in the curriculum;
- **pseudo-label accuracy**: the recorded label against the truth: exact in the toy world
  (the curriculum's ``truth``), for real models against a reference solver's majority
  answer (another model source), named in the output;
- the share histogram, question length, diversity (mean pairwise BLEU distance) and the
  fraction of near-duplicates (questions in a BLEU cluster of two or more at the
  repetition penalty's threshold).

``analyze_iteration`` returns one row (a dict, written as ``analysis/iterK.json``);
``markdown_table`` shapes the rows like the paper's table.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from rzero_pl.curriculum import curriculum_stats
from rzero_pl.ground.io import read_jsonl, write_json_atomic
from rzero_pl.questions import Truth
from rzero_pl.rewards import MajorityVote, cluster_labels
from rzero_pl.rewards.repetition import REPETITION_THRESHOLD, bleu_distance_matrix

VOTE_SEED = 20_250_805  # one seed for every iteration: the same draws on every sample


class Judge:
    """Says whether answers are right: from exact truth, or from a reference solver."""

    def __init__(self, name: str, truth: Truth | None = None, reference: Any = None) -> None:
        self.name, self.truth, self.reference = name, truth, reference

    def references(self, questions: Sequence[str], vote: MajorityVote) -> list[str | None]:
        """The reference solver's majority answers (None for every question with truth)."""
        if self.reference is None:
            return [None] * len(questions)
        votes, _ = vote.vote(questions, self.reference, VOTE_SEED)
        return [v.label for v in votes]

    def judge(
        self, questions: Sequence[str], answers: Sequence[str | None], refs: Sequence[str | None]
    ) -> list[bool]:
        """Whether ``answers[i]`` answers ``questions[i]`` right (no answer: wrong)."""
        if self.truth is not None:
            return [
                a is not None and bool(self.truth.check(q, a))
                for q, a in zip(questions, answers, strict=True)
            ]
        from rzero_pl.grading.answers import matches_many

        return matches_many(list(zip(refs, answers, strict=True)))


def sample_questions(folder: str, sample: int) -> list[dict]:
    """The first ``sample`` valid candidates of a curriculum folder's ``questions.jsonl``."""
    rows = read_jsonl(os.path.join(folder, "questions.jsonl"))
    return [r for r in rows if r.get("question") is not None][:sample]


def solver_columns(
    prefix: str, rows: list[dict], votes: list[Any], answers: list[list], correct: list[list]
) -> dict[str, Any]:
    """``<prefix>_share_mean``, ``_vote_accuracy``, ``_share_histogram`` of one solver."""
    m = len(answers[0]) if answers else 0
    shares = np.array([v.share for v in votes], dtype=np.float64)
    histogram = [0] * (m + 1)
    for share in shares:
        histogram[min(m, max(0, round(share * m)))] += 1
    accuracy = float(np.mean([np.mean(c) for c in correct])) if correct else None
    return {
        f"{prefix}_share_mean": float(shares.mean()) if len(shares) else None,
        f"{prefix}_vote_accuracy": accuracy,
        f"{prefix}_share_histogram": histogram,
    }


def near_duplicate_fraction(texts: Sequence[str], threshold: float = REPETITION_THRESHOLD) -> float:
    """The fraction of ``texts`` that share a BLEU cluster with another text."""
    if len(texts) < 2:
        return 0.0
    labels = cluster_labels(bleu_distance_matrix(texts), threshold)
    sizes = np.bincount(labels)
    return float(np.mean(sizes[labels] > 1))


def recorded_columns(rows: list[dict], judge: Judge, refs: list[str | None]) -> dict[str, Any]:
    """What the curriculum recorded for the sample: the labelling solver's p̂, the labels'
    accuracy (truth: the recorded ``label_correct``; reference: judged now), kept labels."""
    questions = [r["question"] for r in rows]
    labels = [r.get("label") for r in rows]
    right = judge.judge(questions, labels, refs)
    kept = [ok for ok, r in zip(right, rows, strict=True) if r.get("kept")]
    stats = curriculum_stats(rows, votes=max((len(r.get("votes", [])) for r in rows), default=1))
    return {
        "label_share_mean": stats.get("share_mean"),
        "label_share_histogram": stats.get("share_histogram"),
        "label_accuracy": float(np.mean(right)) if right else None,
        "kept_in_sample": len(kept),
        "kept_label_accuracy": float(np.mean(kept)) if kept else None,
        "question_words_mean": stats.get("question_words_mean"),
        "diversity": stats.get("diversity"),
        "near_duplicates": near_duplicate_fraction(questions),
    }


def vote_and_judge(
    actor: Any, vote: MajorityVote, rows: list[dict], judge: Judge, refs: list[str | None]
) -> tuple[list, list, list]:
    """The solver's votes on the sample, their answers and whether each answer is right."""
    questions = [r["question"] for r in rows]
    votes, answers = vote.vote(questions, actor, VOTE_SEED)
    correct = [
        judge.judge([q] * len(a), a, [ref] * len(a))
        for q, a, ref in zip(questions, answers, refs, strict=True)
    ]
    return votes, answers, correct


def markdown_table(rows: list[dict]) -> str:
    """The paper's table (difficulty under a fixed solver vs pseudo-label accuracy)."""
    head = (
        "| iteration | questions | fixed-solver accuracy | fixed p̂ | iteration-solver "
        "accuracy | iteration p̂ | labelling p̂ | label accuracy | kept-label accuracy | "
        "words | diversity | near-duplicates | probe p̂ | probe agreement with the base | "
        "labels judged by |\n|" + "---|" * 15 + "\n"
    )

    def pct(x: float | None) -> str:
        return "–" if x is None else f"{100 * x:.1f} %"

    def num(x: float | None) -> str:
        return "–" if x is None else f"{x:.2f}"

    lines = [
        f"| {r['iteration']} | {r['questions']} | {pct(r.get('fixed_vote_accuracy'))} | "
        f"{num(r.get('fixed_share_mean'))} | {pct(r.get('iteration_vote_accuracy'))} | "
        f"{num(r.get('iteration_share_mean'))} | {num(r.get('label_share_mean'))} | "
        f"{pct(r.get('label_accuracy'))} | {pct(r.get('kept_label_accuracy'))} | "
        f"{num(r.get('question_words_mean'))} | {num(r.get('diversity'))} | "
        f"{pct(r.get('near_duplicates'))} | {num(r.get('probe_share_mean'))} | "
        f"{pct(r.get('probe_base_agreement'))} | {r.get('judge', '–')} |"
        for r in rows
    ]
    judged = {r.get("judge") for r in rows}
    note = f"\nLabels judged by: {', '.join(sorted(str(j) for j in judged))}.\n"
    return head + "\n".join(lines) + "\n" + note


def scalars(row: dict) -> dict[str, float]:
    """The row's numbers as ``analysis/<name>`` TensorBoard scalars."""
    return {
        f"analysis/{k}": float(v)
        for k, v in row.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "iteration"
    }


def write_row(folder: str, row: dict) -> None:
    write_json_atomic(os.path.join(folder, f"iter{row['iteration']}.json"), row)
