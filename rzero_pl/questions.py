"""Where labelled questions come from: JSONL files and the toy world.

A question is a dict with at least ``problem`` and ``answer`` (the label).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod

from rzero_pl.errors import MAX_QUESTION_CHARS
from rzero_pl.ground.io import iter_jsonl

MAX_FILE_BYTES = 1 << 28  # 256 MiB of questions: far beyond any curriculum's needs


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
        if not os.path.exists(path):
            raise FileNotFoundError(f"JsonlQuestions.path: no such file {path!r}")
        if not os.path.isfile(path):
            raise ValueError(f"JsonlQuestions.path: {path!r} is a folder, not a JSONL file")
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            raise ValueError(
                f"JsonlQuestions.path: {path} has {size} bytes, more than the {MAX_FILE_BYTES} "
                "a run holds in memory; split it or keep a subset"
            )
        self.load()  # every line checked now, before any model loads

    def load(self) -> list[dict]:
        questions = []
        for where, row in iter_jsonl(self.path, (self.problem_key, self.answer_key)):
            problem = str(row[self.problem_key])
            if len(problem) > MAX_QUESTION_CHARS:
                raise ValueError(
                    f"{where}: a question of {len(problem)} characters, more than "
                    f"{MAX_QUESTION_CHARS} (longer than a model's context); shorten or drop it"
                )
            questions.append({"problem": problem, "answer": str(row[self.answer_key])})
        if not questions:
            raise ValueError(f"{self.path}: no questions (an empty file)")
        return questions


class Truth(ABC):
    """Exact answers for a task that has them (the toy world): measures label accuracy."""

    @abstractmethod
    def check(self, question: str, label: str) -> bool | None:
        """Whether ``label`` is the true answer of ``question``; None when it cannot tell."""
