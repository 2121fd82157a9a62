"""Rollouts: typed records of one completion each, and their batching for training.

A rollout holds the prompt and completion token ids, the reward terms and the reward,
the group advantage, and the per-token log-probs of the sampling policy (``old``) and of
the KL reference. ``collate`` lays a list of rollouts out as right-padded tensors where
position ``t`` of every ``[B, L-1]`` tensor scores token ``t + 1`` of the sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch
from torch.utils.data import Dataset

from rzero_pl.engines.base import Generation


@dataclass(frozen=True)
class Rollout:
    """One completion and everything the loss needs about it; each stage of a rollout step
    returns new ones (``dataclasses.replace``), none fills them in."""

    prompt_ids: list[int]
    completion_ids: list[int]
    completion: str
    group: int  # index of the prompt within its rollout batch
    weight_version: int
    finish_reason: str = "stop"
    answer: str | None = None  # what the scorer extracted (a boxed answer, a question)
    terms: dict[str, float] = field(default_factory=dict)
    reward: float = 0.0
    advantage: float = 0.0
    old_logprobs: list[float] | None = None
    ref_logprobs: list[float] | None = None
    # The engine's own log-probs of the sampled tokens (engine ``return_logprobs``) and the
    # importance weights that correct the loss for their gap to the trainer's (None: off).
    sampler_logprobs: list[float] | None = None
    sampler_weights: list[float] | None = None
    # The counts of the minibatch (optimizer update) this rollout is trained in, all ranks
    # together: the loss divides by them, so a minibatch's loss is the same however it is
    # split into micro-batches (``rzero_pl.grpo.loss.aggregate``). 0: not set.
    minibatch_tokens: int = 0
    minibatch_size: int = 0


@dataclass(frozen=True)
class Scores:
    """A role's verdict on its shard of one rollout step (``GRPOModule.score``): per rollout,
    in order, its reward, the answer the scorer read (a boxed answer, a question) and its
    reward terms; and the step's metrics to log. The module builds the scored rollouts from
    them."""

    rewards: list[float]
    answers: list[str | None]
    terms: list[dict[str, float]]
    metrics: dict[str, float] = field(default_factory=dict)


class RolloutDataset(Dataset):
    """A finished, map-style dataset of rollouts (one rollout step's worth)."""

    def __init__(self, rollouts: Sequence[Rollout]) -> None:
        self.rollouts = list(rollouts)

    def __len__(self) -> int:
        return len(self.rollouts)

    def __getitem__(self, index: int) -> Rollout:
        return self.rollouts[index]


def collate(rollouts: Sequence[Rollout], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad rollouts into tensors.

    Returns ``input_ids``/``attention_mask`` ``[B, L]``; ``mask`` ``[B, L-1]`` (1 where the
    target token is a completion token); ``advantages`` ``[B]``; and, when every rollout has
    them, ``old_logprobs``/``ref_logprobs``/``sampler_weights`` ``[B, L-1]`` aligned with
    ``mask``.
    """
    width = max(len(r.prompt_ids) + len(r.completion_ids) for r in rollouts)
    b = len(rollouts)
    input_ids = torch.full((b, width), pad_id, dtype=torch.long)
    attention = torch.zeros((b, width), dtype=torch.long)
    mask = torch.zeros((b, width - 1), dtype=torch.float32)
    batch = {"input_ids": input_ids, "attention_mask": attention, "mask": mask}
    extra = {
        key: torch.zeros((b, width - 1), dtype=torch.float32)
        for key in ("old_logprobs", "ref_logprobs", "sampler_weights")
        if all(getattr(r, key) is not None for r in rollouts)
    }
    for i, r in enumerate(rollouts):
        seq = r.prompt_ids + r.completion_ids
        input_ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        attention[i, : len(seq)] = 1
        start, stop = len(r.prompt_ids) - 1, len(seq) - 1
        mask[i, start:stop] = 1.0
        for key, tensor in extra.items():
            tensor[i, start:stop] = torch.tensor(getattr(r, key), dtype=torch.float32)
    batch.update(extra)
    batch["advantages"] = torch.tensor([r.advantage for r in rollouts], dtype=torch.float32)
    if all(r.minibatch_size for r in rollouts):
        for key in ("minibatch_tokens", "minibatch_size"):
            batch[key] = torch.tensor([getattr(r, key) for r in rollouts], dtype=torch.float32)
    return batch


def to_rollouts(generations: Sequence[Generation], expected_version: int) -> list[Rollout]:
    """One rollout per completion, grouped by prompt; refuse a completion sampled by weights
    other than ``expected_version`` (the version the engine serves: on-policy or nothing)."""
    rollouts = []
    for g, gen in enumerate(generations):
        for c in gen.completions:
            if c.weight_version != expected_version:
                raise RuntimeError(
                    f"stale rollout: weight version {c.weight_version}, "
                    f"engine serves {expected_version}"
                )
            if c.logprobs is not None and len(c.logprobs) != len(c.token_ids):
                raise RuntimeError(
                    f"the engine returned {len(c.logprobs)} log-probs for "
                    f"{len(c.token_ids)} sampled tokens"
                )
            rollouts.append(
                Rollout(
                    gen.prompt_ids,
                    c.token_ids,
                    c.text,
                    g,
                    c.weight_version,
                    c.finish_reason,
                    sampler_logprobs=c.logprobs,
                )
            )
    return rollouts


def minibatch_counts(rollouts: Sequence[Rollout], per_update: int) -> list[tuple[int, int]]:
    """``(tokens, sequences)`` of each minibatch of ``rollouts``.

    ``rollouts`` are in training order; every ``per_update`` consecutive ones form one
    minibatch (the last may be shorter). A rollout's tokens are its completion tokens (the
    masked positions of ``collate``).
    """
    counts = []
    for start in range(0, len(rollouts), per_update):
        chunk = rollouts[start : start + per_update]
        counts.append((sum(len(r.completion_ids) for r in chunk), len(chunk)))
    return counts


def with_minibatch_counts(
    rollouts: Sequence[Rollout], per_update: int, counts: Sequence[tuple[int, int]]
) -> list[Rollout]:
    """The rollouts, each with ``counts[k]`` of its minibatch ``k`` (e.g. summed over ranks)."""
    out = []
    for i, r in enumerate(rollouts):
        tokens, size = counts[i // per_update]
        out.append(replace(r, minibatch_tokens=tokens, minibatch_size=size))
    return out


def sum_minibatch_counts(
    every: Sequence[Sequence[tuple[int, int]]],
) -> list[tuple[int, int]]:
    """Each rank's ``mark_minibatches`` counts, summed minibatch by minibatch.

    A rank with fewer minibatches adds nothing to the later ones.
    """
    return [
        tuple(map(sum, zip(*(c[k] for c in every if k < len(c)), strict=True)))
        for k in range(max(len(c) for c in every))
    ]


def keep_informative(rollouts: Sequence[Rollout], size: int) -> list[Rollout]:
    """The rollouts with a non-zero advantage, topped up to ``size`` with signal-free ones.

    A rollout whose advantage is 0 (its whole group scored alike) adds nothing to the policy
    gradient, so without a KL term its forward and backward passes are wasted. ``size``
    (at least the number of informative rollouts) lets every rank train on the same number
    of rollouts; the top-up keeps the original order and never exceeds ``len(rollouts)``.
    """
    informative = [r.advantage != 0.0 for r in rollouts]
    room = max(0, min(size, len(rollouts)) - sum(informative))
    kept = []
    for r, useful in zip(rollouts, informative, strict=True):
        if useful:
            kept.append(r)
        elif room:
            kept.append(r)
            room -= 1
    return kept


def padded(rows: Sequence[Sequence[float]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token values of several completions as ``[B, T]`` right-padded values and mask."""
    width = max((len(r) for r in rows), default=0)
    values = torch.zeros((len(rows), width), dtype=torch.float32)
    mask = torch.zeros((len(rows), width), dtype=torch.float32)
    for i, row in enumerate(rows):
        values[i, : len(row)] = torch.tensor(row, dtype=torch.float32)
        mask[i, : len(row)] = 1.0
    return values, mask


def completion_logprobs(row_logprobs: torch.Tensor, mask_row: torch.Tensor) -> list[float]:
    """The completion part of one row of a ``[L-1]`` log-prob tensor, as a list."""
    return row_logprobs[mask_row.bool()].tolist()
