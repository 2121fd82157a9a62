"""The toy arithmetic world: parser, generator, grader, tokenizer, corpus, benchmark.

The base model's build and cache are in test_toy_model.py.
"""

from __future__ import annotations

import collections
import itertools
import random
import re

import pytest

from rzero_pl.toy import arithmetic as ar
from rzero_pl.toy.arithmetic import (
    LEVELS,
    boxed_answer,
    generate_problem,
    grade,
    is_held_out,
    question_expression,
    solve,
)
from rzero_pl.toy.benchmark import toy_benchmark, toy_questions
from rzero_pl.toy.corpus import corpus, examples, training_problems
from rzero_pl.toy.expression import evaluate_expression
from rzero_pl.toy.prompts import TOY_CHALLENGER, TOY_SOLVER

# ---------------------------------------------------------------------------------- parser


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("2 + 3 * 4", 14),
        ("(2 + 3) * 4", 20),
        ("10 - 4 - 3", 3),  # left associative
        ("2 * 3 * 4 - 5 * 6", -6),
        ("12 + 7 * (5 - 2)", 33),
        ("2 * (3 - 10)", -14),
        ("((1 + 2) * (3 + 4)) - 20", 1),
        ("-3 * -2", 6),
        ("-(1 + 2)", -3),
        ("5 - -3", 8),
        ("+4", 4),
        ("007", 7),
        ("  42  ", 42),
        ("99*99", 9801),
    ],
)
def test_parser_computes_by_hand(expr, value):
    assert evaluate_expression(expr) == value


@pytest.mark.parametrize(
    "expr",
    [
        "",
        "   ",
        "2 +",
        "* 3",
        "(1 + 2",
        "1 + 2)",
        "()",
        "2 3",
        "2 ** 3",
        "2 / 3",
        "2 ^ 3",
        "1e5",
        "1.5 + 2",
        "x + 1",
        "٣ + 1",  # non-ASCII digits
        "__import__('os').system('echo hi')",
        "().__class__.__bases__[0]",
        "1 + 1 # comment",
        "1" * 300,  # too long
        "(" * 40 + "1" + ")" * 40,  # too deep
        "-" * 40 + "1",
        "9" * 19,  # literal too long
        " * ".join(["999999999999"] * 4),  # beyond the value limit
    ],
)
def test_parser_refuses_junk(expr):
    assert evaluate_expression(expr) is None


def test_parser_refuses_non_strings():
    assert evaluate_expression(None) is None  # type: ignore[arg-type]
    assert evaluate_expression(12) is None  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- generator

QUESTION = re.compile(r"What is (\(?\d+\)?)( [-+*] \(?\d+\)?)+\?")


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_generator_levels(level):
    spec, rng = LEVELS[level], random.Random(level)
    problems = [generate_problem(rng, level) for _ in range(300)]
    for p in problems:
        assert p.level == level
        assert QUESTION.fullmatch(p.question), p.question
        expr = p.expression
        numbers = re.findall(r"\d+", expr)
        assert len(numbers) == spec.operands
        assert all(len(n) <= spec.digits for n in numbers)
        assert set(re.findall(r" ([-+*]) ", expr)) <= set(spec.ops)
        assert evaluate_expression(expr) == p.answer
    with_parens = sum("(" in p.question for p in problems) / len(problems)
    assert abs(with_parens - spec.paren_prob) < 0.1


def test_generator_is_seeded_and_rejects_unknown_levels():
    first = [generate_problem(random.Random(3), 4) for _ in range(5)]
    assert first == [generate_problem(random.Random(3), 4) for _ in range(5)]
    with pytest.raises(ValueError):
        generate_problem(random.Random(0), 6)


def test_solution_format():
    assert solve("23 + 7 * 4") == "7*4=28, 23+28=51. \\boxed{51}"
    assert solve("12 + 7 * (5 - 2)") == "5-2=3, 7*3=21, 12+21=33. \\boxed{33}"
    assert solve("5 - (3 - 17)") == "3-17=-14, 5-(-14)=19. \\boxed{19}"
    assert solve("3 - 17 * 2") == "17*2=34, 3-34=-31. \\boxed{-31}"
    assert solve("7") == "\\boxed{7}"


