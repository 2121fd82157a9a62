"""Graders: is one response right, given the gold answer? Pure functions, one per kind.

* **math**: ``matches(gold, extract_final(response, rule))``: gold first, math-verify's
  asymmetric ``verify(gold, prediction)``. Under the default rule ``"boxed"`` the answer is the
  content of the *last* ``\\boxed{}``/``\\fbox{}`` (brace-balanced); no box = wrong. The
  reference took the *first* box, greedily up to the last ``}`` on its line (the released ``evaluation/generate.py``).
  A gold that is a list or set (``\\{1,2,3\\}``, ``(1,2),(3,4)``) also accepts one answer per
  box (``\\boxed{1}, \\boxed{2}, \\boxed{3}``). ``rule="flexible"`` falls back to ``#### X``,
  an answer phrase or the last number (``rzero_pl.grading.extraction``).
* **multiple choice**: the option letter (A-J), read by :func:`extract_choice` (a box, an answer
  phrase, or a reply that is only a letter); unreadable = wrong. ``reference_compat=True`` reads it the reference's way instead, random guess included.
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

from rzero_pl.benchmarks.registry import LETTERS, Benchmark, get_benchmark
from rzero_pl.grading.answers import ANSWER_TIMEOUT, matches_many
from rzero_pl.grading.extraction import AnswerRule, extract_boxed, extract_boxes, extract_final

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
# Linear time: every repeat is bounded or consumes one token per step, and no two adjacent
# repeats can take the same characters (the old form, ``\s*:?\s*(?:\*\*|\*)*\s*``, took cubic
# time on "answer is" and a long run of spaces).
_ANSWER_PHRASE = re.compile(
    r"(?i:\b(?:answer|option|choice)\*{0,3}\s{0,20}"
    r"(?:is|:|=|would\s{1,5}be|should\s{1,5}be|must\s{1,5}be)\s{0,20}(?::\s{0,20})?)"
    r"(?:(?:\*|\$|\\\(|\\text(?:bf)?\{|\\mathrm\{|\\mathbf\{)\s{0,5}){0,6}"
    r"(?i:(?:option|choice)\s{0,5})?"
    r"[(\[]?([A-J])\b(?!(?<=I)\s{1,20}[a-z])"
)
# A reply that is nothing but a letter: "D", "(D)", "D." (its wrappers peeled first).
_BARE_LETTER = re.compile(r"[(\[]?([A-J])[)\]]?\.?")
MAX_BOX_CHARS = 1000  # a box's content longer than this holds no option letter


def _unwrap(content: str) -> str:
    """``content`` without ``$``, ``**``, ``\\(…\\)``, ``\\text{…}``-style wrappers and an
    "Answer:" label, peeled until nothing changes."""
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
            return text


def _letter_in_box(content: str) -> str | None:
    if len(content) > MAX_BOX_CHARS:  # bounds the unwrapping loop
        return None
    text = _unwrap(content)
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
    3. Otherwise a reply that is only a letter: ``D``, ``(D)``, ``**D.**``.
    4. Otherwise ``None``: no random guess (the reference guessed; see
       :func:`extract_choice_reference`).
    """
    boxed = extract_boxed(response)
    if boxed is not None:
        letter = _letter_in_box(boxed)
        if letter is not None:
            return letter
    letters = [match.group(1) for match in _ANSWER_PHRASE.finditer(response)]
    if letters:
        return letters[-1]
    bare = _BARE_LETTER.fullmatch(_unwrap(response)) if len(response) <= MAX_BOX_CHARS else None
    return bare.group(1) if bare else None


def extract_choice_reference(
    response: str, rng: random.Random, n_options: int = len(LETTERS)
) -> str:
    """The released code's reading (its ``evaluation/eval_*.py`` scripts), for comparison only.

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


def math_candidates(response: str, gold: str, rule: AnswerRule = "boxed") -> list[str]:
    """The answers a math response offers for ``gold``: its final answer under ``rule`` and,
    when the gold is a list or set (it has a comma) and the response ends with several boxes,
    their contents joined by ", " (``\\boxed{1}, \\boxed{2}`` for ``\\{1,2\\}``)."""
    final = extract_final(response, rule)
    candidates = [] if final is None else [final]
    if "," in str(gold):
        boxes = extract_boxes(response)
        if len(boxes) >= 2:
            candidates.append(", ".join(boxes))
    return candidates


def grade_math(
    response: str, gold: str, timeout: float = ANSWER_TIMEOUT, rule: AnswerRule = "boxed"
) -> bool:
    """Right when an answer of the response matches the gold, gold first (no answer = wrong)."""
    return _grade_math_many([response], [gold], timeout, rule)[0]


def _grade_math_many(
    responses: Sequence[str], golds: Sequence[str], timeout: float, rule: AnswerRule
) -> list[bool]:
    pairs, owner = [], []
    for i, (response, gold) in enumerate(zip(responses, golds, strict=True)):
        for candidate in math_candidates(response, gold, rule):
            pairs.append((gold, candidate))
            owner.append(i)
    correct = [False] * len(responses)
    for i, verdict in zip(owner, matches_many(pairs, timeout=timeout), strict=True):
        correct[i] = correct[i] or verdict
    return correct


# ----------------------------------------------------------------------------- dispatch


def extract_answer(
    benchmark: str | Benchmark, response: str, rule: AnswerRule = "boxed"
) -> str | None:
    """What the grader reads from a response, for the samples file.

    Math: the final answer under ``rule`` (the last box's content by default). Multiple choice: the letter of :func:`extract_choice`.
    BBEH: the preprocessed prediction that the fuzzy rules compare (never ``None``).
    """
    kind = get_benchmark(benchmark).kind
    if kind == "multiple_choice":
        return extract_choice(response)
    boxed = extract_boxed(response)
    if kind == "bbeh":
        return bbeh_preprocess_sample(boxed if boxed is not None else response)
    return extract_final(response, rule)


def grade(
    benchmark: str | Benchmark,
    response: str,
    gold: str,
    timeout: float = ANSWER_TIMEOUT,
    reference_compat: bool = False,
    seed: int = 0,
    rule: AnswerRule = "boxed",
) -> bool:
    """Grade one response with the grader of the benchmark's kind."""
    return grade_many(benchmark, [response], [gold], timeout, reference_compat, seed, rule)[0]


def grade_many(
    benchmark: str | Benchmark,
    responses: Sequence[str],
    golds: Sequence[str],
    timeout: float = ANSWER_TIMEOUT,
    reference_compat: bool = False,
    seed: int = 0,
    rule: AnswerRule = "boxed",
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
        rule: Math only: how the final answer is read (``"boxed"``: the last box, the paper's
            rule; ``"flexible"``: falls back to ``#### X``, an answer phrase, the last number).
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
    return _grade_math_many(responses, golds, timeout, rule)
