"""Reading the final answer out of a response: the rule is a typed choice.

- ``"boxed"`` (the default, the paper's rule): the content of the last ``\\boxed{}``/``\\fbox{}``
  (or of an unbraced ``\\boxed 5``, read up to the next ``$``); no box, no answer.
- ``"flexible"``: the last box when there is one; otherwise the last ``#### X`` line
  (GSM8K's own format), otherwise the last answer phrase ("The answer is X", "Final answer:
  X"), otherwise the last number in the response: the way lm-evaluation-harness reports
  "strict-match" and "flexible-extract" for GSM8K, for models that do not box.
- ``"first_box"``: the released evaluation's reading (``evaluation/datasets_loader.py`` of
  Chengsong-Huang/R-Zero at 5699329): the FIRST ``\\boxed`` (any case), its content running to
  the last ``}`` on that line, nested or not; a box whose line holds no ``}`` is passed over
  with the rest of its line (the release's regex would still try a ``\\boxed`` there whose
  brace opens on the next line).

Every regex here runs in linear time (no nested or adjacent unbounded repeats) and captures
at most ``MAX_PHRASE`` characters, so a 100 kB response is read in milliseconds.
"""

from __future__ import annotations

import re
from typing import Literal

AnswerRule = Literal["boxed", "flexible", "first_box"]
ANSWER_RULES = ("boxed", "flexible", "first_box")
MAX_PHRASE = 200  # characters an answer phrase may hold
MAX_BOX_GAP = 60  # characters between two boxes of one several-box answer

_BOX_OPEN = re.compile(r"\\(?:boxed|fbox)\s*\{")
# "\boxed 5" without braces: read as hendrycks' MATH and Qwen2.5-Math's graders read it, up to
# the next "$" (or "\]", "\)", a line's end), at most MAX_PHRASE characters.
_BOX_UNBRACED = re.compile(r"\\boxed[ \t]+(?=[^\s{])")
_UNBRACED_CONTENT = re.compile(r"[^$\n]{1,200}?(?=\$|\\\]|\\\)|\n|\Z)")
_FIRST_BOX = re.compile(r"\\boxed\s*\{", re.IGNORECASE)
_BRACE = re.compile(r"\\.|[{}]", re.DOTALL)  # an escaped character, or a brace that counts
_HASHES = re.compile(r"####[ \t]{0,20}([^\n]{1,200})")  # 200: MAX_PHRASE
_PHRASE = re.compile(r"(?i:\banswer)[ \t*]{0,10}(?i:is|:|=)[ \t*:]{0,10}([^\n]{1,200})")
_HASHES_START = re.compile("####")
_PHRASE_START = re.compile(r"(?i:\banswer)")
_LAST_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_SEPARATOR = re.compile(r"[\s,;.$]|\\quad|\\qquad|\\text\{[^{}]{0,40}\}|and|&")


def _box_spans(text: str) -> list[tuple[int, int, int]]:
    """(start, content start, content end) of every closed box, in order; linear time."""
    spans, opened = [], []
    boxes = {m.end(): m.start() for m in _BOX_OPEN.finditer(text)}
    for token in _BRACE.finditer(text):
        brace = token.group()
        if brace == "{":
            opened.append(token.end() if token.end() in boxes else None)
        elif brace == "}" and opened:
            content = opened.pop()
            if content is not None:
                spans.append((boxes[content], content, token.start()))
    return spans  # in the order they close