def test_rewrite_solution_format():
    assert solve("23 + 7 * 4", "rewrite") == "23+7*4=23+28=51. \\boxed{51}"
    assert solve("12 + 7 * (5 - 2)", "rewrite") == "12+7*(5-2)=12+7*3=12+21=33. \\boxed{33}"
    assert solve("5 - (3 - 17)", "rewrite") == "5-(3-17)=5-(-14)=19. \\boxed{19}"
    assert solve("3 - 17 * 2", "rewrite") == "3-17*2=3-34=-31. \\boxed{-31}"
    # brackets the tree does not need are dropped; those it needs are kept
    assert solve("(70 - 5) - 50 * 8", "rewrite") == "70-5-50*8=65-50*8=65-400=-335. \\boxed{-335}"
    assert solve("10 - (2 + 3)", "rewrite") == "10-(2+3)=10-5=5. \\boxed{5}"
    assert solve("2 * (3 * 4)", "rewrite") == "2*(3*4)=2*12=24. \\boxed{24}"
    # a minus sign on a literal is part of the number, not a step
    assert solve("-(3 + 4) * 2", "rewrite") == "-(3+4)*2=(-7)*2=-14. \\boxed{-14}"
    assert solve("7", "rewrite") == "\\boxed{7}"
    assert solve("7 + 4", "rewrite") == solve("7 + 4")  # one operation: the styles agree
    assert solve("6 * 7 - 1", "direct") == "\\boxed{41}"
    with pytest.raises(ValueError, match="style"):
        solve("1 + 2", "terse")


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_rewrite_steps_keep_the_value_and_drop_one_operation_each(level):
    rng = random.Random(200 + level)
    for _ in range(200):
        p = generate_problem(rng, level)
        body, boxed = solve(p.expression, "rewrite").rsplit(". ", 1)
        assert boxed == f"\\boxed{{{p.answer}}}"
        texts = body.split("=")
        assert len(texts) == LEVELS[level].operands  # the question, one per operation
        assert texts[0] == p.expression.replace(" ", "") or "(" in p.expression
        assert texts[-1] == str(p.answer)
        for text in texts:
            assert evaluate_expression(text) == p.answer
        operators = [len(re.findall(r"(?<=[\d)])[-+*]", t)) for t in texts]
        assert operators == list(range(LEVELS[level].operands - 1, -1, -1))


STEP = re.compile(r"(-?\d+)([-+*])(\(-\d+\)|\d+)=(-?\d+)")


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_solution_steps_recompute(level):
    rng = random.Random(100 + level)
    for _ in range(200):
        p = generate_problem(rng, level)
        body, boxed = p.solution.rsplit(". ", 1)
        assert boxed == f"\\boxed{{{p.answer}}}"
        steps = body.split(", ")
        assert len(steps) == LEVELS[level].operands - 1
        for step in steps:
            a, op, b, c = STEP.fullmatch(step).groups()
            assert evaluate_expression(f"{a} {op} {b}") == int(c)
        assert int(STEP.fullmatch(steps[-1]).group(4)) == p.answer
        assert len(p.solution) <= ar.MAX_SOLUTION_CHARS


# ---------------------------------------------------------------------------------- grader


def test_grade():
    assert grade("51", 51)
    assert grade(" 51 ", "51")
    assert grade("+51", 51)
    assert grade("+ 51", "+51")
    assert grade("-7", -7)
    assert grade("- 7", "-7")
    assert not grade("-7", 7)
    assert not grade("52", 51)
    assert not grade(None, 51)
    assert not grade("", 51)
    assert not grade("51.0", 51)
    assert not grade("5 1/2", 51)
    assert not grade("x", 51)
    assert not grade("51", "fifty-one")
    assert not grade("9" * 40, int("9" * 40))  # absurdly long: refused, not compared


