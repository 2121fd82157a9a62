"""How long the curriculum's pseudo-labelling takes: 8000 questions x 10 solver answers.

Each made-up question has a true answer of one kind (integer, negative, large integer with
thousands separators, fraction, radical, interval, tuple, angle, word) that some votes give in
one of several spellings; the other votes are near-miss wrong answers, junk, or missing. A few
answers are pathological (``9^{9^{9^{9}}}``) and must time out. ``majority_votes`` labels them all
with the worker pool; then a naive reference-style labeller (greedy clustering that calls
math-verify in both directions for every pair it compares, raw strings, no normalisation, no
cache, one process, math-verify's own alarm timeouts) labels a subset, to compare speed and
labels.

    python bench/bench_majority_vote.py [--questions 8000] [--votes 10] [--naive 300]
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import platform
import random
import threading
import time
from fractions import Fraction
from importlib.metadata import version

import sympy

from rzero_pl.grading import answers
from rzero_pl.grading.verify_pool import VerifyPool, default_workers
from rzero_pl.grading.votes import majority_votes

DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
JUNK = ["see above", "I don't know", "\\frac{?}{}", "undefined!!", "a+", "\\foo{3}", "((", "?"]


def integer(rng: random.Random, value: int) -> str:
    return rng.choice(
        [str(value), str(value), f"{value}.", f"x = {value}", f"\\text{{{value}}}", f"{value}.0"]
    )


def spellings(kind: str, rng: random.Random, v) -> str:
    """One way of writing the value ``v`` of the given kind."""
    if kind in ("integer", "negative"):
        return integer(rng, v) if v >= 0 else rng.choice([str(v), f"\u2212{-v}", f"- {-v}"])
    if kind == "large":
        return rng.choice(
            [str(v), f"{v:,}", f"{v:,}".replace(",", "{,}"), f"{v:,}".replace(",", "\\,")]
        )
    if kind == "fraction":
        p, q = v.numerator, v.denominator
        forms = [
            f"\\frac{{{p}}}{{{q}}}",
            f"{p}/{q}",
            f"\\dfrac{{{p}}}{{{q}}}",
            f"\\tfrac{{{p}}}{{{q}}}",
        ]
        if p < 10 and q < 10:
            forms.append(f"\\frac{p}{q}")
        if 1000 % q == 0:
            forms.append(str(float(v)))
        return rng.choice(forms)
    if kind == "radical":
        a, b, c = v
        return rng.choice(
            [
                f"\\frac{{{a}\\sqrt{{{b}}}}}{{{c}}}",
                f"{a}\\sqrt{{{b}}}/{c}",
                f"\\frac{{{a}}}{{{c}}}\\sqrt{{{b}}}",
                f"\\dfrac{{{a}\\sqrt {b}}}{{{c}}}",
            ]
        )
    if kind == "interval":
        a, b = v
        return rng.choice(
            [f"[{a}, {b})", f"[{a},{b})", f"\\left[{a}, {b}\\right)", f"$[{a}, {b})$"]
        )
    if kind == "tuple":
        a, b = v
        return rng.choice(
            [f"({a}, {b})", f"({a},{b})", f"\\left({a}, {b}\\right)", f"(x, y) = ({a}, {b})"]
        )
    if kind == "angle":
        return rng.choice([f"{v}^\\circ", f"{v}^{{\\circ}}", str(v), f"{v}°"])
    return rng.choice([v, v.lower(), f"\\text{{{v}}}", f"\\textbf{{{v}}}", f"\\text{{{v}}}."])


def truth(kind: str, rng: random.Random):
    if kind == "integer":
        return rng.randint(0, 200)
    if kind == "negative":
        return -rng.randint(1, 50)
    if kind == "large":
        return rng.randint(1000, 999_999)
    if kind == "fraction":
        v = Fraction(rng.randint(1, 30), rng.choice([2, 3, 4, 5, 6, 7, 8, 9, 12, 20]))
        return v if v.denominator > 1 else Fraction(2 * v.numerator + 1, 2)
    if kind == "radical":
        return (rng.randint(1, 5), rng.choice([2, 3, 5, 6, 7]), rng.randint(2, 9))
    if kind in ("interval", "tuple"):
        a = rng.randint(-9, 9)
        return (a, a + rng.randint(1, 9))
    if kind == "angle":
        return rng.choice([15, 30, 36, 45, 60, 72, 90, 120, 135, 150])
    return rng.choice(DAYS)


def near_miss(kind: str, rng: random.Random, v):
    if kind in ("integer", "negative", "large", "angle"):
        return v + rng.choice([-2, -1, 1, 2, 10])
    if kind == "fraction":
        return v + Fraction(rng.choice([-1, 1]), v.denominator + 1)
    if kind == "radical":
        a, b, c = v
        return (a + 1, b, c) if rng.random() < 0.5 else (a, b, c + 1)
    if kind == "tuple":
        return (v[1], v[0])
    if kind == "interval":
        return (v[0], v[1] + 1)
    return rng.choice([d for d in DAYS if d != v])


def make_questions(
    n: int, m: int, seed: int, pathological: int, truths: list | None = None
) -> list[list[str | None]]:
    """``n`` questions of ``m`` votes; ``truths`` (if given) receives, per question, the set of
    the right answer's spellings used and whether the right answer has a strict plurality of
    the votes by value (what a perfect labeller could label)."""
    rng = random.Random(seed)
    kinds = ["integer"] * 4 + ["negative", "large", "fraction", "fraction", "radical"]
    kinds += ["interval", "tuple", "angle", "word"]
    questions = []
    for _ in range(n):
        kind = rng.choice(kinds)
        value = truth(kind, rng)
        misses = [near_miss(kind, rng, value) for _ in range(rng.randint(1, 3))]
        right = rng.randint(0, m)
        votes: list[str | None] = []
        right_spellings, miss_counts = set(), [0] * len(misses)
        for i in range(m):
            draw = rng.random()
            if i < right:
                votes.append(spellings(kind, rng, value))
                right_spellings.add(votes[-1].strip())
            elif draw < 0.70:
                miss = rng.randrange(len(misses))
                miss_counts[miss] += misses[miss] != value
                votes.append(spellings(kind, rng, misses[miss]))
            elif draw < 0.85:
                votes.append(rng.choice(JUNK))
            else:
                votes.append(None)
        rng.shuffle(votes)
        questions.append(votes)
        if truths is not None:
            truths.append((right_spellings, right > max(miss_counts, default=0)))
    for q in rng.sample(range(n), pathological):
        questions[q][0] = "9^{9^{9^{9}}}"
    return questions


def naive_label(votes: list[str | None]) -> tuple[str | None, float]:
    """Reference-style: raw strings, greedy clusters, math-verify both ways per compared pair."""
    from math_verify import parse, verify

    def same(a: str, b: str) -> bool:
        pa, pb = parse(f"\\boxed{{{a}}}"), parse(f"\\boxed{{{b}}}")
        return bool(pa and pb and (verify(pa, pb) or verify(pb, pa)))

    clusters: list[list] = []
    for vote in votes:
        if vote is None or not vote.strip():
            continue
        for cluster in clusters:
            if vote == cluster[0] or same(vote, cluster[0]):
                cluster[1] += 1
                break
        else:
            clusters.append([vote, 1])
    if not clusters:
        return None, 0.0
    label, size = max(clusters, key=lambda c: c[1])
    return label, size / len(votes)


def mathruler_label(votes: list[str | None], timeout: float = 10.0) -> tuple[str | None, float]:
    """The released R-Zero labeller (``question_evaluate/evaluate.py``): raw strings, missing answers as "None",
    greedy clusters; a vote joins a representative on ``==``, on both containing "no ", or on
    mathruler ``grade_answer`` either way, each call under a thread timeout (a timeout moves
    on to the next representative)."""
    from mathruler.grader import grade_answer

    def graded(a: str, b: str, timeout: float) -> bool | str:
        # stopit's threading_timeoutable, which the reference uses, imports pkg_resources
        # (gone from current setuptools); this is the same mechanism: a thread, then an
        # asynchronous exception into it when it overruns (pure-C work cannot be stopped).
        out: list[bool] = []
        worker = threading.Thread(target=lambda: out.append(grade_answer(a, b)), daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(worker.ident), ctypes.py_object(TimeoutError)
            )
            return "timeout"
        return bool(out and out[0])

    clusters: list[list] = []
    for vote in ["None" if v is None else v for v in votes]:
        if not vote.strip():
            continue
        for cluster in clusters:
            rep = cluster[0]
            if vote == rep or ("no " in vote.lower() and "no " in rep.lower()):
                cluster[1] += 1
                break
            first = graded(vote, rep, timeout=timeout)
            if first == "timeout":
                continue
            if first or graded(rep, vote, timeout=timeout) is True:
                cluster[1] += 1
                break
        else:
            clusters.append([vote, 1])
    if not clusters:
        return None, 0.0
    label, size = max(clusters, key=lambda c: c[1])
    return label, size / len(votes)


def mathruler_baseline(questions: list, ours: list, timeout: float) -> None:
    """Time the released labeller on ``questions`` (one process); compare labels with ours."""
    start = time.perf_counter()
    ref = [mathruler_label(q, timeout) for q in questions]
    wall = time.perf_counter() - start
    answers_n = sum(len(q) for q in questions)
    decided = [
        (q, v, label, share)
        for q, v, (label, share) in zip(questions, ours, ref, strict=True)
        if label not in (None, "None") and v.label is not None
    ]
    differ = [
        (q, v, label, share)
        for q, v, label, share in decided
        if not (v.label == label or answers.equivalent(v.label, label))
    ]
    print(
        f"mathruler reference, 1 process: {len(questions)} questions in {wall:.1f} s = "
        f"{answers_n / wall:,.0f} answers/s; labels equivalent on "
        f"{len(decided) - len(differ)}/{len(decided)} questions both label "
        "(ours: answers.equivalent)"
    )
    for q, v, label, share in differ[: int(os.environ.get("RZERO_BENCH_SHOW", "8"))]:
        print(f"  differ: {q} -> ours {v.label!r} {v.share}, mathruler {label!r} {share}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=8000)
    parser.add_argument("--votes", type=int, default=10)
    parser.add_argument("--naive", type=int, default=300, help="questions for the naive baseline")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--pathological", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--mathruler", type=int, default=0, help="also time the released mathruler labeller "
        "on this many questions (pip install mathruler pylatexenc)",
    )  # fmt: skip
    args = parser.parse_args()
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)

    workers = args.workers or default_workers()
    truths: list = []
    questions = make_questions(args.questions, args.votes, args.seed, args.pathological, truths)
    total = sum(len(q) for q in questions)
    print(
        f"python {platform.python_version()}, math-verify {version('math-verify')}, "
        f"sympy {sympy.__version__}, {os.cpu_count()} CPUs, {workers} workers"
    )

    pool = VerifyPool(workers=workers)
    start = time.perf_counter()
    pool.map([("1", "1")], timeout=60)  # start the workers: the start-up is not labelling time
    startup = time.perf_counter() - start
    answers._cache.clear()
    start = time.perf_counter()
    votes = majority_votes(questions, timeout=args.timeout, pool=pool)
    wall = time.perf_counter() - start
    checks = len(answers._cache)
    pool.close()
    shares = [v.share for v in votes]
    print(f"pool start-up {startup:.1f} s")
    print(
        f"majority_votes: {len(questions)} questions x {args.votes} = {total} answers in "
        f"{wall:.1f} s = {total / wall:,.0f} answers/s; {checks} math-verify checks, "
        f"{pool.replaced} workers replaced after a timeout"
    )
    accurate = sum(v.label in right for v, (right, _) in zip(votes, truths, strict=True))
    plural = [i for i, (_, p) in enumerate(truths) if p]
    accurate_plural = sum(votes[i].label in truths[i][0] for i in plural)
    print(
        f"label accuracy {accurate}/{len(votes)} ({accurate / len(votes):.2%}); where the right "
        f"answer has a strict plurality by value: {accurate_plural}/{len(plural)}"
    )
    print(
        f"mean share {sum(shares) / len(shares):.3f}; "
        f"in band [0.3, 0.8]: {sum(0.3 <= s <= 0.8 for s in shares)}"
    )

    subset = questions[: args.naive]
    start = time.perf_counter()
    naive = [naive_label(q) for q in subset]
    naive_wall = time.perf_counter() - start
    answers._cache.clear()
    one = VerifyPool(workers=1)
    one.map([("1", "1")], timeout=60)
    start = time.perf_counter()
    ours = majority_votes(subset, timeout=args.timeout, pool=one)
    one_wall = time.perf_counter() - start
    one.close()
    same_label = sum(v.label == label for v, (label, _) in zip(ours, naive, strict=True))
    same_share = sum(abs(v.share - share) < 1e-9 for v, (_, share) in zip(ours, naive, strict=True))
    ours_all = votes[: args.naive]
    print(
        f"naive, 1 process: {len(subset)} questions in {naive_wall:.1f} s "
        f"= {len(subset) * args.votes / naive_wall:,.0f} answers/s"
    )
    print(
        f"ours, 1 worker, cold cache: {one_wall:.1f} s ({naive_wall / one_wall:.1f}x faster); "
        f"ours, {workers} workers: {total / wall:,.0f} answers/s "
        f"({(total / wall) / (len(subset) * args.votes / naive_wall):.1f}x the naive rate)"
    )
    print(
        f"labels agree on {same_label}/{len(subset)}, shares on {same_share}/{len(subset)}; "
        f"full-run labels on this subset agree with the 1-worker run: "
        f"{sum(a == b for a, b in zip(ours_all, ours, strict=True))}/{len(subset)}"
    )
    differ = [
        (q, v, label, share)
        for q, v, (label, share) in zip(subset, ours, naive, strict=True)
        if v.label != label or abs(v.share - share) > 1e-9
    ]
    for q, v, label, share in differ[: int(os.environ.get("RZERO_BENCH_SHOW", "8"))]:
        print(f"  differ: {q} -> ours {v.label!r} {v.share:.1f}, naive {label!r} {share:.1f}")
    if args.mathruler:
        mathruler_baseline(questions[: args.mathruler], votes[: args.mathruler], args.timeout)


if __name__ == "__main__":
    main()
