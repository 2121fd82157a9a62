"""A label-free signal of the solver: its votes on a fixed probe of the run's own questions.

The probe is iteration 1's analysis sample (the first valid candidates of
``iter1/curriculum/questions.jsonl``): unlabelled questions the run wrote itself, the same at
every iteration, so that iterations are compared on the same questions (each iteration's own
sample differs, which is why its p̂ tracks the curriculum more than the solver). Per
iteration, with no label and no truth:

- ``probe_share_mean``: the solver's mean majority-vote share (self-consistency), with a
  95 % interval over the probe's questions (``probe_share_ci95``);
- ``probe_base_agreement``: the share of probe questions whose majority answer is the base
  solver's (how far the solver drifted from where it started).

The base solver's votes are taken once and kept in ``analysis/probe_base.json``; its
``share_mean`` and interval are the probe's value at iteration 0 (the base). The collapse
guard (``selection.signal: probe_confidence``) keeps the trained iteration with the lowest
``probe_share_mean``: on the toy world a decaying solver grows surer of its own answers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from rzero_pl.analysis.dynamics import VOTE_SEED, sample_questions
from rzero_pl.grading.answers import matches_many
from rzero_pl.ground.io import read_json, write_json_atomic
from rzero_pl.scale.distributed import is_rank_zero

Z95 = 1.959964  # the normal quantile of a 95 % two-sided interval


def probe_questions(run_dir: str, sample: int) -> list[str]:
    """The probe: iteration 1's first ``sample`` valid candidates (empty before iteration 1)."""
    rows = sample_questions(os.path.join(run_dir, "iter1", "curriculum"), sample)
    return [r["question"] for r in rows]


def mean_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and its normal-approximation 95 % interval (the probe has ~100-200 questions)."""
    x = np.asarray(values, dtype=np.float64)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, mean, mean
    half = Z95 * float(x.std(ddof=1)) / math.sqrt(len(x))
    return mean, mean - half, mean + half


def agreement(labels: Sequence[str | None], base: Sequence[str | None]) -> float:
    """The share of questions whose majority answer is the base's (graded as equivalent; no
    answer agrees with nothing, not even with no answer)."""
    pairs = [(b, a) for a, b in zip(labels, base, strict=True) if a is not None and b is not None]
    same = matches_many(pairs) if pairs else []
    return sum(same) / len(labels) if labels else 0.0


def probe_columns(
    shares: Sequence[float], labels: Sequence[str | None], base: Sequence[str | None]
) -> dict[str, Any]:
    """The probe's columns of one iteration from its solver's votes and the base's labels."""
    mean, low, high = mean_interval(shares)
    return {
        "probe_questions": len(shares),
        "probe_share_mean": mean,
        "probe_share_ci95": [low, high],
        "probe_base_agreement": agreement(labels, base),
    }


def base_votes(
    run_dir: str, questions: list[str], actor: Any, vote: Any, base: str, restore: str
) -> dict:
    """The base solver's votes on the probe, taken once (``analysis/probe_base.json``):
    ``{questions, labels, shares, share_mean, share_ci95}``. Loads ``base`` for the pass
    and ``restore`` after it."""
    path = os.path.join(run_dir, "analysis", "probe_base.json")
    kept = read_json(path)
    if kept is not None and kept.get("questions") == questions:
        return kept
    actor.load_role("solver", base)
    with actor.gathered():
        votes, _ = vote.vote(questions, actor, VOTE_SEED)
    actor.load_role("solver", restore)
    shares = [v.share for v in votes]
    mean, low, high = mean_interval(shares) if shares else (0.0, 0.0, 0.0)
    record = {
        "questions": questions,
        "labels": [v.label for v in votes],
        "shares": shares,
        "share_mean": mean,
        "share_ci95": [low, high],
    }
    if is_rank_zero():
        write_json_atomic(path, record)
    return record


def probe_row(
    run_dir: str, sample: int, actor: Any, vote: Any, base: str, restore: str
) -> dict[str, Any]:
    """The probe's columns for the actor's current solver (``restore``: its weights)."""
    questions = probe_questions(run_dir, sample)
    if not questions:
        return {}
    kept = base_votes(run_dir, questions, actor, vote, base, restore)
    with actor.gathered():
        votes, _ = vote.vote(questions, actor, VOTE_SEED)
    return probe_columns([v.share for v in votes], [v.label for v in votes], kept["labels"])