def extract_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{…}`` or ``\\fbox{…}`` in ``text``.

    Braces nest (``\\boxed{\\frac{1}{2}}`` gives ``\\frac{1}{2}``) and escaped braces ``\\{``,
    ``\\}`` do not count. An unbraced ``\\boxed 5`` later than every braced box gives its text
    up to the next ``$`` (``_BOX_UNBRACED``). Trailing control spaces go (``185\\ ``).
    ``None`` when there is no box, the last box is never closed (a truncated generation), or it
    holds only whitespace. Linear time, no recursion.
    """
    last = unbraced = None
    for last in _BOX_OPEN.finditer(text or ""):  # noqa: B007 - keep the last match
        pass
    for unbraced in _BOX_UNBRACED.finditer(text or ""):  # noqa: B007 - keep the last match
        pass
    if unbraced is not None and (last is None or unbraced.start() > last.start()):
        content = _UNBRACED_CONTENT.match(text, unbraced.end())
        return (strip_control_spaces(content.group()) or None) if content else None
    if last is None:
        return None
    depth = 1
    for token in _BRACE.finditer(text, last.end()):
        brace = token.group()
        if brace == "{":
            depth += 1
        elif brace == "}":
            depth -= 1
            if depth == 0:
                return strip_control_spaces(text[last.end() : token.start()]) or None
    return None


def strip_control_spaces(text: str) -> str:
    """``text`` without outer whitespace, nor trailing control spaces ``\\ `` (``185\\ `` →
    ``185``; the row break ``\\\\`` is kept). Linear time."""
    text = text.strip()
    end = len(text)
    while end and text[end - 1] == "\\":
        run = end
        while run and text[run - 1] == "\\":
            run -= 1
        if (end - run) % 2 == 0:  # pairs: row breaks, not a control space
            break
        end -= 1
        while end and text[end - 1].isspace():
            end -= 1
    return text[:end]


def extract_boxes(text: str) -> list[str]:
    """The contents of the final run of boxes: ``\\boxed{1}, \\boxed{2} and \\boxed{3}``.

    The run ends with the last closed box and goes back over boxes separated only by commas,
    "and", ``\\quad``, a short ``\\text{…}`` or punctuation (at most ``MAX_BOX_GAP``
    characters). A response with one box gives a list of one.
    """
    spans = [s for s in _box_spans(text or "") if text[s[1] : s[2]].strip()]
    if not spans:
        return []
    run = [spans[-1]]
    for span in reversed(spans[:-1]):
        if span[2] > run[-1][0]:  # nested in the next box: not a separate one
            continue
        gap = text[span[2] + 1 : run[-1][0]]
        if len(gap) > MAX_BOX_GAP or _SEPARATOR.sub("", gap).strip():
            break
        run.append(span)
    return [text[s[1] : s[2]].strip() for s in reversed(run)]


def extract_first_box(text: str) -> str | None:
    """The ``first_box`` rule (module docstring): from the first ``\\boxed{`` whose line has a
    later ``}`` to the last ``}`` of that line, stripped; None when no box has one. Linear:
    a line without a ``}`` after one box has none after the next either."""
    at = 0
    while (opening := _FIRST_BOX.search(text, at)) is not None:
        start = opening.end()
        line_end = text.find("\n", start)
        line_end = len(text) if line_end < 0 else line_end
        close = text.rfind("}", start + 1, line_end)
        if close >= 0:
            return text[start:close].strip() or None
        at = line_end
    return None


def _clean(phrase: str) -> str | None:
    phrase = phrase.strip().strip("*").strip()
    if phrase.startswith("$") and phrase.count("$") >= 2:
        phrase = phrase[1 : phrase.index("$", 1)]
    phrase = phrase.rstrip(".").strip()
    return phrase or None


def extract_final(text: str | None, rule: AnswerRule = "boxed") -> str | None:
    """The final answer of a response under ``rule`` (module docstring), or None."""
    if rule not in ANSWER_RULES:
        raise ValueError(f"answer rule must be one of {ANSWER_RULES}, got {rule!r}")
    if not text:
        return None
    if rule == "first_box":
        return extract_first_box(text)
    boxed = extract_boxed(text)
    if boxed is not None or rule == "boxed":
        return boxed
    for pattern, start in ((_HASHES, _HASHES_START), (_PHRASE, _PHRASE_START)):
        # the last place the pattern matches; each try reads a bounded window, so it is linear
        for at in reversed([m.start() for m in start.finditer(text)]):
            found = pattern.match(text, at)
            if found is not None and (answer := _clean(found.group(1))) is not None:
                return answer
    number = None
    for number in _LAST_NUMBER.finditer(text):  # noqa: B007 - keep the last match
        pass
    return number.group().rstrip(",") if number is not None else None
