"""ChallengerGRPO: the challenger role, rewarded for questions at the solver's edge.

Each rollout step samples G questions per prompt slot. The format check
(``QuestionFormat``; default as the released code: the last ``<question>`` block, and the
challenger's own ``\\boxed{}`` answer required) keeps the well-formed ones and logs how often
each rule fired (``challenger/invalid_reason/<reason>``). Then, at one visible point, every reward
callback in the trainer scores the whole batch through ``RewardCallback.score_batch``:
``MajorityVote`` writes each question's vote share (the ``uncertainty`` term) and
``RepetitionPenalty`` its BLEU-cluster penalty. The terms are combined by
``rzero_pl.rewards.challenger_reward``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import lightning as L
import numpy as np

from rzero_pl.distributed import gather_lists
from rzero_pl.engines.base import Engine, Generation
from rzero_pl.grpo_module import GRPOModule
from rzero_pl.policy import Policy
from rzero_pl.prompts import RolePrompt, challenger_prompt
from rzero_pl.rewards import INVALID_REASONS, QuestionFormat, challenger_reward
from rzero_pl.rollout import Rollout


@dataclass
class QuestionBatch:
    """One rollout step's questions, as the reward callbacks see them.

    ``questions[i]`` is the parsed question of this rank's rollout ``i`` (None when
    malformed). Callbacks write per-rollout arrays for these rollouts into ``terms``
    (``share``, ``uncertainty``, ``repetition``…). ``batch_questions`` is the whole rollout
    batch across ranks (``questions`` on one process) and ``offset`` the position of
    ``questions[0]`` in it, for terms whose statistic is batch-wide.
    """

    questions: list[str | None]
    completions: list[str]
    terms: dict[str, np.ndarray] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # logged under challenger/
    batch_questions: list[str | None] | None = None
    offset: int = 0

    def __post_init__(self) -> None:
        if self.batch_questions is None:
            self.batch_questions = list(self.questions)

    @property
    def valid(self) -> np.ndarray:
        return np.array([q is not None for q in self.questions], dtype=bool)


class RewardCallback(L.Callback):
    """A challenger reward term. ``term`` names what ``score_batch`` writes."""

    term: str = ""

    def score_batch(self, trainer: L.Trainer, module: ChallengerGRPO, batch: QuestionBatch) -> None:
        """Write ``batch.terms[self.term]`` (one value per rollout) and ``batch.metrics``."""
        raise NotImplementedError


class ChallengerGRPO(GRPOModule):
    """GRPO for the challenger: questions whose solver vote share is near one half.

    Args:
        policy: The shared base model and role weights (None: bound by the evolution).
        engine: The generation backend (None: bound by the evolution).
        prompt: The challenger prompt (asks for ``<question>…</question>`` then ``\\boxed{}``).
        group_size: G, questions sampled per prompt slot (reference: 4).
        reward_form: ``paper``: ``max(0, uncertainty - repetition)``, malformed → 0;
            ``reference`` (released code): ``min(p, 1-p) - repetition``, malformed → -1.
        question_format: What counts as a well-formed question (default: the released
            code's rules, see ``rzero_pl.rewards.QuestionFormat``).
        **kwargs: Further GRPO settings (see ``GRPOModule``).
    """

    role = "challenger"

    def __init__(
        self,
        policy: Policy | None = None,
        engine: Engine | None = None,
        prompt: RolePrompt | None = None,
        group_size: int = 4,
        reward_form: Literal["paper", "reference"] = "paper",
        question_format: QuestionFormat | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(policy, engine, prompt or challenger_prompt(), group_size, **kwargs)
        self.reward_form = reward_form
        self.question_format = question_format or QuestionFormat()

    def reward_callbacks(self) -> list[RewardCallback]:
        return [cb for cb in self.trainer.callbacks if isinstance(cb, RewardCallback)]

    def on_fit_start(self) -> None:
        terms = {cb.term for cb in self.reward_callbacks()}
        if "uncertainty" not in terms:
            raise ValueError(
                "ChallengerGRPO needs an uncertainty reward: add "
                "rzero_pl.callbacks.majority_vote.MajorityVote to trainer.callbacks"
            )

    def score(
        self, items: Sequence[dict], generations: list[Generation], rollouts: list[Rollout]
    ) -> dict[str, float]:
        completions = [r.completion for r in rollouts]
        parsed = [self.question_format.parse(c) for c in completions]
        questions = [question for question, _ in parsed]
        everyone, offset = gather_lists(questions)  # the repetition penalty needs all ranks'
        batch = QuestionBatch(questions, completions, batch_questions=everyone, offset=offset)
        for callback in self.reward_callbacks():
            callback.score_batch(self._trainer, self, batch)
        n = len(rollouts)
        share = batch.terms.get("share", np.full(n, np.nan))
        repetition = batch.terms.get("repetition", np.zeros(n))
        rewards = challenger_reward(share, repetition, batch.valid, form=self.reward_form)
        batch.terms["format"] = batch.valid.astype(np.float64)
        for i, r in enumerate(rollouts):
            r.answer = batch.questions[i]
            r.terms = {k: float(v[i]) for k, v in batch.terms.items() if not np.isnan(v[i])}
            r.reward = float(rewards[i])
        reasons = {
            f"invalid_reason/{reason}": sum(why == reason for _, why in parsed) / max(n, 1)
            for reason in INVALID_REASONS
        }
        return {"valid_fraction": float(batch.valid.mean()), **reasons, **batch.metrics}
