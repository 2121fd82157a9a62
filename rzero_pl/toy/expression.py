"""Integer expressions over ``+ - *`` and parentheses: tokenizer, parser, expression tree.

A small recursive-descent parser (never ``eval``) that refuses long, deep or huge inputs
instead of computing them. The toy world's questions, solutions and grader
(``rzero_pl.toy.arithmetic``) are built on its trees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_EXPRESSION_CHARS = 256  # longer inputs are refused, not parsed
MAX_DEPTH = 32  # parentheses / unary minus nesting
MAX_LITERAL_DIGITS = 18
MAX_ABS_VALUE = 10**30  # any intermediate beyond this is refused

_TOKEN = re.compile(r"\s*(?:([0-9]+)|([-+*()]))")


class ParseError(ValueError):
    """The text is not a well-formed integer expression within the size limits."""


def tokenize(expr: str) -> list[str]:
    """Split ``expr`` into integer literals and the symbols ``+ - * ( )``."""
    if len(expr) > MAX_EXPRESSION_CHARS:
        raise ParseError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    tokens, pos = [], 0
    expr = expr.rstrip()
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            raise ParseError(f"unexpected character {expr[pos : pos + 1]!r} at {pos}")
        number, symbol = match.groups()
        if number is not None and len(number) > MAX_LITERAL_DIGITS:
            raise ParseError("integer literal too long")
        tokens.append(number if number is not None else symbol)
        pos = match.end()
    return tokens


@dataclass
class Node:
    """An expression tree: a literal (``op is None``) or a binary operation."""

    value: int
    op: str | None = None
    left: Node | None = None
    right: Node | None = None


class _Parser:
    """Recursive descent: expr := term (('+'|'-') term)*, term := unary ('*' unary)*,
    unary := '-' unary | '+' unary | number | '(' expr ')'."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens, self.pos, self.depth = tokens, 0, 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise ParseError("unexpected end of expression")
        self.pos += 1
        return token

    def parse(self) -> Node:
        node = self.expr()
        if self.peek() is not None:
            raise ParseError(f"unexpected {self.peek()!r}")
        return node

    def expr(self) -> Node:
        node = self.term()
        while self.peek() in ("+", "-"):
            node = _combine(self.take(), node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.peek() == "*":
            node = _combine(self.take(), node, self.unary())
        return node

    def unary(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ParseError("expression nested too deeply")
        token = self.take()
        if token in ("-", "+"):
            inner = self.unary()
            node = Node(-inner.value, "neg", inner) if token == "-" else inner
        elif token == "(":
            node = self.expr()
            if self.take() != ")":
                raise ParseError("missing ')'")
        elif token.isdigit():
            node = Node(int(token))
        else:
            raise ParseError(f"unexpected {token!r}")
        self.depth -= 1
        return node


def _combine(op: str, left: Node, right: Node) -> Node:
    a, b = left.value, right.value
    value = a + b if op == "+" else a - b if op == "-" else a * b
    if abs(value) > MAX_ABS_VALUE:
        raise ParseError("value too large")
    return Node(value, op, left, right)


def parse_expression(expr: str) -> Node:
    """The expression tree of ``expr``; raises :class:`ParseError` on anything else."""
    tokens = tokenize(expr)
    if not tokens:
        raise ParseError("empty expression")
    return _Parser(tokens).parse()


def evaluate_expression(expr: str) -> int | None:
    """The exact integer value of ``expr`` (``+ - *``, parentheses, unary minus), else None."""
    if not isinstance(expr, str):
        return None
    try:
        return parse_expression(expr).value
    except ParseError:
        return None
