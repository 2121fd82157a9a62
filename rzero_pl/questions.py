"""Where labelled questions come from: JSONL files and the toy world.

A question is a dict with at least ``problem`` and ``answer`` (the label).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod

from rzero_pl.run.io import read_jsonl


class QuestionSource(ABC):
    """A finite list of labelled questions."""

    @abstractmethod
    def load(self) -> list[dict]:
        """Return the questions as dicts with ``problem`` and ``answer``."""


class JsonlQuestions(QuestionSource):
    """Questions from a JSONL file, one object per line.

    Args:
        path: The file.
        problem_key: Field holding the question text.
        answer_key: Field holding the label.
    """

    def __init__(self, path: str, problem_key: str = "problem", answer_key: str = "answer") -> None:
        self.path = path
        self.problem_key = problem_key
        self.answer_key = answer_key
        if os.path.isfile(path) and os.path.getsize(path) < 1 << 20:
            self.load()  # an empty or bad small file is refused now, before any model loads

    def load(self) -> list[dict]:
        rows = read_jsonl(self.path, (self.problem_key, self.answer_key))
        questions = [
            {"problem": str(row[self.problem_key]), "answer": str(row[self.answer_key])}
            for row in rows
        ]
        if not questions:
            raise ValueError(f"{self.path}: no questions (an empty file)")
        return questions


class Truth(ABC):
    """Exact answers for a task that has them (the toy world): measures label accuracy."""

    @abstractmethod
    def check(self, question: str, label: str) -> bool | None:
        """Whether ``label`` is the true answer of ``question``; None when it cannot tell."""
