"""The solver's majority vote on a question, and the challenger's ``uncertainty`` term.

One ``MajorityVote`` serves twice per iteration with the same settings: it scores the
challenger's questions (the share p̂ becomes the ``uncertainty`` reward) and it labels the
curriculum's candidates (the winning answer is the pseudo-label, the band decides what is
kept), unless ``evolution.label_vote`` gives the labels their own (the released code's
m = 9 and band [0.3, 0.8] against the reward's m = 10). The solver reads the answers: its
prompt, answer rule, timeout and budget (a ``SolverReading``) are handed over by ``bound_to``
and are never configured a second time; an unbound vote refuses to vote.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rzero_pl.engines.base import SamplingParams
from rzero_pl.errors import MAX_SAMPLES, check_number
from rzero_pl.grading.answers import ANSWER_TIMEOUT
from rzero_pl.grading.extraction import AnswerRule, extract_final
from rzero_pl.grading.verify_pool import shared_pool
from rzero_pl.grading.votes import Vote, majority_votes
from rzero_pl.progress import Progress
from rzero_pl.prompts import RolePrompt
from rzero_pl.rewards.sampling import RoleSampling

UNBOUND = (
    "MajorityVote is not bound to a solver: use vote.bound_to(solver.reading()) "
    "(the evolution binds its votes itself)"
)


@dataclass(frozen=True)
class SolverReading:
    """How the solver is asked a question and how its answers are read: what a vote and an
    evaluation need from the solver module (``SolverGRPO.reading``), handed over by
    ``MajorityVote.bound_to`` and ``Evaluation.bound_to``. ``timeout`` is the run's one grading
    timeout (``SolverGRPO.answer_timeout``); ``max_new_tokens`` the solver's budget (its
    ``sampling.max_new_tokens``; None: not known, so a vote must set its own)."""

    prompt: RolePrompt
    answer_rule: AnswerRule = "boxed"
    timeout: float = ANSWER_TIMEOUT
    max_new_tokens: int | None = None


def uncertainty(share: float | np.ndarray) -> float | np.ndarray:
    """The paper's uncertainty reward ``1 - 2 |share - 1/2|``: 1 at share 1/2, 0 at 0 and 1.

    ``share`` (p̂) is the size of the largest cluster of equivalent answers over all m votes.
    A vote without an answer (no ``\\boxed{}``) counts in m but joins no cluster: it is a
    solver that could not answer, not an answer. The released code instead reads it as the
    string "None", which clusters with the other unanswered votes: with m = 10, 5 unanswered
    votes and 5 distinct answers give p̂ = 0.5 there (the "None" cluster wins; reward 1, the
    best possible) but 0.1 here (reward 0.2). Ours does not reward a question for being one
    the solver cannot answer, and such a question could not be kept anyway (the released
    filter drops the label "None"). ``MajorityVote(missing_cluster=True)`` votes as the release.
    """
    return 1.0 - 2.0 * np.abs(np.asarray(share, dtype=np.float64) - 0.5)


class MajorityVote:
    """m solver answers per question; the largest cluster of equivalent answers wins.

    Args:
        samples: m, solver answers sampled per question (paper: 10; released code: 9).
        sampling: How the votes are sampled (reference: T 1.0, top-p 1.0, top-k 40); its
            ``n`` is replaced by ``samples``; ``max_new_tokens`` null (the default): the
            solver's budget, handed over with its reading by ``bound_to``.
        band: ``[share_min, share_max]``: the shares the curriculum keeps; the challenger
            logs the fraction of its questions inside it (``vote/in_band``).
        missing_cluster: Unanswered votes form a cluster of their own, as the released code's
            "None" answer does (``rzero_pl.grading.votes.majority_votes``): 6 unanswered and
            4 × "7" give label None (the curriculum drops it) and p̂ 0.6, where the default
            gives label "7" and p̂ 0.4 (see ``uncertainty``).
    """

    def __init__(
        self,
        samples: int = 10,
        sampling: RoleSampling | None = None,
        band: tuple[float, float] = (0.3, 0.7),
        missing_cluster: bool = False,
    ) -> None:
        check_number("MajorityVote.samples (m)", samples, at_least=2, at_most=MAX_SAMPLES)
        if not 0 <= band[0] <= band[1] <= 1:
            raise ValueError(f"MajorityVote.band must satisfy 0 <= min <= max <= 1, got {band}")
        self.samples = samples
        self.settings = replace(RoleSampling.of(sampling or RoleSampling(top_k=40)), n=samples)
        self.band = (float(band[0]), float(band[1]))
        self.missing_cluster = missing_cluster
        self._reading: SolverReading | None = None  # set on the copy ``bound_to`` returns
        self._sampling: SamplingParams | None = None  # likewise: with the budget resolved

    def bound_to(self, reading: SolverReading) -> MajorityVote:
        """A copy that asks and reads as the solver does (its prompt, rule, timeout and, where
        ``sampling`` sets none, its budget)."""
        bound = copy.copy(self)
        bound._sampling = self.settings.with_budget(reading.max_new_tokens, "MajorityVote.sampling")
        bound._reading = reading
        return bound

    @property
    def sampling(self) -> SamplingParams:
        """How the votes are sampled, with the solver's budget where none was set (bound)."""
        if self._sampling is None:
            raise ValueError(UNBOUND)
        return self._sampling

    @property
    def reading(self) -> SolverReading:
        """The solver's reading this vote was bound to (one line when it was not)."""
        if self._reading is None:
            raise ValueError(UNBOUND)
        return self._reading

    @property
    def timeout(self) -> float:
        """Seconds one answer comparison may take (the solver's ``answer_timeout``)."""
        return self.reading.timeout

    def in_band(self, share: np.ndarray) -> np.ndarray:
        return (share >= self.band[0]) & (share <= self.band[1])

    def vote(
        self, questions: Sequence[str], actor: Any, seed: int
    ) -> tuple[list[Vote], list[list[str | None]]]:
        """Each question's ``Vote`` and its m answers (a collective: every rank calls it).

        Vote ``k`` of question ``j`` is seeded ``seed + j * m + k``: callers offset ``seed``
        by the votes of lower ranks, so a vote does not depend on the number of ranks.
        """
        reading = self.reading
        prompts = [reading.prompt.render(actor.tokenizer, problem=q) for q in questions]
        params = replace(self.sampling, seed=seed)
        if questions:  # the grading workers start while the votes are sampled, not after
            shared_pool().start()
        generations = actor.generate(prompts, role="solver", params=params)
        rule = reading.answer_rule
        answers = [[extract_final(c.text, rule) for c in g.completions] for g in generations]
        votes = majority_votes(answers, timeout=self.timeout, missing_cluster=self.missing_cluster)
        return votes, answers

    def greedy(self, questions: Sequence[str], actor: Any) -> list[str | None]:
        """The solver's greedy (temperature 0) answer to each question (a collective)."""
        reading = self.reading
        prompts = [reading.prompt.render(actor.tokenizer, problem=q) for q in questions]
        params = replace(self.sampling, n=1, temperature=0.0, seed=0)
        generations = actor.generate(prompts, role="solver", params=params)
        return [extract_final(g.completions[0].text, reading.answer_rule) for g in generations]

    def shares(
        self, questions: Sequence[str | None], before: int, actor: Any, seed: int
    ) -> tuple[np.ndarray, list[str | None], dict[str, float]]:
        """p̂ of every valid question (NaN for a malformed one), its majority answer (None for a
        malformed one) and the ``vote/`` metrics.

        ``before`` counts the valid questions of lower ranks (their votes come first).
        """
        start = time.perf_counter()
        index = [i for i, q in enumerate(questions) if q is not None]
        share = np.full(len(questions), np.nan)
        labels: list[str | None] = [None] * len(questions)
        seed += before * self.samples
        with Progress(len(index), "challenger's votes", "questions", per=self.samples):
            votes, answers = self.vote([questions[i] for i in index], actor, seed)
        metrics: dict[str, float] = {}
        if index:
            share[index] = [v.share for v in votes]
            for i, v in zip(index, votes, strict=True):
                labels[i] = v.label
            answered = [a is not None for group in answers for a in group]
            metrics["vote/answered"] = float(np.mean(answered))
            metrics["vote/share_mean"] = float(np.mean(share[index]))
            metrics["vote/in_band"] = float(np.mean(self.in_band(share[index])))
        metrics["vote/seconds"] = time.perf_counter() - start
        return share, labels, metrics
