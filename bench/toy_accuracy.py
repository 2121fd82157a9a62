"""Measure the toy base model: is it "imperfect in a useful way" for self-play?

Greedy accuracy per level and per solution style on the held-out toy benchmark, mean@8 /
maj@8 / pass@8 at T=1, the share of L3 questions whose 10-sample (T=1) majority share lies in
the band [0.3, 0.7], and how well the model writes questions. Calls ``model.generate``
directly (a measurement, not a trainer).

    python bench/toy_accuracy.py                  # the default ToyModel (builds it if needed)
    python bench/toy_accuracy.py --steps 300 --n 200
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import time

import torch

from rzero_pl.toy.arithmetic import (
    DEFAULT_MIX,
    boxed_answer,
    grade,
    is_held_out,
    parse_integer,
    question_expression,
)
from rzero_pl.toy.benchmark import toy_benchmark
from rzero_pl.toy.expression import evaluate_expression
from rzero_pl.toy.model import DEFAULT_STEPS, ToyModel
from rzero_pl.toy.prompts import TOY_CHALLENGER, TOY_SOLVER


@torch.no_grad()
def complete(model, tokenizer, prompts, sample=False, max_new_tokens=110, batch=128):
    """Completions of ``prompts`` (greedy, or T=1 sampling); returns texts and new tokens."""
    texts, tokens = [], 0
    for i in range(0, len(prompts), batch):
        enc = tokenizer(prompts[i : i + batch], return_tensors="pt", padding=True)
        out = model.generate(
            **enc,
            do_sample=sample,
            temperature=1.0 if sample else None,
            top_p=None,
            top_k=None,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        new = out[:, enc["input_ids"].shape[1] :]
        tokens += int((new != tokenizer.pad_token_id).sum())
        texts += tokenizer.batch_decode(new, skip_special_tokens=True)
    return texts, tokens


def style_of(completion: str) -> str:
    """``direct`` when the completion boxes an answer with no working before it, else ``worked``."""
    return "direct" if completion.lstrip().startswith("\\boxed") else "worked"


def greedy_accuracy(model, tokenizer, rows):
    prompts = [TOY_SOLVER.render(None, problem=r["problem"]) for r in rows]
    start = time.perf_counter()
    texts, tokens = complete(model, tokenizer, prompts)
    seconds = time.perf_counter() - start
    by_level, by_style = collections.defaultdict(list), collections.defaultdict(list)
    for row, text in zip(rows, texts, strict=True):
        right = grade(boxed_answer(text), row["answer"])
        by_level[row["extra"]["level"]].append(right)
        by_style[style_of(text)].append(right)
    per_level = {k: sum(v) / len(v) for k, v in sorted(by_level.items())}
    overall = sum(sum(v) for v in by_level.values()) / len(rows)
    weighted = sum(w * per_level.get(k, 0.0) for k, w in zip(range(1, 6), DEFAULT_MIX, strict=True))
    return {
        "per_level": per_level,
        "counts": {k: len(v) for k, v in sorted(by_level.items())},
        "overall": overall,
        "mix_weighted": weighted,
        "styles": {
            k: {"share": len(v) / len(rows), "accuracy": sum(v) / len(v)}
            for k, v in by_style.items()
        },
        "generate_tokens_per_s": tokens / seconds,
    }


def sampled_accuracy(model, tokenizer, rows, k=8):
    """mean@k, maj@k and pass@k at T=1, and how many samples answer at once (``direct``)."""
    prompts = [TOY_SOLVER.render(None, problem=r["problem"]) for r in rows for _ in range(k)]
    texts, _ = complete(model, tokenizer, prompts, sample=True)
    mean = maj = any_right = direct = 0
    for i, row in enumerate(rows):
        group = texts[i * k : (i + 1) * k]
        answers = [parse_integer(boxed_answer(t)) for t in group]
        right = [grade(str(a), row["answer"]) if a is not None else False for a in answers]
        counts = collections.Counter(a for a in answers if a is not None)
        mean, any_right = mean + sum(right) / k, any_right + any(right)
        maj += bool(counts) and grade(str(counts.most_common(1)[0][0]), row["answer"])
        direct += sum(style_of(t) == "direct" for t in group)
    n = len(rows)
    return {
        f"mean@{k}": mean / n,
        f"maj@{k}": maj / n,
        f"pass@{k}": any_right / n,
        "direct_share": direct / (n * k),
    }


def vote_band(model, tokenizer, rows, m=10, band=(0.3, 0.7)):
    """Fraction of questions whose majority share (unanswered votes count in m) is in band."""
    prompts = [TOY_SOLVER.render(None, problem=r["problem"]) for r in rows for _ in range(m)]
    texts, _ = complete(model, tokenizer, prompts, sample=True)
    shares, label_right = [], 0
    for i, row in enumerate(rows):
        answers = [parse_integer(boxed_answer(t)) for t in texts[i * m : (i + 1) * m]]
        counts = collections.Counter(a for a in answers if a is not None)
        label, top = counts.most_common(1)[0] if counts else (None, 0)
        shares.append(top / m)
        label_right += label is not None and grade(str(label), row["answer"])
    inside = sum(band[0] <= s <= band[1] for s in shares) / len(rows)
    return {
        "in_band": inside,
        "mean_share": sum(shares) / len(rows),
        "label_accuracy": label_right / len(rows),
    }


def question_writing(model, tokenizer, n=200):
    texts, _ = complete(model, tokenizer, [TOY_CHALLENGER.render(None)] * n, sample=True)
    good, own_right, questions = 0, 0, []
    for text in texts:
        match = re.fullmatch(
            r"<question>(What is [^<]*\?)</question> \\boxed\{([^}]*)\}", text.strip()
        )
        value = evaluate_expression(question_expression(match.group(1))) if match else None
        if value is not None:
            good += 1
            questions.append(match.group(1))
            own_right += grade(match.group(2), value)
    return {
        "well_formed": good / n,
        "distinct": len(set(questions)) / max(1, len(questions)),
        "own_answer_right": own_right / max(1, good),
        "held_out_share": sum(map(is_held_out, questions)) / max(1, len(questions)),
        "examples": questions[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="xs")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=500, help="held-out benchmark questions")
    parser.add_argument("--band_questions", type=int, default=200, help="L3 questions voted on")
    parser.add_argument("--cache_dir", default=None)
    args = parser.parse_args()
    torch.manual_seed(0)
    source = ToyModel(size=args.size, steps=args.steps, seed=args.seed, cache_dir=args.cache_dir)
    model, tokenizer = source.load()
    model.eval()
    with open(f"{source.path}/toy_model.json") as f:
        report = {"model": source.path, "build": json.load(f)["stats"]}
    rows = toy_benchmark(args.n)
    report["greedy"] = greedy_accuracy(model, tokenizer, rows)
    report["sampled"] = sampled_accuracy(model, tokenizer, rows)
    l3 = toy_benchmark(args.band_questions, seed=99, mix=(0, 0, 1, 0, 0))
    report["l3_votes"] = vote_band(model, tokenizer, l3)
    report["questions"] = question_writing(model, tokenizer)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
