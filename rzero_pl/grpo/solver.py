"""SolverGRPO: the solver role, rewarded for agreeing with a question's label.

In the co-evolution the label is the pseudo-label of the curriculum (the majority vote of
the previous solver); with a labelled dataset it is the true answer. The reward is binary by
default: 1 when the completion's final answer (by default its last ``\\boxed{}``;
``answer_rule``) is equivalent to the label, else 0. ``format_weight`` w mixes in the released
code's format term: ``(1 - w) * correct + w * format`` (released: w = 0.1).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from rzero_pl.errors import check_number
from rzero_pl.grading.answers import ANSWER_TIMEOUT, matches_many
from rzero_pl.grading.extraction import AnswerRule, extract_final
from rzero_pl.grpo.module import GRPOModule
from rzero_pl.grpo.rollout import Rollout, Scores
from rzero_pl.models.actor import Actor
from rzero_pl.prompts import RolePrompt
from rzero_pl.rewards import SolverReading


def correctness_rewards(
    completions: Sequence[str],
    labels: Sequence[str | None],
    timeout: float = ANSWER_TIMEOUT,
    rule: AnswerRule = "boxed",
) -> tuple[list[str | None], list[float]]:
    """Extract each completion's final answer under ``rule``; 1.0 if it matches its label.

    The label is graded as a gold is (``rzero_pl.grading.answers.matches``: gold first, math-verify's
    asymmetric rule), whether it is true or a majority vote's.
    """
    answers = [extract_final(c, rule) for c in completions]
    matches = matches_many(list(zip(labels, answers, strict=True)), timeout=timeout)
    return answers, [1.0 if m else 0.0 for m in matches]


_TAG_CHAR = re.compile(r"([</>])")


def _drop_tag_spaces(text: str) -> str:
    """``re.sub(r"\\s*(<|>|/)\\s*", r"\\1", text)`` in linear time (that regex is quadratic on
    a long run of spaces): the whitespace next to ``<``, ``/`` and ``>`` goes."""
    parts = _TAG_CHAR.split(text)  # text, separator, text, ..., text
    for i in range(0, len(parts), 2):
        if i > 0:
            parts[i] = parts[i].lstrip()
        if i < len(parts) - 1:
            parts[i] = parts[i].rstrip()
    return "".join(parts)


def think_box_format(completion: str) -> float:
    """1.0 when ``completion`` is ``<think>…</think>`` then a ``\\boxed{…}``, else 0.0.

    The released solver's format term (Chengsong-Huang/R-Zero
    ``examples/reward_function/math.py`` at commit ``5699329``, ``format_reward``): the
    whitespace around ``<``, ``/`` and ``>`` is removed first, then the whole text must match
    ``<think>.*</think>.*\\boxed\\{.*\\}.*`` (dot matches newlines). Read here with ``find``
    (linear time): the text opens with ``<think>``, a ``</think>`` follows, then a
    ``\\boxed{`` and a ``}`` after it; the earliest of each is the most permissive choice.
    """
    text = _drop_tag_spaces(completion)
    if not text.startswith("<think>"):
        return 0.0
    close = text.find("</think>", len("<think>"))
    box = -1 if close < 0 else text.find("\\boxed{", close + len("</think>"))
    return 1.0 if box >= 0 and text.find("}", box + len("\\boxed{")) >= 0 else 0.0


def label_confidence_weights(
    shares: Sequence[float | None], power: float, floor: float = 0.0
) -> list[float]:
    """ADPO-style (Agent0, arXiv 2511.16043) advantage factors from each label's vote share.

    A pseudo-label that won ``share`` = p̂ of the votes is trusted in proportion to it:
    the factor is ``max(p̂, floor) ** power`` (``power`` 0: every factor 1). A question without
    a share (a labelled, true answer) gets 1.
    """
    return [1.0 if p is None else max(float(p), floor) ** power for p in shares]


class SolverGRPO(GRPOModule):
    """GRPO on questions with labels: reward 1 when the boxed answer matches the label.

    Args:
        actor: The shared policy and engine (None: handed over by the CLI, ``bind``).
        prompt: The solver prompt; null (the default): the model source's
            (``ModelSource.prompt``: rzero-pl's step-by-step prompt with a boxed answer, the
            toy model's own ``TOY_SOLVER``), taken when the actor is bound. Also the votes'.
        group_size: G, answers sampled per question (reference: 5).
        answer_timeout: Seconds allowed for one math-verify check: the run's one grading
            timeout, also the votes', the curriculum's and the evaluation's (``reading``).
        answer_rule: ``boxed`` (the paper's: the last ``\\boxed{}``) or ``flexible`` (a box,
            else ``#### X``, an answer phrase or the last number; for models that do not box,
            see ``rzero_pl.grading.extraction``).
        format_weight: w, the weight of the released code's format term
            (``think_box_format``): reward ``(1 - w) * correct + w * format``. 0 (the default,
            the paper's): the binary reward; the released code: 0.1.
        label_confidence: ADPO-style label-confidence weighting (off: None): each question's
            advantages are scaled by its label's vote share p̂ to this power
            (``label_confidence_weights``), so that doubtful pseudo-labels teach less than
            near-unanimous ones instead of equally within the band.
        **kwargs: Further GRPO settings (see ``GRPOModule``).
    """

    role = "solver"

    def __init__(
        self,
        actor: Actor | None = None,
        prompt: RolePrompt | None = None,
        group_size: int = 5,
        answer_timeout: float = ANSWER_TIMEOUT,
        answer_rule: AnswerRule = "boxed",
        format_weight: float = 0.0,
        label_confidence: float | None = None,
        **kwargs: Any,
    ) -> None:
        check_number("SolverGRPO.answer_timeout", answer_timeout, above=0)
        check_number("SolverGRPO.format_weight", format_weight, at_least=0, at_most=1)
        check_number(
            "SolverGRPO.label_confidence", label_confidence, above=0, at_most=16, optional=True
        )
        if prompt is not None:  # a question must reach the model (a prompt file may lack it)
            prompt.check_problem_slot("SolverGRPO.prompt")
        super().__init__(actor, prompt, group_size, **kwargs)
        self.answer_timeout = answer_timeout
        self.answer_rule = answer_rule
        self.format_weight = format_weight
        self.label_confidence = label_confidence

    def reading(self) -> SolverReading:
        """How this solver is asked and read: what the votes and the evaluation of the run
        are bound to (prompt, answer rule, grading timeout, budget)."""
        budget = self.sampling.max_new_tokens
        return SolverReading(self.prompt, self.answer_rule, self.answer_timeout, budget)

    def advantage_weights(self, items: Sequence[dict]) -> list[float] | None:
        if self.label_confidence is None:
            return None
        return label_confidence_weights([i.get("share") for i in items], self.label_confidence)

    def score(self, items: Sequence[dict], rollouts: list[Rollout]) -> Scores:
        labels = [items[r.group].get("answer") for r in rollouts]
        labels = [None if a is None else str(a) for a in labels]
        answers, correct = correctness_rewards(
            [r.completion for r in rollouts], labels, self.answer_timeout, self.answer_rule
        )
        terms = [
            {"correct": c, "answered": float(a is not None)}
            for a, c in zip(answers, correct, strict=True)
        ]
        rewards = list(correct)
        if self.format_weight:
            w = self.format_weight
            for k, r in enumerate(rollouts):
                terms[k]["format"] = think_box_format(r.completion)
                rewards[k] = (1 - w) * correct[k] + w * terms[k]["format"]
        return Scores(rewards=rewards, answers=answers, terms=terms)
