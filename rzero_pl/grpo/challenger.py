"""ChallengerGRPO: the challenger role, rewarded for questions at the solver's edge.

A rollout step, in order (``GRPOModule.rollout`` samples G questions per prompt slot and
calls ``score``):

1. ``QuestionFormat.parse``: each completion's question, or why it is malformed
   (``challenger/invalid_reason/<reason>``);
2. ``gather_lists``: every rank's questions (the repetition term is batch-wide);
3. ``MajorityVote.shares``: m solver answers per valid question, p̂ per question;
4. ``RepetitionPenalty.score``: BLEU clusters of the whole batch;
5. ``challenger_reward``: the terms combined into each rollout's reward.

The vote is handed over with the actor (``bind``): it is the curriculum's, bound to the
solver's prompt and answer rule. Nothing here reaches back into a trainer or a callback.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from jsonargparse import lazy_instance

from rzero_pl.grading.extraction import extract_boxed
from rzero_pl.grpo.module import GRPOModule
from rzero_pl.grpo.rollout import Rollout, Scores
from rzero_pl.models.actor import Actor
from rzero_pl.prompts import RolePrompt
from rzero_pl.rewards import (
    INVALID_REASONS,
    MajorityVote,
    QuestionFormat,
    RepetitionPenalty,
    challenger_reward,
    released_gate,
    uncertainty,
)
from rzero_pl.scale.distributed import gather_lists

# Stateless, so one shared default serves every challenger (jsonargparse prints its settings).
DEFAULT_REPETITION = lazy_instance(RepetitionPenalty)


class ChallengerGRPO(GRPOModule):
    """GRPO for the challenger: questions whose solver vote share is near one half.

    Args:
        actor: The shared policy and engine (None: handed over by ``bind``).
        prompt: The challenger prompt (asks for ``<question>…</question>`` then ``\\boxed{}``);
            null (the default): the model source's (``ModelSource.prompt``), taken when bound.
        group_size: G, questions sampled per prompt slot (reference: 4).
        reward_form: ``paper``: ``max(0, uncertainty - repetition)``, malformed → 0;
            ``reference`` (released code): ``min(p, 1-p) - repetition``, malformed → -1;
            ``gated`` (released code before its commit ``9409808``, the form behind the
            published tables): as ``reference``, but p̂ counts only when the solver's
            majority answer equals the last character of the challenger's own boxed answer
            and p̂ > 0.1, else 0 (``rzero_pl.rewards.released_gate``); with the vote's
            ``missing_cluster: true`` the majority is the release's ("None" can win).
        question_format: What counts as a well-formed question (default: the released
            code's rules, see ``rzero_pl.rewards.QuestionFormat``).
        repetition: The repetition term (None: no penalty, an ablation).
        **kwargs: Further GRPO settings (see ``GRPOModule``).
    """

    role = "challenger"

    def __init__(
        self,
        actor: Actor | None = None,
        prompt: RolePrompt | None = None,
        group_size: int = 4,
        reward_form: Literal["paper", "reference", "gated"] = "paper",
        question_format: QuestionFormat | None = None,
        repetition: RepetitionPenalty | None = DEFAULT_REPETITION,
        **kwargs: Any,
    ) -> None:
        super().__init__(actor, prompt, group_size, **kwargs)
        self.reward_form = reward_form
        self.question_format = question_format or QuestionFormat()
        self.repetition = repetition
        self.vote: MajorityVote | None = None

    def bind(self, actor: Actor, vote: MajorityVote | None = None) -> None:
        """Train ``actor``'s challenger; score its questions with ``vote`` (the solver's)."""
        super().bind(actor)
        if vote is not None:
            self.vote = vote

    def on_fit_start(self) -> None:
        if self.vote is None:
            raise ValueError("ChallengerGRPO has no MajorityVote: bind(actor, vote) first")

    def score(self, items: Sequence[dict], rollouts: list[Rollout]) -> Scores:
        parsed = [self.question_format.parse(r.completion) for r in rollouts]
        questions = [question for question, _ in parsed]
        everyone, offset = gather_lists(questions)
        before = sum(q is not None for q in everyone[:offset])
        seed = self._rollout_seed() + 1
        share, labels, metrics = self.vote.shares(questions, before, self.actor, seed)
        n = len(rollouts)
        valid = np.array([q is not None for q in questions], dtype=bool)
        terms = {"share": share, "uncertainty": uncertainty(share), "format": valid * 1.0}
        terms["repetition"] = np.zeros(n)
        if self.repetition is not None:
            terms["repetition"], extra = self.repetition.score(everyone, offset, n)
            metrics.update(extra)
        gate = None
        if self.reward_form == "gated":
            gate = released_gate(labels, [extract_boxed(r.completion) for r in rollouts])
            terms["gate"] = gate * 1.0
        rewards = challenger_reward(share, terms["repetition"], valid, self.reward_form, gate)
        for reason in INVALID_REASONS:
            metrics[f"invalid_reason/{reason}"] = sum(w == reason for _, w in parsed) / max(n, 1)
        return Scores(
            rewards=[float(x) for x in rewards],
            answers=questions,
            terms=[
                {k: float(v[i]) for k, v in terms.items() if not np.isnan(v[i])} for i in range(n)
            ],
            metrics={"valid_fraction": float(valid.mean()) if n else 0.0, **metrics},
        )
