"""The toy world as the trainers see it: labelled questions and exact truth (the ``toy``
benchmark, 500 held-out problems with the toy solver prompt, is listed in
``rzero_pl.benchmarks.registry``)."""

from __future__ import annotations

from collections.abc import Sequence

from rzero_pl.errors import check_number
from rzero_pl.questions import QuestionSource, Truth
from rzero_pl.toy.arithmetic import DEFAULT_MIX, grade, question_expression
from rzero_pl.toy.benchmark import toy_questions
from rzero_pl.toy.expression import evaluate_expression


class ToyQuestions(QuestionSource):
    """Toy arithmetic questions with their true answers (never in the toy benchmark).

    Args:
        n: Number of distinct questions.
        seed: Seed of the generator.
        levels: Weights of difficulty levels L1..L5.
    """

    def __init__(self, n: int = 2000, seed: int = 0, levels: Sequence[float] = DEFAULT_MIX) -> None:
        check_number("ToyQuestions.n", n, at_least=1)
        self.n = n
        self.seed = seed
        self.levels = tuple(levels)

    def load(self) -> list[dict]:
        return [
            {"problem": r["problem"], "answer": r["answer"], "level": r["extra"]["level"]}
            for r in toy_questions(self.n, self.seed, self.levels)
        ]


class ToyTruth(Truth):
    """The exact answer of a toy question, computed by the toy world's parser."""

    def check(self, question: str, label: str) -> bool | None:
        value = evaluate_expression(question_expression(question))
        return None if value is None else grade(label, value)
