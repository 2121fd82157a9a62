"""Synthetic pretraining documents for the toy model, in the two roles' formats.

A question-writing document is the rendered ``TOY_CHALLENGER`` prompt followed by
``<question>What is ...?</question> \\boxed{N}``; a solving document is the rendered
``TOY_SOLVER`` prompt for a question followed by its solution ending in ``\\boxed{N}``
(``rzero_pl.toy.arithmetic.solve``): worked in the terse ``steps`` style or, in a minority of
documents, the careful ``rewrite`` style; or, for most L2 questions, the answer at once
(``direct``). The tokenizer adds ``<bos>`` before and the pretraining loop ``<eos>`` after
each document.
Questions from the held-out part of the world (the benchmark's) never appear.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

from rzero_pl.toy.arithmetic import (
    DEFAULT_MIX,
    MAX_SOLUTION_CHARS,
    ToyProblem,
    generate_problem,
    is_held_out,
    normalize_mix,
    sample_level,
    solve,
)
from rzero_pl.toy.prompts import TOY_CHALLENGER, TOY_SOLVER

CHALLENGER_SHARE = 0.3  # fraction of documents that write a question instead of solving one
# Fraction of solving documents in the careful style. Why two styles: the base's samples are
# then more varied (pass@8 58 % against 54 % with terse solutions alone), so a group's rewards
# disagree more often. A minority, as on the web, where most worked solutions are terse. On
# the xs model the careful style is not the more reliable one (bench/TOY.md).
REWRITE_SHARE = 0.3
# Per level L1..L5, the fraction of solving documents that give the answer at once, with no
# working, as mental arithmetic is written on the web. The base then answers most L2 questions
# at once, right 19 % of the time against 71 % when it works them out: a habit its samples
# show to be worse, which the solver's GRPO removes (bench/TOY.md). Every level at 0.5 left too
# little worked arithmetic in the corpus (8 % greedy).
DIRECT_SHARES = (0.0, 0.6, 0.0, 0.0, 0.0)


def challenger_completion(problem: ToyProblem) -> str:
    """What the question-writer is taught to print after its prompt."""
    return f"<question>{problem.question}</question> \\boxed{{{problem.answer}}}"


def challenger_example(problem: ToyProblem) -> tuple[str, str]:
    """``(prompt, completion)`` of a question-writing document."""
    return TOY_CHALLENGER.render(None), challenger_completion(problem)


def solver_example(problem: ToyProblem, style: str = "steps") -> tuple[str, str]:
    """``(prompt, completion)`` of a solving document in the given solution style."""
    solution = problem.solution if style == "steps" else solve(problem.expression, style)
    if len(solution) > MAX_SOLUTION_CHARS:  # keeps every document inside the context
        solution = problem.solution
    return TOY_SOLVER.render(None, problem=problem.question), solution


def training_problems(seed: int, mix: Sequence[float] = DEFAULT_MIX) -> Iterator[ToyProblem]:
    """An endless stream of problems outside the held-out part, levels drawn from ``mix``."""
    rng, weights = random.Random(seed), normalize_mix(mix)
    while True:
        problem = generate_problem(rng, sample_level(rng, weights))
        if not is_held_out(problem.question):
            yield problem


def examples(
    seed: int = 0,
    mix: Sequence[float] = DEFAULT_MIX,
    challenger_share: float | None = None,
    rewrite_share: float | None = None,
    direct_shares: Sequence[float] | None = None,
) -> Iterator[tuple[str, str]]:
    """An endless, seeded stream of ``(prompt, completion)`` pairs of both roles.

    A share left ``None`` is read from this module's constant when the stream starts (the
    toy model's cache key reads the same constants).
    """
    challenger_share = CHALLENGER_SHARE if challenger_share is None else challenger_share
    rewrite_share = REWRITE_SHARE if rewrite_share is None else rewrite_share
    direct_shares = DIRECT_SHARES if direct_shares is None else direct_shares
    rng = random.Random(f"roles-{seed}")
    for problem in training_problems(seed, mix):
        if rng.random() < challenger_share:
            yield challenger_example(problem)
        elif rng.random() < direct_shares[problem.level - 1]:
            yield solver_example(problem, "direct")
        else:
            style = "rewrite" if rng.random() < rewrite_share else "steps"
            yield solver_example(problem, style)


def documents(seed: int = 0, mix: Sequence[float] = DEFAULT_MIX) -> Iterator[str]:
    """The same stream as whole documents: prompt + completion (no ``<bos>``/``<eos>``)."""
    for prompt, completion in examples(seed, mix):
        yield prompt + completion


def corpus(n: int, seed: int = 0, mix: Sequence[float] = DEFAULT_MIX) -> list[str]:
    """The first ``n`` documents of the seeded stream."""
    stream = documents(seed, mix)
    return [next(stream) for _ in range(n)]
