"""RepetitionPenalty: the challenger's penalty for near-duplicate questions."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import numpy as np

from rzero_pl.challenger import QuestionBatch, RewardCallback
from rzero_pl.errors import check_number
from rzero_pl.rewards import bleu_distance_matrix, cluster_labels


class RepetitionPenalty(RewardCallback):
    """BLEU clusters over the whole rollout batch → ``repetition`` = λ·|cluster| / batch size.

    Distances are ``1 - BLEU`` (whitespace tokens, uniform 1–4-gram weights, method1
    smoothing), clustered with average linkage at ``threshold``. Malformed completions count
    in the batch as empty questions, as in the reference. With several ranks the clusters
    and the denominator are those of the whole batch (every rank's questions).

    Args:
        threshold: Average-linkage distance below which questions share a cluster.
        weight: λ, the penalty's scale (reference: 1).
    """

    term = "repetition"

    def __init__(self, threshold: float = 0.5, weight: float = 1.0) -> None:
        check_number("RepetitionPenalty.threshold", threshold, above=0, at_most=1)
        check_number("RepetitionPenalty.weight", weight, at_least=0)
        if not 0 < threshold <= 1:
            raise ValueError(f"RepetitionPenalty.threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self.weight = weight

    def score_batch(self, trainer: L.Trainer, module: Any, batch: QuestionBatch) -> None:
        start = time.perf_counter()
        texts = [q or "" for q in batch.batch_questions]
        labels = cluster_labels(bleu_distance_matrix(texts), self.threshold)
        sizes = np.bincount(labels)
        mine = labels[batch.offset : batch.offset + len(batch.questions)]
        batch.terms["repetition"] = self.weight * sizes[mine] / len(texts)
        batch.metrics["repetition/clusters"] = float(len(sizes))
        batch.metrics["repetition/largest_cluster"] = float(sizes.max() / len(texts))
        batch.metrics["repetition/seconds"] = time.perf_counter() - start
