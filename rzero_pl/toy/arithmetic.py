"""The toy arithmetic world: questions with a difficulty knob, worked solutions, an exact grader.

Everything here is integer arithmetic over ``+ - *`` and parentheses, so the truth of every
question is known. Expressions are parsed by ``rzero_pl.toy.expression`` (never ``eval``),
which refuses long, deep or huge inputs instead of computing them.

A question reads ``What is 12 + 7 * (5 - 2)?`` (spaces around binary operators, so that a
whitespace split gives one word per number or operator). Its solution works one operation at a
time, innermost and leftmost first: ``5-2=3, 7*3=21, 12+21=33. \\boxed{33}`` (the terse
``steps`` style), or rewrites the whole expression after each operation:
``12+7*(5-2)=12+7*3=12+21=33. \\boxed{33}`` (the careful ``rewrite`` style).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from rzero_pl.toy.expression import MAX_LITERAL_DIGITS, Node, parse_expression

QUESTION_PREFIX = "What is "
QUESTION_SUFFIX = "?"


@dataclass(frozen=True)
class Level:
    """One difficulty level: how many operands, how long, which operators, how often ``( )``."""

    operands: int
    digits: int  # operands have 1 .. digits digits, each length equally likely
    ops: str
    paren_prob: float


# L1 is a single addition or subtraction; L5 is five two-digit operands with brackets. L5 uses
# two-digit operands (not three) so that every solution fits the toy model's 192-token context.
LEVELS: dict[int, Level] = {
    1: Level(operands=2, digits=2, ops="+-", paren_prob=0.0),
    2: Level(operands=3, digits=1, ops="+-*", paren_prob=0.0),
    3: Level(operands=3, digits=2, ops="+-*", paren_prob=0.3),
    4: Level(operands=4, digits=2, ops="+-*", paren_prob=0.5),
    5: Level(operands=5, digits=2, ops="+-*", paren_prob=0.6),
}
# Weights of L1..L5 for the corpus, the benchmark and the training questions. Leaning on L1-L3
# keeps the default base "imperfect in a useful way": greedy 78/43/29/9/0 % on L1..L5, 36 %
# on the benchmark, and 31 % of L3 questions in the vote band (recipe 4, bench/TOY.md).
DEFAULT_MIX: tuple[float, ...] = (0.25, 0.25, 0.25, 0.15, 0.10)
MAX_SOLUTION_CHARS = 120  # a generated problem with a longer solution is redrawn


@dataclass(frozen=True)
class ToyProblem:
    """A question with its exact answer and a step-by-step solution ending in ``\\boxed{}``."""

    question: str
    answer: int
    solution: str
    level: int

    @property
    def expression(self) -> str:
        return question_expression(self.question)


# ---------------------------------------------------------------------------------- questions


def question_expression(question: str) -> str:
    """The expression inside ``What is ...?`` (the text itself when it has no such frame)."""
    text = question.strip()
    if text.startswith(QUESTION_PREFIX):
        text = text[len(QUESTION_PREFIX) :]
    if text.endswith(QUESTION_SUFFIX):
        text = text[: -len(QUESTION_SUFFIX)]
    return text.strip()


# ---------------------------------------------------------------------------------- grading

_INTEGER = re.compile(r"[+-]?[0-9]+")


def parse_integer(text: str | int | None) -> int | None:
    """An integer written as ``42``, ``-7``, ``+ 3`` or `` 1 000 ``; anything else gives None."""
    if isinstance(text, bool) or text is None:
        return None
    if isinstance(text, int):
        return text
    compact = re.sub(r"\s+", "", str(text))
    if len(compact) > MAX_LITERAL_DIGITS + 1 or not _INTEGER.fullmatch(compact):
        return None
    return int(compact)


def grade(response_answer: str | None, gold: int | str) -> bool:
    """True when the boxed answer is the gold integer (spaces and a leading ``+`` allowed)."""
    answer, expected = parse_integer(response_answer), parse_integer(gold)
    return answer is not None and expected is not None and answer == expected


def boxed_answer(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` in ``text`` (braces balanced), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, begin = 0, start + len("\\boxed{")
    for i in range(begin, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            if depth == 0:
                return text[begin:i]
            depth -= 1
    return None


# ---------------------------------------------------------------------------------- solutions


def _show(value: int) -> str:
    return f"({value})" if value < 0 else str(value)


def solution_steps(node: Node) -> list[str]:
    """One ``a op b = c`` step per operation, innermost and leftmost first."""
    if node.op is None:
        return []
    if node.op == "neg":
        return solution_steps(node.left)
    steps = solution_steps(node.left) + solution_steps(node.right)
    # unary minus binds tighter than ``*``, so only a negative right operand needs brackets
    steps.append(f"{node.left.value}{node.op}{_show(node.right.value)}={node.value}")
    return steps


_PRECEDENCE = {"+": 1, "-": 1, "*": 2}


def render(node: Node, parent: str | None = None, right: bool = False) -> str:
    """``node`` written compactly, with only the brackets its tree needs (``12+7*(5-2)``).

    A child is bracketed when it binds looser than its parent, or as tightly on the right (the
    parser is left-associative), so parsing the text gives back the same tree.
    """
    if node.op is None:
        return _show(node.value) if parent is not None else str(node.value)
    if node.op == "neg":
        return "-" + render(node.left, "*", True)
    text = render(node.left, node.op) + node.op + render(node.right, node.op, True)
    if parent is not None and (
        _PRECEDENCE[node.op] < _PRECEDENCE[parent]
        or (right and _PRECEDENCE[node.op] == _PRECEDENCE[parent])
    ):
        return f"({text})"
    return text


def _reduce_first(node: Node) -> Node:
    """``node`` with its first operation (in solution order) replaced by its value."""
    if node.op is None:
        return node
    if node.op == "neg":
        return _fold_signs(Node(node.value, "neg", _reduce_first(node.left)))
    if node.left.op is not None:
        return Node(node.value, node.op, _reduce_first(node.left), node.right)
    if node.right.op is not None:
        return Node(node.value, node.op, node.left, _reduce_first(node.right))
    return Node(node.value)


def _fold_signs(node: Node) -> Node:
    """``node`` with every minus sign on a literal folded into it (a sign is not a step)."""
    if node.op is None:
        return node
    if node.op == "neg":
        inner = _fold_signs(node.left)
        return Node(node.value) if inner.op is None else Node(node.value, "neg", inner)
    return Node(node.value, node.op, _fold_signs(node.left), _fold_signs(node.right))


def rewrite_steps(node: Node) -> list[str]:
    """The expression rewritten once per operation, in the order of :func:`solution_steps`."""
    node = _fold_signs(node)
    texts = [render(node)]
    while node.op is not None:
        node = _reduce_first(node)
        texts.append(render(node))
    return texts


SOLUTION_STYLES = ("steps", "rewrite", "direct")


def solve(expr: str, style: str = "steps") -> str:
    """The solution of ``expr`` in one of three styles.

    ``steps`` (terse) writes each operation on its own: ``7*4=28, 23+28=51. \\boxed{51}``.
    ``rewrite`` (careful) rewrites the whole expression after each operation, so every
    operand is copied from the line just before: ``23+7*4=23+28=51. \\boxed{51}``.
    ``direct`` writes the answer at once, with no working: ``\\boxed{51}``.
    """
    node = parse_expression(expr)
    if style == "steps":
        steps = solution_steps(node)
        body = ", ".join(steps) + ". " if steps else ""
    elif style == "rewrite":
        texts = rewrite_steps(node)
        body = "=".join(texts) + ". " if len(texts) > 1 else ""
    elif style == "direct":
        body = ""
    else:
        raise ValueError(f"style must be one of {SOLUTION_STYLES}, got {style!r}")
    return f"{body}\\boxed{{{node.value}}}"


# ---------------------------------------------------------------------------------- generation


def _operand(rng: random.Random, digits: int) -> int:
    # a length first, then a number of that length: "up to two digits" is not 90 % two-digit
    length = rng.randint(1, digits)
    return rng.randrange(10 ** (length - 1) if length > 1 else 0, 10**length)


def _expression(rng: random.Random, level: Level) -> str:
    numbers = [str(_operand(rng, level.digits)) for _ in range(level.operands)]
    ops = [rng.choice(level.ops) for _ in range(level.operands - 1)]
    words = list(numbers)
    if level.operands > 2 and rng.random() < level.paren_prob:
        # wrap a proper sub-range of at least two operands
        width = rng.randint(2, level.operands - 1)
        first = rng.randint(0, level.operands - width)
        words[first] = "(" + words[first]
        words[first + width - 1] = words[first + width - 1] + ")"
    parts = [words[0]]
    for op, word in zip(ops, words[1:], strict=True):
        parts += [op, word]
    return " ".join(parts)


def make_problem(expr: str, level: int) -> ToyProblem:
    """The :class:`ToyProblem` for an expression written with spaces around its operators."""
    return ToyProblem(
        question=f"{QUESTION_PREFIX}{expr}{QUESTION_SUFFIX}",
        answer=parse_expression(expr).value,
        solution=solve(expr),
        level=level,
    )


def generate_problem(rng: random.Random, level: int) -> ToyProblem:
    """A random problem of the given level (1..5) whose solution is at most 120 characters."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {sorted(LEVELS)}, got {level}")
    while True:
        problem = make_problem(_expression(rng, LEVELS[level]), level)
        if len(problem.solution) <= MAX_SOLUTION_CHARS:
            return problem