def test_boxed_answer():
    assert boxed_answer("7*4=28. \\boxed{28}") == "28"
    assert boxed_answer("\\boxed{1} then \\boxed{-2}") == "-2"
    assert boxed_answer("\\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert boxed_answer("\\boxed{12") is None
    assert boxed_answer("no box") is None


def test_question_expression():
    assert question_expression("What is 1 + 2?") == "1 + 2"
    assert question_expression(" 3 * 4 ") == "3 * 4"


# ---------------------------------------------------------------------------------- tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    from rzero_pl.toy.tokenizer import build_tokenizer

    return build_tokenizer()


def test_tokenizer_round_trip(tokenizer):
    from rzero_pl.toy.tokenizer import ALPHABET

    for text in corpus(50) + [ALPHABET, "a  b\n\n c"]:
        ids = tokenizer(text)["input_ids"]
        assert ids[0] == tokenizer.bos_token_id
        assert len(ids) == len(text) + 1  # one token per character
        assert tokenizer.decode(ids, skip_special_tokens=True) == text
    assert all(tokenizer.convert_tokens_to_ids(c) != tokenizer.unk_token_id for c in ALPHABET)


def test_tokenizer_specials(tokenizer):
    assert len({tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id}) == 3
    ids = tokenizer("é€")["input_ids"]
    assert ids[1:] == [tokenizer.unk_token_id] * 2
    batch = tokenizer(["1", "123"], padding=True)["input_ids"]
    assert batch[0][0] == tokenizer.pad_token_id  # left padding, for generation


# ---------------------------------------------------------------------------------- corpus


def test_corpus_documents_start_with_the_rendered_prompts():
    docs = corpus(2000, seed=5)
    solver_prefix = TOY_SOLVER.render(None, problem="\0").split("\0")[0]  # "Solve: "
    challenger = [d for d in docs if d.startswith(TOY_CHALLENGER.render(None))]
    solver = [d for d in docs if d.startswith(solver_prefix)]
    assert len(challenger) + len(solver) == len(docs)
    assert 0.25 < len(challenger) / len(docs) < 0.35
    for doc in challenger[:200]:
        completion = doc[len(TOY_CHALLENGER.render(None)) :]
        match = re.fullmatch(
            r"<question>(What is [^<]+\?)</question> \\boxed\{(-?\d+)\}", completion
        )
        assert evaluate_expression(question_expression(match.group(1))) == int(match.group(2))
    for doc in solver[:200]:
        prompt, solution = doc.split("\n", 1)
        assert doc.startswith(TOY_SOLVER.render(None, problem=prompt.removeprefix("Solve: ")))
        gold = evaluate_expression(question_expression(prompt.removeprefix("Solve: ")))
        assert grade(boxed_answer(solution), gold)
    # L2 questions are answered at once in about 60 % of their documents (DIRECT_SHARES),
    # questions of the other levels never
    direct = collections.defaultdict(list)
    pairs = zip(training_problems(5), examples(5), strict=False)
    for problem, (prompt, completion) in itertools.islice(pairs, 4000):
        if prompt.startswith(solver_prefix):
            direct[problem.level].append(completion == f"\\boxed{{{problem.answer}}}")
    assert 0.55 < sum(direct[2]) / len(direct[2]) < 0.65
    assert not any(any(direct[level]) for level in (1, 3, 4, 5))
    # multi-step solutions come in both styles, the careful one a minority (REWRITE_SHARE)
    multi = [d.split("\n", 1)[1] for d in solver if d.count("=") >= 2]
    careful = [s for s in multi if ", " not in s]
    assert 0.22 < len(careful) / len(multi) < 0.38
    assert corpus(20, seed=5) == docs[:20]


def _questions_in(docs):
    return set(re.findall(r"What is [^<\n]+\?", "\n".join(docs)))


def test_benchmark_is_held_out_and_disjoint_from_the_corpus():
    rows = toy_benchmark(300)
    assert len({r["id"] for r in rows}) == len({r["problem"] for r in rows}) == 300
    for r in rows:
        assert set(r) == {"id", "problem", "answer", "extra"}
        assert isinstance(r["answer"], str) and r["extra"]["level"] in LEVELS
        assert evaluate_expression(question_expression(r["problem"])) == int(r["answer"])
        assert is_held_out(r["problem"])
    seen = _questions_in(corpus(20_000))
    assert len(seen) > 10_000 and not seen & {r["problem"] for r in rows}
    assert not any(is_held_out(q) for q in seen)
    assert toy_benchmark(300) == rows  # seeded
    levels = [r["extra"]["level"] for r in toy_benchmark(500)]
    assert levels.count(1) > levels.count(5)  # the default mix leans on the easy levels


def test_training_questions_have_true_labels_and_avoid_the_benchmark():
    rows = toy_questions(300, seed=2)
    assert not {r["problem"] for r in rows} & {r["problem"] for r in toy_benchmark(300)}
    for r in rows:
        assert grade(boxed_answer(r["extra"]["solution"]), r["answer"])
        assert not is_held_out(r["problem"])
    only_l3 = toy_questions(50, mix=(0, 0, 1, 0, 0))
    assert {r["extra"]["level"] for r in only_l3} == {3}
    with pytest.raises(ValueError):
        toy_questions(5, mix=(1, 1))
