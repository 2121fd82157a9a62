"""The repetition term: BLEU-distance clusters of a rollout batch's questions.

The paper's repetition penalty (arXiv 2508.05004, the challenger's reward in its method
section) as the released code computes it (Chengsong-Huang/R-Zero at commit ``5699329``,
``examples/reward_function/caller_penalty.py``: ``_bleu_distance_matrix`` and
``cluster_share_per_problem``). Everything here is numpy on whole batches: a rollout batch of
the reference run holds 2048 questions, and every question is compared with every other one.
Two questions are close when their BLEU is high:
``d_ij = 1 - BLEU(hypothesis=x_i, reference=x_j)`` for ``i < j``, mirrored into ``d_ji`` (BLEU is
not symmetric; the reference scores each pair once, the earlier text as the hypothesis). BLEU is
nltk's ``sentence_bleu`` with whitespace tokens, uniform 1–4-gram weights, one reference, the
brevity penalty and ``SmoothingFunction().method1`` (ε = 0.1 added to zero match counts). The
questions are clustered by average linkage, merging while the average distance is below 0.5,
and each question's penalty is the size of its cluster over the batch size.

The reference calls nltk once per pair, about 2.1 M calls per batch of 2048. Here the clipped
n-gram matches of all pairs come from a few matrix products instead (see
``_clipped_match_counts``); the result equals nltk's to rounding (tested to 1e-9).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.cluster.hierarchy import linkage

from rzero_pl.errors import check_number

BLEU_MAX_ORDER = 4  # uniform weights 1/4 over 1..4-grams, nltk's default
BLEU_EPSILON = 0.1  # SmoothingFunction().method1: a zero match count becomes 0.1
REPETITION_THRESHOLD = 0.5  # average-linkage merges happen while the distance is < 0.5


def bleu(hypothesis: Sequence[str], reference: Sequence[str]) -> float:
    """Sentence BLEU of one tokenised hypothesis against one reference, as nltk computes it.

    Equal to ``nltk.translate.bleu_score.sentence_bleu([reference], hypothesis,
    smoothing_function=SmoothingFunction().method1)``:

    - ``p_n`` = clipped n-gram matches / max(1, hypothesis n-grams), n = 1..4;
    - a zero match count is smoothed to ``0.1 / max(1, hypothesis n-grams)``;
    - no unigram match at all (an empty hypothesis or reference included) gives 0;
    - brevity penalty ``exp(1 - r / c)`` when the hypothesis length c is <= the reference
      length r (1 when c > r);
    - BLEU = BP * exp(sum_n log(p_n) / 4).
    """
    hyp_len, ref_len = len(hypothesis), len(reference)
    log_sum = 0.0
    for n in range(1, BLEU_MAX_ORDER + 1):
        hyp_counts = Counter(_ngrams(hypothesis, n))
        ref_counts = Counter(_ngrams(reference, n))
        matches = sum(min(c, ref_counts[g]) for g, c in hyp_counts.items())
        total = max(1, hyp_len - n + 1)
        if matches == 0:
            if n == 1:
                return 0.0
            log_sum += math.log(BLEU_EPSILON / total) / BLEU_MAX_ORDER
        else:
            log_sum += math.log(matches / total) / BLEU_MAX_ORDER
    return _brevity_penalty(hyp_len, ref_len) * math.exp(log_sum)


def _ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def _brevity_penalty(hyp_len: int, ref_len: int) -> float:
    if hyp_len > ref_len:
        return 1.0
    if hyp_len == 0:
        return 0.0
    return math.exp(1 - ref_len / hyp_len)


def bleu_distance_matrix(texts: Sequence[str]) -> np.ndarray:
    """``[n, n]`` float64 distances ``1 - BLEU`` between whitespace-tokenised texts.

    Entry ``[i, j]`` for ``i < j`` is ``1 - bleu(texts[i].split(), texts[j].split())`` (the
    earlier text is the hypothesis), mirrored into ``[j, i]``; the diagonal is 0. Two empty
    texts are at distance 1 from each other and from everything else.
    """
    n = len(texts)
    if n == 0:
        return np.zeros((0, 0))
    tokens = [t.split() for t in texts]
    lengths = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=n)
    matches = _clipped_match_counts(tokens, lengths)

    # Per row (hypothesis) every precision is (count / total): look the logs up in a small
    # table indexed by the match count instead of taking 4 n^2 logarithms. The values are the
    # ones nltk computes: log of the correctly rounded ratio, and log(0.1 / total) for a zero.
    log_sum = np.zeros((n, n))
    for order, m in enumerate(matches, start=1):
        total = np.maximum(1, lengths - order + 1)[:, None]  # [n, 1] hypothesis n-grams
        with np.errstate(divide="ignore"):
            table = np.log(np.arange(int(m.max()) + 1)[None, :] / total)  # [n, max + 1]
        table[:, 0] = np.log(BLEU_EPSILON / total[:, 0])
        log_sum += np.take_along_axis(table, m, axis=1) / BLEU_MAX_ORDER

    # brevity penalty by (hypothesis length, reference length), also looked up
    distinct, length_index = np.unique(lengths, return_inverse=True)
    bp_table = np.array([[_brevity_penalty(int(c), int(r)) for r in distinct] for c in distinct])
    bp = bp_table[length_index[:, None], length_index[None, :]]
    score = np.where(matches[0] > 0, bp * np.exp(log_sum), 0.0)

    upper = np.triu(1.0 - score, k=1)
    return upper + upper.T


def _clipped_match_counts(tokens: list[list[str]], lengths: np.ndarray) -> list[np.ndarray]:
    """For n = 1..4, the ``[n_texts, n_texts]`` clipped match counts ``sum_g min(c_i[g], c_j[g])``.

    The trick: ``min(a, b) = sum_{k >= 1} [a >= k] [b >= k]``. Give every text one binary feature
    per (n-gram, k) with k = 1..count of that n-gram in the text: the k-th occurrence. Then the
    clipped match count of a pair is the number of features they share, a dot product of binary
    rows, and all pairs at once are ``X @ X.T``. Features that many texts share ("the", "of the")
    go through a dense BLAS product; the long tail through a sparse one, whose cost is the sum
    of squared document frequencies.
    """
    n = len(tokens)
    vocab: dict[str, int] = {}
    flat = np.fromiter(
        (vocab.setdefault(w, len(vocab)) for t in tokens for w in t),
        dtype=np.int64,
        count=int(lengths.sum()),
    )
    doc = np.repeat(np.arange(n, dtype=np.int64), lengths)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    pos = np.arange(flat.size, dtype=np.int64) - np.repeat(starts, lengths)
    remaining = np.repeat(lengths, lengths) - pos  # tokens left in the text from here

    counts = []
    gram = flat  # id of the n-gram starting at each position (valid while remaining >= n)
    for order in range(1, BLEU_MAX_ORDER + 1):
        if order > 1:
            # the n-gram at p is the (n-1)-gram at p followed by the word at p + n - 1; where
            # that word lies in the next text the position is invalid and dropped below
            last = np.zeros_like(flat)
            last[: max(0, flat.size - order + 1)] = flat[order - 1 :]
            key = gram * (len(vocab) + 1) + last
            _, gram = np.unique(key, return_inverse=True)
        valid = remaining >= order
        counts.append(_shared_features(doc[valid], gram[valid], n))
    return counts


def _shared_features(doc: np.ndarray, gram: np.ndarray, n: int) -> np.ndarray:
    """``[n, n]`` int32 counts of shared (gram, k-th occurrence) features between texts."""
    if doc.size == 0:
        return np.zeros((n, n), dtype=np.int32)
    # rank of each occurrence among equal (doc, gram) pairs: 0 for the first, 1 for the second…
    order = np.lexsort((gram, doc))
    d, g = doc[order], gram[order]
    new_run = np.ones(d.size, dtype=bool)
    new_run[1:] = (d[1:] != d[:-1]) | (g[1:] != g[:-1])
    run_start = np.maximum.accumulate(np.where(new_run, np.arange(d.size), 0))
    rank = np.arange(d.size) - run_start
    _, feature = np.unique(g * (rank.max() + 1) + rank, return_inverse=True)
    n_features = int(feature.max()) + 1

    df = np.bincount(feature, minlength=n_features)
    dense_cols = df >= max(8, n // 16)
    out = np.zeros((n, n), dtype=np.float32)  # integer counts far below 2**24: exact
    if dense_cols.any():
        col = np.cumsum(dense_cols) - 1
        keep = dense_cols[feature]
        x = np.zeros((n, int(dense_cols.sum())), dtype=np.float32)
        x[d[keep], col[feature[keep]]] = 1.0
        out += x @ x.T
    sparse_cols = ~dense_cols
    if sparse_cols.any():
        col = np.cumsum(sparse_cols) - 1
        keep = sparse_cols[feature]
        x = sp.csr_matrix(
            (np.ones(int(keep.sum()), dtype=np.float32), (d[keep], col[feature[keep]])),
            shape=(n, int(sparse_cols.sum())),
        )
        out += (x @ x.T).toarray()
    return out.astype(np.int32)


# --------------------------------------------------------------------------- clusters


def cluster_labels(distances: np.ndarray, threshold: float = REPETITION_THRESHOLD) -> np.ndarray:
    """Average-linkage clusters of a ``[n, n]`` distance matrix, as ``[n]`` int labels.

    Clusters merge while their average distance is strictly below ``threshold``. The
    partition equals ``sklearn.cluster.AgglomerativeClustering(n_clusters=None,
    distance_threshold=threshold, metric="precomputed", linkage="average")`` (label numbers
    may differ): sklearn builds the same scipy linkage from the upper triangle, counts the
    merges at distance ``>= threshold`` and undoes that many of the last merges; here the
    remaining first merges are replayed with a union-find.
    """
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"distances must be a square matrix, got shape {d.shape}")
    n = d.shape[0]
    if n < 2:
        return np.zeros(n, dtype=np.int64)
    z = linkage(d[np.triu_indices(n, k=1)], method="average")
    kept = (n - 1) - int(np.count_nonzero(z[:, 2] >= threshold))

    parent = np.arange(2 * n - 1)  # node n + r is the cluster made by merge r

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for r in range(kept):
        a, b = int(z[r, 0]), int(z[r, 1])
        parent[root(a)] = n + r
        parent[root(b)] = n + r
    roots = np.fromiter((root(i) for i in range(n)), dtype=np.int64, count=n)
    return np.unique(roots, return_inverse=True)[1]


def repetition_penalty(
    texts: Sequence[str], threshold: float = REPETITION_THRESHOLD, weight: float = 1.0
) -> np.ndarray:
    """``[n]`` penalties ``weight * |cluster(i)| / n`` over BLEU-distance clusters of ``texts``.

    ``n`` is the whole batch, empty texts (format failures) included; an empty text is at
    distance 1 from everything, so it sits alone in its cluster.
    """
    if not texts:
        return np.zeros(0)
    return cluster_penalties(cluster_labels(bleu_distance_matrix(texts), threshold), weight)


def cluster_penalties(labels: np.ndarray, weight: float = 1.0) -> np.ndarray:
    """``weight * |cluster(i)| / n`` for cluster labels ``[n]``."""
    return weight * np.bincount(labels)[labels] / len(labels)


def memory_similarity(texts: Sequence[str], memory: Sequence[str]) -> np.ndarray:
    """``[n, m]`` BLEU of each text (hypothesis) against each remembered question (reference),
    as ``bleu_distance_matrix`` scores a pair; an empty text has similarity 0 to everything."""
    if not texts or not memory:
        return np.zeros((len(texts), len(memory)))
    n = len(texts)
    distances = bleu_distance_matrix([*texts, *memory])
    return 1.0 - distances[:n, n:]


def memory_penalties(similarity: np.ndarray, weight_max: float, weight_mean: float) -> np.ndarray:
    """R-Diverse's memory term (arXiv 2602.13103): ``weight_max * max_j s_ij + weight_mean *
    mean_j s_ij`` over each question's similarities to the remembered questions (0 when
    nothing is remembered)."""
    if similarity.shape[1] == 0:
        return np.zeros(similarity.shape[0])
    return weight_max * similarity.max(axis=1) + weight_mean * similarity.mean(axis=1)


class RepetitionPenalty:
    """The challenger's ``repetition`` term: λ·|cluster| / batch size over BLEU clusters.

    Distances are ``1 - BLEU`` (whitespace tokens, uniform 1–4-gram weights, method1
    smoothing), clustered with average linkage at ``threshold``. Malformed completions count
    in the batch as empty questions, as in the reference. With several ranks the clusters and
    the denominator are those of the whole batch (every rank's questions).

    With ``memory_max`` or ``memory_mean`` above 0 the term also remembers earlier
    iterations' questions (R-Diverse's cross-iteration memory): each question adds its
    largest and mean BLEU similarity to that bank, so that rewriting last iteration's
    template in new variants stops paying. The evolution hands the bank over before each
    challenger phase (``remember``), from the run folder's earlier ``questions.jsonl``, so a
    resumed run remembers what the first did.

    Args:
        threshold: Average-linkage distance below which questions share a cluster.
        weight: λ, the penalty's scale (reference: 1).
        memory_max: Weight of the largest similarity to a remembered question (0: off).
        memory_mean: Weight of the mean similarity to the remembered questions (0: off).
        memory_size: At most this many remembered questions (a seeded sample of them).
    """

    def __init__(
        self,
        threshold: float = REPETITION_THRESHOLD,
        weight: float = 1.0,
        memory_max: float = 0.0,
        memory_mean: float = 0.0,
        memory_size: int = 512,
    ) -> None:
        check_number("RepetitionPenalty.threshold", threshold, above=0, at_most=1)
        check_number("RepetitionPenalty.weight", weight, at_least=0)
        check_number("RepetitionPenalty.memory_max", memory_max, at_least=0, at_most=10)
        check_number("RepetitionPenalty.memory_mean", memory_mean, at_least=0, at_most=10)
        check_number("RepetitionPenalty.memory_size", memory_size, at_least=1, at_most=8192)
        self.threshold = threshold
        self.weight = weight
        self.memory_max = memory_max
        self.memory_mean = memory_mean
        self.memory_size = memory_size
        self.memory: list[str] = []

    @property
    def remembers(self) -> bool:
        return self.memory_max > 0 or self.memory_mean > 0

    def remember(self, questions: Sequence[str], seed: int = 0) -> None:
        """Set the bank: at most ``memory_size`` of ``questions`` (distinct, non-empty),
        sampled with ``seed``."""
        distinct = sorted({q for q in questions if q})
        rng = np.random.default_rng(seed)
        if len(distinct) > self.memory_size:
            picked = rng.choice(len(distinct), self.memory_size, replace=False)
            distinct = [distinct[i] for i in sorted(picked)]
        self.memory = distinct

    def score(
        self, batch_questions: Sequence[str | None], offset: int, count: int
    ) -> tuple[np.ndarray, dict[str, float]]:
        """Penalties of questions ``offset … offset+count`` of the whole batch, and metrics."""
        start = time.perf_counter()
        texts = [q or "" for q in batch_questions]
        labels = cluster_labels(bleu_distance_matrix(texts), self.threshold)
        penalty = cluster_penalties(labels, self.weight)[offset : offset + count]
        sizes = np.bincount(labels)
        metrics = {
            "repetition/clusters": float(len(sizes)),
            "repetition/largest_cluster": float(sizes.max() / len(texts)),
        }
        if self.remembers and self.memory:
            mine = texts[offset : offset + count]
            similarity = memory_similarity(mine, self.memory)
            penalty = penalty + memory_penalties(similarity, self.memory_max, self.memory_mean)
            metrics["repetition/memory_max_similarity"] = float(similarity.max(axis=1).mean())
        metrics["repetition/seconds"] = time.perf_counter() - start
        return penalty, metrics
