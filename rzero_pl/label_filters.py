"""Label filters: rules beyond the band that drop a candidate whose pseudo-label is doubtful.

The band keeps questions whose majority won between 30 % and 70 % of the votes; inside it the
majority label is often wrong (a third of the kept toy labels). A filter looks at more than
the winning share and drops the candidates it doubts; ``Curriculum(label_filters=[…])`` runs
them, in order, on every candidate the band would keep, and the first that refuses names the
reason in ``questions.jsonl``. Measured on the toy world in ``bench/RESULTS.md`` ("Label
quality").

- ``MarginRule``: the winning cluster must lead the runner-up by ``min_margin`` of the votes
  (a 4-3-3 split of 10 wins with 0.4 but leads by only 0.1).
- ``GreedyAgreement``: the solver's greedy answer must match the label (one extra greedy
  generation per candidate in the band).

``TextFilters`` are the curriculum's rules on the text itself (``Curriculum.text_filters``),
checked before the band: a question that asks for a proof or mentions a box, a label with
text markup. Their two typed options give either rzero-pl's rule or the released code's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from rzero_pl.errors import check_number
from rzero_pl.grading.votes import Vote

# rzero-pl's proof rule: English words as whole words in any case, or the Chinese word.
PROOF_WORDS = re.compile(r"\bprove\b|\bproof\b|\bshow that\b|证明", re.IGNORECASE)
RELEASED_PROOF = "证明"  # "proof": the released rule's only word


@dataclass(frozen=True)
class TextFilters:
    """The curriculum's filters on a candidate's text (``Curriculum.text_filters``).

    The released rule (``question_evaluate/evaluate.py`` of Chengsong-Huang/R-Zero at
    5699329) drops a question holding the Chinese word for proof, a question holding "box"
    in any case, and a label holding "text" in any case.

    Args:
        proof: ``words``: the question says prove, proof or show that (whole words, any
            case) or the Chinese word; ``release``: only the Chinese word, as released.
        text_label: ``latex_text``: the label holds ``\\text`` (that case); ``release``:
            it holds "text" in any case (also ``\\textbf``, ``\\TEXT``, "context"), as released.
    """

    proof: Literal["words", "release"] = "words"
    text_label: Literal["latex_text", "release"] = "latex_text"

    def asks_for_proof(self, question: str) -> bool:
        if self.proof == "release":
            return RELEASED_PROOF in question
        return PROOF_WORDS.search(question) is not None

    def mentions_box(self, question: str) -> bool:
        return "box" in question.lower()

    def has_text(self, label: str) -> bool:
        if self.text_label == "release":
            return "text" in label.lower()
        return "\\text" in label


def vote_margin(vote: Vote) -> float:
    """(winning cluster − runner-up cluster) ÷ m; the winner's share when it stands alone."""
    counts = sorted((count for _, count in vote.clusters), reverse=True)
    if not counts or vote.num_answers == 0:
        return 0.0
    second = counts[1] if len(counts) > 1 else 0
    return (counts[0] - second) / vote.num_answers


class LabelFilter:
    """A rule on a voted candidate inside the band: keep its label, or drop it as ``reason``."""

    reason = "filtered"
    needs_greedy = False  # whether ``keeps`` reads the solver's greedy answer

    def keeps(self, vote: Vote, greedy_agrees: bool | None) -> bool:
        raise NotImplementedError


class MarginRule(LabelFilter):
    """Keep a label only when its cluster leads the runner-up by ``min_margin`` of the votes.

    Args:
        min_margin: The smallest lead, as a fraction of m (0.2: two votes of ten).
    """

    reason = "low_margin"

    def __init__(self, min_margin: float = 0.2) -> None:
        check_number("MarginRule.min_margin", min_margin, at_least=0, at_most=1)
        self.min_margin = min_margin

    def keeps(self, vote: Vote, greedy_agrees: bool | None) -> bool:
        return vote_margin(vote) >= self.min_margin - 1e-12


class GreedyAgreement(LabelFilter):
    """Keep a label only when the solver's greedy (temperature 0) answer matches it."""

    reason = "greedy_disagrees"
    needs_greedy = True

    def keeps(self, vote: Vote, greedy_agrees: bool | None) -> bool:
        return bool(greedy_agrees)
