"""The challenger's reward: its terms and their combination.

Reward terms (the vocabulary's ``uncertainty``, ``repetition``, ``format``):

- ``majority_vote``: ``MajorityVote`` (m solver answers, the winning cluster's share p̂) and
  ``uncertainty(p̂)``; the same vote labels the curriculum unless ``evolution.label_vote``
  gives it its own.
- ``repetition``: ``RepetitionPenalty``, BLEU-distance clusters of the whole rollout batch.
- ``question_format``: ``QuestionFormat``, a completion's question or why it is malformed.

``challenger_reward`` combines them. ``RoleSampling`` samples a role on its behalf (the votes,
the curriculum's questions) with the role's own budget unless it sets one. The solver's ``correct`` term (and the released code's
``format`` term for the solver) is ``rzero_pl.grpo.solver.correctness_rewards``.
"""

from __future__ import annotations

import numpy as np

from rzero_pl.rewards.majority_vote import MajorityVote, SolverReading, uncertainty
from rzero_pl.rewards.question_format import INVALID_REASONS, QuestionFormat
from rzero_pl.rewards.repetition import RepetitionPenalty, bleu_distance_matrix, cluster_labels
from rzero_pl.rewards.sampling import RoleSampling

__all__ = [
    "INVALID_REASONS",
    "MajorityVote",
    "QuestionFormat",
    "RepetitionPenalty",
    "RoleSampling",
    "SolverReading",
    "bleu_distance_matrix",
    "challenger_reward",
    "cluster_labels",
    "released_gate",
    "uncertainty",
]


def released_gate(labels: list[str | None], own_answers: list[str | None]) -> np.ndarray:
    """Whether each question passes the gate of the released code before its fix, ``[n]`` bool.

    The released service (``vllm_service_init/start_vllm_server.py`` at the parent of
    Chengsong-Huang/R-Zero commit ``9409808``, ``process_single``) compared the solver's
    majority answer with ``answers[-1].strip()`` in ``examples/reward_function/
    caller_penalty.py`` (commit ``af4a941``), where ``answers`` is the challenger's boxed
    answer as a string: its last character. The comparison is exact string equality. A
    completion without a box reads "None" there, so its last character is "e".
    """
    own = ["None" if a is None else a.strip() for a in own_answers]
    return np.array(
        [lab is not None and a != "" and lab == a[-1] for lab, a in zip(labels, own, strict=True)],
        dtype=bool,
    )


def challenger_reward(
    share: np.ndarray,
    repetition: np.ndarray,
    valid: np.ndarray,
    form: str = "paper",
    gate: np.ndarray | None = None,
) -> np.ndarray:
    """The challenger's reward per question, ``[n]`` float64.

    - ``form="paper"``: ``max(0, uncertainty(share) - repetition)``; an invalid question gets 0.
    - ``form="reference"`` (the released code): ``min(share, 1 - share) - repetition`` for a
      valid question and ``-1 - repetition`` for an invalid one; never clipped.
    - ``form="gated"`` (the released code before commit ``9409808``, behind the published
      tables): as ``reference``, but the share counts only where ``gate`` holds (see
      ``released_gate``) and it exceeds 0.1; elsewhere it is 0, so the term is 0.

    ``share`` of an invalid question is ignored (it may be NaN).
    """
    share = np.asarray(share, dtype=np.float64)
    repetition = np.asarray(repetition, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    if form == "paper":
        with np.errstate(invalid="ignore"):
            reward = np.maximum(0.0, uncertainty(share) - repetition)
        return np.where(valid, reward, 0.0)
    if form == "gated":
        if gate is None:
            raise ValueError("challenger_reward form 'gated' needs the gate (released_gate)")
        with np.errstate(invalid="ignore"):
            share = np.where(np.asarray(gate, dtype=bool) & (share > 0.1), share, 0.0)
        form = "reference"
    if form == "reference":
        with np.errstate(invalid="ignore"):
            closeness = np.minimum(share, 1.0 - share)
        return np.where(valid, closeness, -1.0) - repetition
    raise ValueError(
        f"unknown challenger reward form {form!r}; use 'paper', 'reference' or 'gated'"
    )
