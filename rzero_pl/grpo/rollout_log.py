"""What a rollout step reports: scalar statistics and a text table of a few rollouts."""

from __future__ import annotations

import html
from collections.abc import Sequence
from statistics import fmean
from typing import Any

from rzero_pl.grpo.rollout import Rollout


def rollout_metrics(rollouts: Sequence[Rollout], gen_seconds: float, total_seconds: float) -> dict:
    """Reward, reward terms, lengths and speed of one rollout step."""
    if not rollouts:
        return {}
    lengths = [len(r.completion_ids) for r in rollouts]
    rewards = [r.reward for r in rollouts]
    groups: dict[int, list[float]] = {}
    for r in rollouts:
        groups.setdefault(r.group, []).append(r.reward)
    flat = sum(1 for g in groups.values() if max(g) == min(g))
    metrics = {
        "reward_mean": fmean(rewards),
        "reward_max": max(rewards),
        "reward_min": min(rewards),
        "response_length_mean": fmean(lengths),
        "response_length_max": float(max(lengths)),
        "truncated_fraction": fmean(r.finish_reason == "length" for r in rollouts),
        "zero_advantage_groups": flat / len(groups),
        "gen_tokens_per_s": sum(lengths) / max(gen_seconds, 1e-9),
        "rollout_seconds": total_seconds,
    }
    for name in sorted({k for r in rollouts for k in r.terms}):
        values = [r.terms[name] for r in rollouts if name in r.terms]
        metrics[f"terms/{name}"] = fmean(values)
    return metrics


def combine_rank_metrics(per_rank: Sequence[dict[str, float]]) -> dict[str, float]:
    """One rollout step's metrics from every rank's own (equal) shard.

    ``*_max``/``*_min`` take the extreme, ``*seconds`` the slowest rank, ``*tokens_per_s``
    the sum (ranks generate at once); everything else is the mean of the ranks' values: the
    batch mean, since shards are equal (for a term only some rollouts carry, such as a
    question's vote share, it is the mean of the ranks' means).
    """
    if len(per_rank) == 1:
        return dict(per_rank[0])
    combined = {}
    for key in sorted({k for m in per_rank for k in m}):
        values = [m[key] for m in per_rank if key in m]
        if key.endswith("_max"):
            combined[key] = max(values)
        elif key.endswith("_min"):
            combined[key] = min(values)
        elif key.endswith("seconds"):
            combined[key] = max(values)
        elif key.endswith("tokens_per_s"):
            combined[key] = sum(values)
        else:
            combined[key] = fmean(values)
    return combined


def rollout_rows(items: Sequence[dict], rollouts: Sequence[Rollout], limit: int = 8) -> list[dict]:
    """A few rollouts, one per group first, as plain rows."""
    seen: set[int] = set()
    picked = []
    for r in rollouts:
        if r.group not in seen:
            seen.add(r.group)
            picked.append(r)
        if len(picked) == limit:
            break
    rows = []
    for r in picked:
        item = items[r.group] if r.group < len(items) else {}
        rows.append(
            {
                "problem": item.get("problem", ""),
                "completion": r.completion,
                "answer": r.answer or "",
                "reward": r.reward,
            }
        )
    return rows


def write_rollout_table(
    logger: Any, role: str, items: Sequence[dict], rollouts: Sequence[Rollout], step: int
) -> None:
    """Write a markdown table of a few rollouts to TensorBoard, when that is the logger."""
    experiment = getattr(logger, "experiment", None)
    if experiment is None or not hasattr(experiment, "add_text"):
        return
    lines = ["| prompt | completion | answer | reward |", "|---|---|---|---|"]
    for row in rollout_rows(items, rollouts):
        cells = [row["problem"], row["completion"], row["answer"], f"{row['reward']:.3f}"]
        cells = [html.escape(c).replace("\n", "<br>").replace("|", "\\|") for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    experiment.add_text(f"{role}/rollouts", "\n".join(lines), global_step=step)
