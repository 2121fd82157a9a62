"""MajorityVote: the challenger's uncertainty term from the solver's own votes."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import lightning as L
import numpy as np

from rzero_pl.answers import majority_votes
from rzero_pl.challenger import QuestionBatch, RewardCallback
from rzero_pl.engines.base import SamplingParams
from rzero_pl.errors import check_number
from rzero_pl.extraction import AnswerRule, extract_final
from rzero_pl.prompts import RolePrompt, solver_prompt
from rzero_pl.rewards import uncertainty


class MajorityVote(RewardCallback):
    """Ask the solver for m answers to every valid question; share p̂ → ``uncertainty``.

    Writes ``share`` (p̂: the largest cluster of equivalent answers ÷ m, unanswered votes
    counted) and ``uncertainty`` (``1 - 2|p̂ - 1/2|``) for every valid question.

    Args:
        votes: m, solver answers per question (reference: 10).
        temperature: Solver sampling temperature (reference: 1.0).
        top_p: Solver nucleus sampling (reference: 1.0).
        top_k: Solver top-k sampling (reference: 40).
        max_new_tokens: Longest solver answer.
        prompt: The solver prompt (default: the solver's standard prompt).
        timeout: Seconds allowed for one answer-equivalence check.
        band: The curriculum's band ``[share_min, share_max]``: ``vote/in_band`` is the
            fraction of valid questions whose share the curriculum would keep.
        answer_rule: How an answer is read (``rzero_pl.extraction``): ``boxed`` (the paper's:
            the last ``\\boxed{}``) or ``flexible`` (a box, else ``#### X``, an answer phrase,
            the last number); use the solver's ``answer_rule``.
    """

    term = "uncertainty"

    def __init__(
        self,
        votes: int = 10,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 40,
        max_new_tokens: int = 4096,
        prompt: RolePrompt | None = None,
        timeout: float = 5.0,
        band: tuple[float, float] = (0.3, 0.7),
        answer_rule: AnswerRule = "boxed",
    ) -> None:
        check_number("MajorityVote.votes (m)", votes, at_least=2)
        check_number("MajorityVote.max_new_tokens", max_new_tokens, at_least=1)
        check_number("MajorityVote.temperature", temperature, at_least=0)
        check_number("MajorityVote.top_p", top_p, above=0, at_most=1)
        check_number("MajorityVote.top_k", top_k)
        check_number("MajorityVote.timeout", timeout, above=0)
        self.votes = votes
        self.sampling = SamplingParams(
            n=votes,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            max_new_tokens=max_new_tokens,
        )
        if not 0 <= band[0] <= band[1] <= 1:
            raise ValueError(f"MajorityVote.band must satisfy 0 <= min <= max <= 1, got {band}")
        self.prompt = prompt or solver_prompt()
        self.timeout = timeout
        self.band = (float(band[0]), float(band[1]))
        self.answer_rule = answer_rule

    def score_batch(self, trainer: L.Trainer, module: Any, batch: QuestionBatch) -> None:
        start = time.perf_counter()
        index = [i for i, q in enumerate(batch.questions) if q is not None]
        share = np.full(len(batch.questions), np.nan)
        tok = module.policy.tokenizer
        prompts = [self.prompt.render(tok, problem=batch.questions[i]) for i in index]
        # Offset by the votes of lower ranks' valid questions: a vote's seed is the same on
        # any number of ranks. Called even without prompts: every rank joins the engine.
        before = sum(q is not None for q in batch.batch_questions[: batch.offset])
        params = replace(self.sampling, seed=module._rollout_seed() + 1 + before * self.votes)
        generations = module.engine.generate(prompts, role="solver", params=params)
        if index:
            rule = self.answer_rule
            answers = [[extract_final(c.text, rule) for c in g.completions] for g in generations]
            for i, vote in zip(index, majority_votes(answers, timeout=self.timeout), strict=True):
                share[i] = vote.share
            batch.metrics["vote/answered"] = float(
                np.mean([a is not None for group in answers for a in group])
            )
        batch.terms["share"] = share
        batch.terms["uncertainty"] = uncertainty(share)
        if index:
            batch.metrics["vote/share_mean"] = float(np.nanmean(share))
            kept = (share[index] >= self.band[0]) & (share[index] <= self.band[1])
            batch.metrics["vote/in_band"] = float(np.mean(kept))
        batch.metrics["vote/seconds"] = time.perf_counter() - start
