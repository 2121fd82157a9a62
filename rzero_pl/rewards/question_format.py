"""The challenger's output format: a completion's question, or why it is malformed."""

from __future__ import annotations

import unicodedata
from typing import Literal

from rzero_pl.grading.answers import extract_boxed

_QUESTION_OPEN = "<question>"
_QUESTION_CLOSE = "</question>"


INVALID_REASONS = ("no_question", "empty_question", "several_questions", "no_answer")


class QuestionFormat:
    """How a challenger completion becomes a question, or why it is malformed.

    Args:
        blocks: ``last`` (the released code: the last ``<question>…</question>`` block, read
            as the regex ``<question>(.*?)</question>`` reads it) or ``single`` (exactly one
            block; two or more are malformed).
        require_answer: The completion must also hold a non-empty ``\\boxed{}`` (the
            challenger's own answer, anywhere in it): the released question generation
            requires it; its reward path effectively does not (a missing box becomes the
            string "None" there). The answer itself is never used: votes make the label.
    """

    def __init__(
        self, blocks: Literal["last", "single"] = "last", require_answer: bool = True
    ) -> None:
        if blocks not in ("last", "single"):
            raise ValueError(f"question_format.blocks must be 'last' or 'single', got {blocks!r}")
        self.blocks = blocks
        self.require_answer = require_answer

    def parse(self, text: str) -> tuple[str | None, str]:
        """``(question, "ok")``, or ``(None, reason)`` with a reason from ``INVALID_REASONS``."""
        found = question_blocks(text)
        if not found:
            return None, "no_question"
        if self.blocks == "single" and (
            len(found) > 1 or text.count(_QUESTION_OPEN) != 1 or text.count(_QUESTION_CLOSE) != 1
        ):
            return None, "several_questions"
        question = found[-1].strip()
        if not has_visible_text(question):
            return None, "empty_question"
        if self.require_answer:
            if extract_boxed(text) is None:
                return None, "no_answer"
        return question, "ok"


def question_blocks(text: str) -> list[str]:
    """The contents of every ``<question>…</question>`` block, in order (linear time).

    Read as ``re.findall(r"<question>(.*?)</question>", text, re.DOTALL)`` reads them: each
    opening tag is closed by the first closing tag after it.
    """
    found, at = [], 0
    while (start := text.find(_QUESTION_OPEN, at)) != -1:
        start += len(_QUESTION_OPEN)
        end = text.find(_QUESTION_CLOSE, start)
        if end == -1:
            break
        found.append(text[start:end])
        at = end + len(_QUESTION_CLOSE)
    return found


def has_visible_text(text: str) -> bool:
    """Whether ``text`` holds a character that shows: not whitespace, a separator, or an
    invisible control or format character (zero-width space, BOM, direction marks)."""
    return any(
        not ch.isspace() and unicodedata.category(ch) not in ("Cc", "Cf", "Zs", "Zl", "Zp")
        for ch in text
    )
