"""Graders: is one response right, given the gold answer? Pure functions, one per kind.

* **math**: ``equivalent(extract_boxed(response), gold)``. The answer is the content of the
  *last* ``\\boxed{}``/``\\fbox{}`` (brace-balanced); no box = wrong. The reference took the
  *first* box, greedily up to the last ``}`` on its line (R-ZERO.md §6.1).
* **multiple choice**: the option letter (A-J), read by :func:`extract_choice`; unreadable =
  wrong. ``reference_compat=True`` reads it the reference's way instead, random guess included.
* **bbeh**: the last box's content (or the whole response when there is none), then the
  official BBEH ``preprocess_sample`` / ``preprocess_reference`` / ``fuzzy_match`` rules
  (google-deepmind/bbeh ``evaluate.py``), with one extension documented at :func:`grade_bbeh`.

:func:`grade_many` grades a whole benchmark; math goes through ``equivalent_many``, which
spreads math-verify over worker processes.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from rzero_pl.answers import equivalent, equivalent_many, extract_boxed
from rzero_pl.benchmarks.registry import LETTERS, Benchmark, get_benchmark

# ----------------------------------------------------------------------------- multiple choice

# LaTeX/markdown wrappers peeled off a box's content before the letter is read.
_WRAPPER = re.compile(
    r"^\\(?:text|textbf|textrm|texttt|textit|mathrm|mathbf|mathit|mathtt|boldsymbol|mbox)"
    r"\s*\{(.*)\}$",
    re.DOTALL,
)
_LABEL = re.compile(r"^(?i:option|choice|answer)\s*:?\s*")
# A letter, optionally in (…) or […], then the end, closing punctuation, or "C. text" /
# "C) text" / "C Heating". Not followed by a lower-case word ("I think", "A is"), not part of
# a word ("CH4").
_BOX_LETTER = re.compile(r"^[(\[]?\s*([A-J])\s*(?:$|[).:,\]\\]|\s+(?![a-z]))")
# Several letters in one box ("A, C", "B or D") is a hedge: unreadable.
_SEVERAL = re.compile(r"^[(\[]?[A-J][)\]]?(?:\s*(?:,|;|/|&|and|or)\s*[(\[]?[A-J][)\]]?)+\.?$")
# The fallback when no box gives a letter: the LAST "answer is (C)", "Answer: C",
# "final answer: C", "the correct option is C", "**Answer:** C", "answer would be C" …
# The letter must be a capital standing alone; "I" followed by a lower-case word is the pronoun.
_ANSWER_PHRASE = re.compile(
    r"(?i:\b(?:answer|option|choice)\**\s*(?:is|:|=|would\s+be|should\s+be|must\s+be)\s*:?)"
    r"\s*(?:\*\*|\*|\$|\\\(|\\text(?:bf)?\{|\\mathrm\{|\\mathbf\{)*\s*(?i:(?:option|choice)\s*)?"
    r"[(\[]?([A-J])\b(?!(?<=I)\s+[a-z])"
)


def _letter_in_box(content: str) -> str | None:
    text = content.strip()
    while True:
        before = text
        text = text.strip().strip("$").strip("*").strip()
        if text.startswith("\\(") and text.endswith("\\)"):
            text = text[2:-2]
        wrapped = _WRAPPER.match(text)
        if wrapped:
            text = wrapped.group(1)
        text = _LABEL.sub("", text)
        if text == before:
            break
    if _SEVERAL.match(text):
        return None
    match = _BOX_LETTER.match(text)
    return match.group(1) if match else None


def extract_choice(response: str) -> str | None:
    """The option letter a response gives, or ``None`` when it cannot be read.

    1. The last box: ``\\boxed{C}``, ``\\boxed{(C)}``, ``\\boxed{C. text}``,
       ``\\boxed{\\text{C}}``, ``\\boxed{\\textbf{(C)}}``, ``\\boxed{Option C}`` are all ``C``;
       several letters (``\\boxed{A, C}``) or option text without its letter are unreadable.
    2. Otherwise the last answer phrase: "The answer is (C)", "Answer: C", "final answer: C",
       "the correct option is **C**".
    3. Otherwise ``None``: no random guess (the reference guessed; see
       :func:`extract_choice_reference`).
    """
    boxed = extract_boxed(response)
    if boxed is not None:
        letter = _letter_in_box(boxed)
        if letter is not None:
            return letter
    letters = [match.group(1) for match in _ANSWER_PHRASE.finditer(response)]
    return letters[-1] if letters else None


def extract_choice_reference(
    response: str, rng: random.Random, n_options: int = len(LETTERS)
) -> str:
    """The reference's reading (R-ZERO.md §6.2), for comparison only.

    The first capital A-J inside the last box; else the first one after the last
    "Final Answer:" or "The answer is:"; else a letter drawn at random with ``rng``.
    """
    boxed = extract_boxed(response)
    if boxed is not None:
        found = re.search(r"[A-J]", boxed)
        if found:
            return found.group(0)
    for marker in ("Final Answer:", "The answer is:"):
        if marker in response:
            found = re.search(r"[A-J]", response.rsplit(marker, 1)[1])
            if found:
                return found.group(0)
    return rng.choice(LETTERS[:n_options])


def grade_multiple_choice(
    response: str, gold: str, reference_compat: bool = False, rng: random.Random | None = None
) -> bool:
    """Right when the letter read from the response is the gold letter."""
    if reference_compat:
        return extract_choice_reference(response, rng or random.Random(0)) == gold.strip()
    return extract_choice(response) == gold.strip()


# ----------------------------------------------------------------------------- BBEH
# The official rules (google-deepmind/bbeh, bbeh/evaluate.py), reimplemented.


def bbeh_strip_latex(response: str) -> str:
    """Drop ``$…$``, then a ``boxed{…}``, ``text{…}`` or ``texttt{…}`` wrapper ending the text."""
    if response.startswith("$") and response.endswith("$"):
        response = response[1:-1]
    for wrapper in ("boxed{", "text{", "texttt{"):
        if wrapper in response and response.endswith("}"):
            response = response[:-1].split(wrapper)[1]
    return response


def bbeh_extract_answer(sample: str) -> str:
    """The text after the last of the official answer prefixes, trailing ``.`` dropped."""
    for prefix in (
        "The answer is:",
        "The final answer is ",
        "The final answer is: ",
        "The answer is ",
    ):
        if prefix in sample:
            sample = sample.split(prefix)[-1].strip()
    return bbeh_strip_latex(sample.removesuffix("."))


def bbeh_preprocess_sample(sample: str) -> str:
    """Official: extract, lower-case, ``", "`` → ``","``, drop ``**``, first line, no final ``.``."""
    prediction = bbeh_extract_answer(sample.strip()).lower()
    prediction = prediction.replace(", ", ",").replace("**", "")
    prediction = prediction.split("\n")[0]
    return prediction.removesuffix(".")


def bbeh_preprocess_reference(reference: str) -> str:
    """Official: strip, lower-case, ``", "`` → ``","``."""
    return reference.strip().lower().replace(", ", ",")


def bbeh_fuzzy_match(prediction: str, reference: str) -> bool:
    """Official: equal; ``(a)`` vs ``a``; equal as floats; equal without ``'``; one is the
    other in ``[…]``; the prediction is the reference plus ``?``."""
    if prediction == reference:
        return True
    if len(prediction) == 3 and prediction[0] == "(" and prediction[-1] == ")":
        return prediction[1] == reference
    if len(reference) == 3 and reference[0] == "(" and reference[-1] == ")":
        return reference[1] == prediction
    try:
        if float(prediction) == float(reference):
            return True
    except ValueError:
        pass
    if prediction.replace("'", "") == reference.replace("'", ""):
        return True
    if f"[{reference}]" == prediction or f"[{prediction}]" == reference:
        return True
    return prediction.endswith("?") and prediction[:-1] == reference


def grade_bbeh(response: str, gold: str) -> bool:
    """BBEH: the last box's content (the whole response without one), official rules.

    Extension: a reference ending in ``.`` also matches without it. The official
    preprocessing drops a final ``.`` from the prediction but not from the reference, so a
    verbatim "He really cried." would otherwise be wrong.
    """
    boxed = extract_boxed(response)
    prediction = bbeh_preprocess_sample(boxed if boxed is not None else response)
    reference = bbeh_preprocess_reference(gold)
    if bbeh_fuzzy_match(prediction, reference):
        return True
    return reference.endswith(".") and bbeh_fuzzy_match(prediction, reference[:-1])


# ----------------------------------------------------------------------------- math


def grade_math(response: str, gold: str, timeout: float = 5.0) -> bool:
    """Right when the last box's content is math-equivalent to the gold (no box = wrong)."""
    predicted = extract_boxed(response)
    return predicted is not None and equivalent(predicted, gold, timeout=timeout)