def normalize_mix(mix: Sequence[float]) -> tuple[float, ...]:
    """Level weights as probabilities; raises on a wrong length or a non-positive total."""
    weights = tuple(float(w) for w in mix)
    if len(weights) != len(LEVELS) or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"a level mix has {len(LEVELS)} non-negative weights, got {mix!r}")
    total = sum(weights)
    return tuple(w / total for w in weights)


def sample_level(rng: random.Random, mix: Sequence[float]) -> int:
    return rng.choices(sorted(LEVELS), weights=mix)[0]


# ---------------------------------------------------------------------------------- held out

HELD_OUT_BUCKETS = 10  # one question in ten (by a stable hash) is reserved for the benchmark


def is_held_out(question: str) -> bool:
    """Whether a question belongs to the held-out part of the world (never in the corpus)."""
    digest = hashlib.blake2b(question.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % HELD_OUT_BUCKETS == 0


def generate_problems(
    n: int, seed: int, mix: Sequence[float] = DEFAULT_MIX, held_out: bool = False
) -> list[ToyProblem]:
    """``n`` distinct problems from the held-out part (``held_out=True``) or from the rest."""
    rng, weights = random.Random(seed), normalize_mix(mix)
    problems: list[ToyProblem] = []
    seen: set[str] = set()
    for _ in range(100 * n + 10_000):
        if len(problems) == n:
            return problems
        problem = generate_problem(rng, sample_level(rng, weights))
        if problem.question not in seen and is_held_out(problem.question) == held_out:
            seen.add(problem.question)
            problems.append(problem)
    raise RuntimeError(f"could not draw {n} distinct problems for the mix {mix!r}")
