"""The challenger's reward: its terms and their combination.

Reward terms (the vocabulary's ``uncertainty``, ``repetition``, ``format``):

- ``majority_vote``: ``MajorityVote`` (m solver answers, the winning cluster's share p̂) and
  ``uncertainty(p̂)``; the same vote labels the curriculum.
- ``repetition``: ``RepetitionPenalty``, BLEU-distance clusters of the whole rollout batch.
- ``question_format``: ``QuestionFormat``, a completion's question or why it is malformed.

``challenger_reward`` combines them. The solver's ``correct`` term is in
``rzero_pl.grpo.loss.solver``.
"""

from __future__ import annotations

import numpy as np

from rzero_pl.rewards.majority_vote import MajorityVote, uncertainty
from rzero_pl.rewards.question_format import INVALID_REASONS, QuestionFormat
from rzero_pl.rewards.repetition import RepetitionPenalty, bleu_distance_matrix, cluster_labels

__all__ = [
    "INVALID_REASONS",
    "MajorityVote",
    "QuestionFormat",
    "RepetitionPenalty",
    "bleu_distance_matrix",
    "challenger_reward",
    "cluster_labels",
    "uncertainty",
]


def challenger_reward(
    share: np.ndarray, repetition: np.ndarray, valid: np.ndarray, form: str = "paper"
) -> np.ndarray:
    """The challenger's reward per question, ``[n]`` float64.

    - ``form="paper"``: ``max(0, uncertainty(share) - repetition)``; an invalid question gets 0.
    - ``form="reference"`` (the released code): ``min(share, 1 - share) - repetition`` for a
      valid question and ``-1 - repetition`` for an invalid one; never clipped.

    ``share`` of an invalid question is ignored (it may be NaN).
    """
    share = np.asarray(share, dtype=np.float64)
    repetition = np.asarray(repetition, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    if form == "paper":
        with np.errstate(invalid="ignore"):
            reward = np.maximum(0.0, uncertainty(share) - repetition)
        return np.where(valid, reward, 0.0)
    if form == "reference":
        with np.errstate(invalid="ignore"):
            closeness = np.minimum(share, 1.0 - share)
        return np.where(valid, closeness, -1.0) - repetition
    raise ValueError(f"unknown challenger reward form {form!r}; use 'paper' or 'reference'")