# ----------------------------------------------------------------------------- dispatch


def extract_answer(benchmark: str | Benchmark, response: str) -> str | None:
    """What the grader reads from a response, for the samples file.

    Math: the last box's content. Multiple choice: the letter of :func:`extract_choice`.
    BBEH: the preprocessed prediction that the fuzzy rules compare (never ``None``).
    """
    kind = get_benchmark(benchmark).kind
    if kind == "multiple_choice":
        return extract_choice(response)
    boxed = extract_boxed(response)
    if kind == "bbeh":
        return bbeh_preprocess_sample(boxed if boxed is not None else response)
    return boxed


def grade(
    benchmark: str | Benchmark,
    response: str,
    gold: str,
    timeout: float = 5.0,
    reference_compat: bool = False,
    seed: int = 0,
) -> bool:
    """Grade one response with the grader of the benchmark's kind."""
    return grade_many(benchmark, [response], [gold], timeout, reference_compat, seed)[0]


def grade_many(
    benchmark: str | Benchmark,
    responses: Sequence[str],
    golds: Sequence[str],
    timeout: float = 5.0,
    reference_compat: bool = False,
    seed: int = 0,
) -> list[bool]:
    """Grade ``responses[i]`` against ``golds[i]`` for all ``i``.

    Args:
        benchmark: A registered name or a :class:`Benchmark`; its kind picks the grader.
        responses: Model outputs (the solver's full text).
        golds: Gold answers, one per response (repeat a problem's gold for its k samples).
        timeout: Seconds per math-verify comparison (math only).
        reference_compat: Multiple choice only: read letters the reference's way, guessing
            at random (one ``random.Random(seed)`` over the list, in order) when unreadable.
        seed: Seed of those guesses.
    """
    if len(responses) != len(golds):
        raise ValueError(f"{len(responses)} responses but {len(golds)} golds")
    kind = get_benchmark(benchmark).kind
    if kind == "multiple_choice":
        rng = random.Random(seed)
        return [
            grade_multiple_choice(r, g, reference_compat, rng)
            for r, g in zip(responses, golds, strict=True)
        ]
    if kind == "bbeh":
        return [grade_bbeh(r, g) for r, g in zip(responses, golds, strict=True)]
    predicted = [extract_boxed(r) for r in responses]
    boxed = [i for i, p in enumerate(predicted) if p is not None]
    verdicts = equivalent_many([(predicted[i], golds[i]) for i in boxed], timeout=timeout)
    correct = [False] * len(responses)
    for i, verdict in zip(boxed, verdicts, strict=True):
        correct[i] = bool(verdict)
    return correct
