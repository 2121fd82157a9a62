"""Repetition penalty: rzero_pl.rewards vs the reference's nltk loop + scikit-learn clustering.

The reference (R-Zero's ``caller_penalty.py``) calls nltk ``sentence_bleu`` once per pair of
questions, i < j, then clusters with ``AgglomerativeClustering(linkage="average")``. At the
training batch of 2048 questions that is 2,096,128 nltk calls. Batches up to ``--full-max`` run
the reference in full and the penalties are compared; larger ones time nltk on a random
sample of pairs and extrapolate linearly in the number of pairs (said so in the table).

    python bench/bench_repetition.py                 # sizes 256 1024 2048, full reference at 256
    python bench/bench_repetition.py --full-max 1024 # also run the reference in full at 1024

Needs nltk and scikit-learn (the ``dev`` extra).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections import Counter

import numpy as np
import scipy
import sklearn
from nltk import __version__ as nltk_version
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from sklearn.cluster import AgglomerativeClustering

from rzero_pl.rewards.repetition import bleu_distance_matrix, cluster_labels, repetition_penalty

# A math-flavoured vocabulary: frequent function words, problem-setting words, symbols and
# numbers, drawn with Zipf-like frequencies so that "the", "of", "$x$" recur as they do.
_WORDS = (
    "the of a and to in is be let that for if with are by find what how many such than each "
    "number integer integers positive real value values sum product all there exists where "
    "which prove determine compute largest smallest possible distinct prime primes divisible "
    "remainder when divided triangle circle square radius area perimeter angle side sides "
    "length point points line lines polynomial roots root coefficients equation equations "
    "function functions sequence terms term defined satisfies satisfying probability random "
    "chosen uniformly expected ways arrange arrangements choose committee grid board coins "
    "$x$ $y$ $n$ $k$ $a$ $b$ $c$ $p$ $f(x)$ $x^2$ $n!$ $\\frac{1}{2}$ $\\sqrt{2}$ = + - < > "
    "( ) , . ? : ; at least most exactly two three four five ten hundred digits digit base "
    "modulo mod gcd lcm consecutive odd even perfect cube fraction expressed form where "
    "relatively rational irrational inscribed tangent chord diameter center vertices edges"
).split()


def make_questions(n: int, seed: int = 0, mean_words: int = 60) -> list[str]:
    """``n`` synthetic questions of ~60 words: 20 % near-duplicates (10 % of words changed)
    of an earlier question, 3 % exact duplicates, 2 % empty (format failures)."""
    rng = np.random.default_rng(seed)
    vocab = (
        _WORDS + [str(i) for i in range(1000)] + [f"${v}_{i}$" for v in "xyz" for i in range(50)]
    )
    p = 1.0 / np.arange(1, len(vocab) + 1) ** 1.05
    p /= p.sum()
    out: list[str] = []
    for _ in range(n):
        u = rng.random()
        if out and u < 0.20:
            words = out[rng.integers(len(out))].split() or ["empty"]
            for i in rng.integers(0, len(words), max(1, len(words) // 10)):
                words[i] = vocab[rng.choice(len(vocab), p=p)]
            out.append(" ".join(words))
        elif out and u < 0.23:
            out.append(out[rng.integers(len(out))])
        elif u < 0.25:
            out.append("")
        else:
            length = max(8, int(rng.normal(mean_words, 15)))
            out.append(" ".join(vocab[j] for j in rng.choice(len(vocab), size=length, p=p)))
    return out


def reference_distances(texts: list[str]) -> np.ndarray:
    """The reference's ``_bleu_distance_matrix``: one nltk call per pair i < j."""
    n = len(texts)
    smoother = SmoothingFunction().method1
    tokens = [t.split() for t in texts]
    d = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            score = sentence_bleu([tokens[j]], tokens[i], smoothing_function=smoother)
            d[i, j] = d[j, i] = 1 - score
    return d


def reference_penalty(d: np.ndarray) -> np.ndarray:
    labels = AgglomerativeClustering(
        n_clusters=None, distance_threshold=0.5, metric="precomputed", linkage="average"
    ).fit_predict(d)
    sizes = Counter(labels)
    return np.array([sizes[label] / len(labels) for label in labels])


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 2048])
    parser.add_argument("--full-max", type=int, default=256, help="largest full reference run")
    parser.add_argument("--sample-pairs", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3, help="ours: best of this many runs")
    args = parser.parse_args()

    print(
        f"cpu cores: {os.cpu_count()}, python {platform.python_version()}, numpy {np.__version__},"
        f" scipy {scipy.__version__}, scikit-learn {sklearn.__version__}, nltk {nltk_version}"
    )
    header = (
        "| batch | pairs | ours: BLEU matrix | ours: clusters | ours: total "
        "| reference: nltk BLEU | reference: sklearn | reference: total | speed-up | check |"
    )
    print(header)
    print("|" + "---|" * 10)
    rng = np.random.default_rng(1)
    for n in args.sizes:
        texts = make_questions(n)
        pairs = n * (n - 1) // 2
        best = [np.inf, np.inf, np.inf]
        for _ in range(args.repeats):
            d, t_bleu = timed(bleu_distance_matrix, texts)
            labels, t_cluster = timed(cluster_labels, d, 0.5)
            penalty, t_total = timed(repetition_penalty, texts)
            best = [min(best[0], t_bleu), min(best[1], t_cluster), min(best[2], t_total)]

        if n <= args.full_max:
            d_ref, t_ref_bleu = timed(reference_distances, texts)
            penalty_ref, t_ref_cluster = timed(reference_penalty, d_ref)
            max_d = float(np.abs(d - d_ref).max())
            same = bool(np.array_equal(penalty, penalty_ref))
            check = f"penalties {'identical' if same else 'DIFFER'}, max abs d diff {max_d:.1e}"
            ref_bleu = f"{t_ref_bleu:.2f} s"
        else:
            # time nltk on sampled pairs; extrapolate to all pairs; cluster the exact matrix
            k = min(args.sample_pairs, pairs)
            i = rng.integers(0, n, 4 * k)
            j = rng.integers(0, n, 4 * k)
            keep = i < j
            i, j = i[keep][:k], j[keep][:k]
            smoother = SmoothingFunction().method1
            tokens = [t.split() for t in texts]
            start = time.perf_counter()
            sampled = [
                1 - sentence_bleu([tokens[b]], tokens[a], smoothing_function=smoother)
                for a, b in zip(i, j, strict=True)
            ]
            t_ref_bleu = (time.perf_counter() - start) * pairs / len(i)
            penalty_sk, t_ref_cluster = timed(reference_penalty, d)
            max_d = float(np.abs(d[i, j] - np.array(sampled)).max())
            same = bool(np.array_equal(penalty, penalty_sk))
            check = (
                f"{len(i)} sampled pairs: max abs d diff {max_d:.1e}; sklearn on our matrix: "
                f"penalties {'identical' if same else 'DIFFER'}"
            )
            ref_bleu = f"~{t_ref_bleu:.0f} s (extrapolated)"
        t_ref = t_ref_bleu + t_ref_cluster
        print(
            f"| {n} | {pairs:,} | {best[0]:.3f} s | {best[1]:.3f} s | {best[2]:.3f} s "
            f"| {ref_bleu} | {t_ref_cluster:.3f} s | {'~' if n > args.full_max else ''}"
            f"{t_ref:.1f} s | {t_ref / best[2]:.0f}x | {check} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
