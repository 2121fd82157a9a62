"""The challenger's reward terms against hand-computed numbers, nltk and scikit-learn."""

import math
import random

import numpy as np
import pytest

from rzero_pl.rewards import (
    QuestionFormat,
    RepetitionPenalty,
    bleu_distance_matrix,
    challenger_reward,
    cluster_labels,
    uncertainty,
)
from rzero_pl.rewards.repetition import (
    bleu,
    memory_penalties,
    memory_similarity,
    repetition_penalty,
)

# --------------------------------------------------------------------------- uncertainty


def test_uncertainty():
    np.testing.assert_allclose(
        uncertainty(np.array([0.0, 0.1, 0.3, 0.5, 0.7, 1.0])), [0.0, 0.2, 0.6, 1.0, 0.6, 0.0]
    )
    assert uncertainty(0.5) == 1.0


# --------------------------------------------------------------------------- format


@pytest.mark.parametrize(
    ("text", "last", "single"),
    [
        ("<question>What is 2+2?</question>\n\\boxed{4}", "What is 2+2?", "What is 2+2?"),
        ("think...\n<question>\n  Find x.\n</question> \\boxed{3}", "Find x.", "Find x."),
        ("<question>   </question>\\boxed{1}", "empty_question", "empty_question"),
        ("<question></question>\\boxed{1}", "empty_question", "empty_question"),
        ("<question>\u200b\ufeff\u2060</question>\\boxed{1}", "empty_question", "empty_question"),
        ("no tags at all \\boxed{1}", "no_question", "no_question"),
        ("<question>a</question><question>b</question>\\boxed{1}", "b", "several_questions"),
        ("<question>a <question>b</question>\\boxed{1}", "a <question>b", "several_questions"),
        (
            "<question>a</question><question>  </question>\\boxed{1}",
            "empty_question",
            "several_questions",
        ),
        ("<question>unclosed \\boxed{1}", "no_question", "no_question"),
        ("</question>reversed<question>\\boxed{1}", "no_question", "no_question"),
        ("<question>What is 2+2?</question> the answer is 4", "no_answer", "no_answer"),
        ("<question>What is 2+2?</question> \\boxed{ }", "no_answer", "no_answer"),
        (
            "<question>What is \\boxed{2+2}?</question>",
            "What is \\boxed{2+2}?",
            "What is \\boxed{2+2}?",
        ),  # the released code reads a box anywhere
    ],
)
def test_question_format(text, last, single):
    for blocks, want in (("last", last), ("single", single)):
        question, reason = QuestionFormat(blocks=blocks).parse(text)
        if want in ("no_question", "empty_question", "several_questions", "no_answer"):
            assert (question, reason) == (None, want), blocks
        else:
            assert (question, reason) == (want, "ok"), blocks
    assert QuestionFormat().parse(text)[0] == (
        None if last.endswith(("_question", "_answer")) else last
    )


def test_question_format_without_the_answer_rule():
    lenient = QuestionFormat(require_answer=False)
    assert lenient.parse("<question>What is 2+2?</question> the answer is 4") == (
        "What is 2+2?",
        "ok",
    )
    assert lenient.parse("<question>  </question>") == (None, "empty_question")
    with pytest.raises(ValueError, match="question_format.blocks"):
        QuestionFormat(blocks="first")


def test_question_blocks_reads_a_long_hostile_text_in_linear_time():
    import time

    text = "<question>" * 50_000 + "x" * 50_000  # 550 kB, no closing tag
    start = time.perf_counter()
    assert QuestionFormat().parse(text) == (None, "no_question")
    assert time.perf_counter() - start < 5.0  # quadratic scanning would take minutes


# --------------------------------------------------------------------------- BLEU by hand


def test_bleu_identical():
    assert bleu("a b c d".split(), "a b c d".split()) == pytest.approx(1.0, abs=1e-15)


def test_bleu_short_hypothesis():
    # p1..p3 = 3/3, 2/2, 1/1; no 4-gram: 0.1 / max(1, 0); BP = exp(1 - 4/3)
    expected = math.exp(1 - 4 / 3) * 0.1**0.25
    assert bleu("a b c".split(), "a b c d".split()) == pytest.approx(expected, rel=1e-12)


def test_bleu_clipped_counts_and_smoothing():
    # "the" clipped to 1 of 4; bigrams 0/3, trigrams 0/2, 4-grams 0/1 -> 0.1/3, 0.1/2, 0.1/1;
    # hypothesis longer than reference: BP = 1
    expected = (1 / 4 * 0.1 / 3 * 0.1 / 2 * 0.1 / 1) ** 0.25
    assert bleu("the the the the".split(), "the cat".split()) == pytest.approx(expected, 1e-12)


def test_bleu_single_word():
    # p1 = 1/1, p2..p4 = 0.1/1 each; BP = exp(1 - 2/1)
    assert bleu(["a"], ["a", "b"]) == pytest.approx(math.exp(-1) * 0.1**0.75, rel=1e-12)


def test_bleu_partial_match():
    # hyp "a b x d" vs ref "a b c d": p1 3/4, p2 1/3 (a b), p3 0 -> 0.1/2, p4 0 -> 0.1/1, BP 1
    expected = (3 / 4 * 1 / 3 * 0.1 / 2 * 0.1 / 1) ** 0.25
    assert bleu("a b x d".split(), "a b c d".split()) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("hyp", "ref"), [([], ["a"]), (["a"], []), ([], []), (["a", "b"], ["c", "d"])]
)
def test_bleu_zero_without_unigram_match(hyp, ref):
    assert bleu(hyp, ref) == 0.0


# --------------------------------------------------------------------------- BLEU vs nltk


def random_texts(seed, count):
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(40)]
    texts = []
    for _ in range(count):
        length = rng.choice([0, 1, 2, 3, 4, 5, 7, 12, 25, 60])
        words = vocab[: rng.choice([2, 6, 40])]  # small vocabularies force repeated n-grams
        texts.append(" ".join(rng.choice(words) for _ in range(length)))
    texts += texts[: count // 5]  # exact duplicates
    texts += ["  ", "w1\tw2  w1\n"]  # whitespace only; other whitespace
    rng.shuffle(texts)
    return texts


@pytest.fixture(scope="module")
def nltk_bleu():
    bleu_score = pytest.importorskip("nltk.translate.bleu_score")
    smoothing = bleu_score.SmoothingFunction().method1

    def score(hyp, ref):
        return bleu_score.sentence_bleu([ref], hyp, smoothing_function=smoothing)

    return score


@pytest.mark.parametrize("seed", [0, 1])
def test_bleu_matches_nltk(nltk_bleu, seed):
    texts = random_texts(seed, 60)
    for i, a in enumerate(texts):
        for b in texts[i + 1 :]:
            assert bleu(a.split(), b.split()) == pytest.approx(
                nltk_bleu(a.split(), b.split()), abs=1e-12
            )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bleu_distance_matrix_matches_nltk(nltk_bleu, seed):
    texts = random_texts(seed, 100)
    d = bleu_distance_matrix(texts)
    n = len(texts)
    expected = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            expected[i, j] = expected[j, i] = 1 - nltk_bleu(texts[i].split(), texts[j].split())
    np.testing.assert_allclose(d, expected, rtol=0, atol=1e-9)


def test_bleu_distance_matrix_long_texts_match_bleu():
    # long texts over a skewed vocabulary: frequent n-grams take the dense path
    rng = np.random.default_rng(0)
    vocab = np.array([f"v{i}" for i in range(300)])
    p = 1 / np.arange(1, 301)
    p /= p.sum()
    texts = [" ".join(rng.choice(vocab, size=rng.integers(30, 90), p=p)) for _ in range(80)]
    d = bleu_distance_matrix(texts)
    for i, j in zip(*np.triu_indices(len(texts), k=1), strict=True):
        assert d[i, j] == pytest.approx(1 - bleu(texts[i].split(), texts[j].split()), abs=1e-12)


def test_bleu_distance_matrix_shape_and_edges():
    d = bleu_distance_matrix(["a b c d", "a b c d", "", ""])
    np.testing.assert_allclose(
        d, [[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 1], [1, 1, 1, 0]], atol=1e-15
    )
    assert bleu_distance_matrix([]).shape == (0, 0)
    np.testing.assert_array_equal(bleu_distance_matrix(["a"]), [[0.0]])


def test_bleu_distance_matrix_earlier_text_is_hypothesis():
    # BLEU("a b c" | "a b c d") != BLEU("a b c d" | "a b c"); the pair is scored once, hyp = [0]
    d = bleu_distance_matrix(["a b c", "a b c d"])
    expected = 1 - bleu("a b c".split(), "a b c d".split())
    assert d[0, 1] == d[1, 0] == pytest.approx(expected, abs=1e-15)
    d = bleu_distance_matrix(["a b c d", "a b c"])
    assert d[0, 1] == pytest.approx(1 - bleu("a b c d".split(), "a b c".split()), abs=1e-15)


# --------------------------------------------------------------------------- clusters


def same_partition(a, b):
    def canonical(labels):
        first = {}
        return [first.setdefault(int(x), len(first)) for x in labels]

    return canonical(a) == canonical(b)


def sklearn_labels(d, threshold):
    cluster = pytest.importorskip("sklearn.cluster")
    return cluster.AgglomerativeClustering(
        n_clusters=None, distance_threshold=threshold, metric="precomputed", linkage="average"
    ).fit_predict(d)


def symmetric(values):
    d = np.triu(values, k=1)
    return d + d.T


@pytest.mark.parametrize("seed", range(8))
def test_cluster_labels_match_sklearn_random(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 60))
    d = symmetric(rng.random((n, n)) * rng.choice([0.8, 1.0, 1.5]))
    for threshold in (0.1, 0.3, 0.5, 0.7):
        assert same_partition(cluster_labels(d, threshold), sklearn_labels(d, threshold))


@pytest.mark.parametrize("seed", range(8))
def test_cluster_labels_match_sklearn_with_ties_at_threshold(seed):
    # distances from a small grid: many merges happen at exactly the threshold 0.5
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(2, 40))
    d = symmetric(rng.choice([0.25, 0.5, 0.5, 0.75], size=(n, n)))
    labels = cluster_labels(d, 0.5)
    assert same_partition(labels, sklearn_labels(d, 0.5))


def test_cluster_labels_strict_threshold():
    d = np.array([[0.0, 0.5], [0.5, 0.0]])
    assert len(set(cluster_labels(d, 0.5))) == 2  # 0.5 is not < 0.5: no merge
    assert len(set(cluster_labels(d, 0.5000001))) == 1
    assert same_partition(cluster_labels(d, 0.5), sklearn_labels(d, 0.5))


def test_cluster_labels_average_linkage_by_hand():
    # 0-1 at 0.2 merge first; {0,1}-2 average (0.4 + 0.7) / 2 = 0.55; 3 is far from all
    d = np.array([[0, 0.2, 0.4, 0.9], [0.2, 0, 0.7, 0.9], [0.4, 0.7, 0, 0.9], [0.9, 0.9, 0.9, 0]])
    assert same_partition(cluster_labels(d, 0.5), [0, 0, 1, 2])
    assert same_partition(cluster_labels(d, 0.6), [0, 0, 0, 1])
    assert same_partition(cluster_labels(d, 0.95), [0, 0, 0, 0])


def test_cluster_labels_small_and_bad_inputs():
    assert cluster_labels(np.zeros((0, 0))).shape == (0,)
    np.testing.assert_array_equal(cluster_labels(np.zeros((1, 1))), [0])
    with pytest.raises(ValueError):
        cluster_labels(np.zeros((2, 3)))


def test_repetition_penalty_matches_reference_pipeline(nltk_bleu):
    texts = random_texts(3, 80)
    n = len(texts)
    d = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            d[i, j] = d[j, i] = 1 - nltk_bleu(texts[i].split(), texts[j].split())
    labels = sklearn_labels(d, 0.5)
    sizes = {label: int((labels == label).sum()) for label in labels}
    expected = [sizes[label] / n for label in labels]
    np.testing.assert_allclose(repetition_penalty(texts), expected, rtol=0, atol=1e-15)


# --------------------------------------------------------------------------- repetition


def test_repetition_penalty_by_hand():
    texts = ["a b c d e f", "a b c d e f", "x y z w v u", ""]
    np.testing.assert_allclose(repetition_penalty(texts), [2 / 4, 2 / 4, 1 / 4, 1 / 4])
    np.testing.assert_allclose(repetition_penalty(texts, weight=0.5), [1 / 4, 1 / 4, 1 / 8, 1 / 8])


def test_repetition_penalty_near_duplicates():
    # one word changed in 8: BLEU well above 0.5, so the two share a cluster
    a = "let n be the number of ways to tile a board"
    b = "let m be the number of ways to tile a board"
    assert 1 - bleu(a.split(), b.split()) < 0.5
    np.testing.assert_allclose(repetition_penalty([a, b, "what is 2 + 2 ?"]), [2 / 3, 2 / 3, 1 / 3])


def test_repetition_penalty_small_batches():
    assert repetition_penalty([]).shape == (0,)
    np.testing.assert_allclose(repetition_penalty(["only one"]), [1.0])
    np.testing.assert_allclose(repetition_penalty(["", ""]), [0.5, 0.5])  # empties never merge


# --------------------------------------------------------------------------- combination


def test_challenger_reward_paper():
    share = np.array([0.5, 0.3, 0.9, 0.5, np.nan])
    repetition = np.array([0.25, 0.25, 0.5, 0.0, 0.25])
    valid = np.array([True, True, True, True, False])
    # uncertainty 1.0, 0.6, 0.2, 1.0; minus repetition, floored at 0; invalid -> 0
    np.testing.assert_allclose(
        challenger_reward(share, repetition, valid), [0.75, 0.35, 0.0, 1.0, 0.0]
    )


def test_challenger_reward_reference():
    share = np.array([0.5, 0.3, 0.9, np.nan])
    repetition = np.array([0.25, 0.25, 0.5, 0.25])
    valid = np.array([True, True, True, False])
    # min(p, 1 - p) - repetition, not floored; invalid -> -1 - repetition
    np.testing.assert_allclose(
        challenger_reward(share, repetition, valid, form="reference"),
        [0.25, 0.05, -0.4, -1.25],
    )


def test_challenger_reward_gated():
    from rzero_pl.rewards import released_gate

    # own boxed answers "12", "7", "x+7", None (the release reads "None": last character "e")
    gate = released_gate(["2", "7", "7", "e", None], ["12", "7", "x+7", None, "5"])
    assert gate.tolist() == [True, True, True, True, False]
    share = np.array([0.3, 0.1, 0.8, 0.6, 0.5, np.nan])
    gate = np.array([True, True, False, True, False, False])
    repetition = np.array([0.25, 0.0, 0.25, 0.5, 0.0, 0.25])
    valid = np.array([True, True, True, True, True, False])
    # 0.3 counts: min(0.3, 0.7) - 0.25 = 0.05; 0.1 is not above 0.1: 0; gate off: 0 - 0.25;
    # 0.6 counts: 0.4 - 0.5 = -0.1; gate off: 0; invalid: -1 - 0.25
    np.testing.assert_allclose(
        challenger_reward(share, repetition, valid, form="gated", gate=gate),
        [0.05, 0.0, -0.25, -0.1, 0.0, -1.25],
    )
    with pytest.raises(ValueError, match="gate"):
        challenger_reward(share, repetition, valid, form="gated")


def test_challenger_reward_unknown_form():
    with pytest.raises(ValueError):
        challenger_reward(np.zeros(1), np.zeros(1), np.ones(1, dtype=bool), form="clipped")


def test_unanswered_votes_count_in_m_but_form_no_cluster():
    from rzero_pl.grading.votes import majority_votes

    # 5 votes without a box, 5 distinct answers: p-hat is 1/10 (the released code: 5/10,
    # its "None" cluster wins); the reward is then 0.2 instead of the best possible 1.
    (vote,) = majority_votes([[None] * 5 + ["1", "2", "3", "4", "5"]], timeout=5.0)
    assert vote.share == pytest.approx(0.1) and vote.label in {"1", "2", "3", "4", "5"}
    assert uncertainty(vote.share) == pytest.approx(0.2)
    (none,) = majority_votes([[None] * 4], timeout=5.0)
    assert none.label is None and none.share == 0.0


# --------------------------------------------------------------------------- memory (issue 28)


def test_memory_similarity_by_hand():
    memory = ["what is two plus two", "name a prime"]
    similarity = memory_similarity(["what is two plus two", "blue green red", ""], memory)
    assert similarity.shape == (3, 2)
    assert similarity[0, 0] == pytest.approx(1.0)  # the same question
    assert similarity[1].tolist() == [0.0, 0.0]  # no word in common: BLEU 0
    assert similarity[2].tolist() == [0.0, 0.0]  # a malformed (empty) question
    # "name a prime" vs "what is two plus two": no unigram match
    assert similarity[0, 1] == 0.0
    assert memory_similarity(["a b"], []).shape == (1, 0)


def test_memory_penalties_by_hand():
    similarity = np.array([[1.0, 0.0, 0.5], [0.2, 0.2, 0.2]])
    # row 0: 0.5 * 1.0 + 0.25 * 0.5 = 0.625; row 1: 0.5 * 0.2 + 0.25 * 0.2 = 0.15
    assert memory_penalties(similarity, 0.5, 0.25) == pytest.approx([0.625, 0.15])
    assert memory_penalties(np.zeros((2, 0)), 0.5, 0.25).tolist() == [0.0, 0.0]


def test_the_penalty_adds_the_memory_term_only_when_it_remembers():
    batch = ["what is two plus two", "blue green red", "what is two plus two"]
    plain = RepetitionPenalty()
    base, _ = plain.score(batch, 0, 3)
    remembering = RepetitionPenalty(memory_max=0.5, memory_mean=0.5)
    same, _ = remembering.score(batch, 0, 3)  # nothing remembered yet: the plain term
    assert same.tolist() == base.tolist()
    remembering.remember(["what is two plus two", "", "what is two plus two"])
    assert remembering.memory == ["what is two plus two"]  # distinct, non-empty
    penalty, metrics = remembering.score(batch, 1, 2)  # this rank's questions 1 and 2
    assert penalty == pytest.approx(base[1:] + np.array([0.0, 1.0]))
    assert metrics["repetition/memory_max_similarity"] == pytest.approx(0.5)


def test_remember_keeps_a_seeded_sample_of_at_most_memory_size():
    penalty = RepetitionPenalty(memory_max=1.0, memory_size=3)
    questions = [f"question {k}" for k in range(10)]
    penalty.remember(questions, seed=2)
    first = list(penalty.memory)
    assert len(first) == 3 and set(first) <= set(questions)
    penalty.remember(list(reversed(questions)), seed=2)  # the same bank whatever the order
    assert penalty.memory == first
    with pytest.raises(ValueError, match="RepetitionPenalty.memory_size"):
        RepetitionPenalty(memory_size=0)


# --------------------------------------------------------------------- settings said once


def test_the_grading_timeout_default_is_said_once():
    """Every grading signature defaults to the one constant (a literal 5.0 is another object)."""
    import dataclasses
    import inspect

    from rzero_pl.benchmarks.graders import grade, grade_many, grade_math
    from rzero_pl.grading.answers import (
        ANSWER_TIMEOUT,
        equivalent,
        equivalent_many,
        matches,
        matches_many,
    )
    from rzero_pl.grading.votes import majority_votes
    from rzero_pl.grpo.solver import SolverGRPO, correctness_rewards
    from rzero_pl.rewards import SolverReading

    graders = (matches, matches_many, equivalent, equivalent_many, majority_votes)
    for fn in (*graders, grade, grade_many, grade_math, correctness_rewards):
        assert inspect.signature(fn).parameters["timeout"].default is ANSWER_TIMEOUT, fn
    answer_timeout = inspect.signature(SolverGRPO).parameters["answer_timeout"]
    assert answer_timeout.default is ANSWER_TIMEOUT
    field = {f.name: f for f in dataclasses.fields(SolverReading)}["timeout"]
    assert field.default is ANSWER_TIMEOUT


def test_the_solvers_timeout_and_budget_reach_its_votes_and_its_evaluation():
    from rzero_pl.benchmarks.evaluation import Evaluation
    from rzero_pl.rewards import MajorityVote, RoleSampling, SolverReading
    from rzero_pl.toy import TOY_SOLVER

    reading = SolverReading(TOY_SOLVER, timeout=2.5, max_new_tokens=7)
    vote, evaluation = MajorityVote().bound_to(reading), Evaluation(["toy"]).bound_to(reading)
    assert vote.timeout == evaluation.timeout == 2.5
    assert vote.sampling.max_new_tokens == evaluation.sampling.max_new_tokens == 7
    assert (vote.sampling.top_k, vote.sampling.n) == (40, 10)  # the vote's own knobs stay
    # A budget set on the vote or the evaluation still wins.
    own = MajorityVote(sampling=RoleSampling(top_k=40, max_new_tokens=3)).bound_to(reading)
    assert own.sampling.max_new_tokens == 3
    assert Evaluation(["toy"], max_new_tokens=9).bound_to(reading).sampling.max_new_tokens == 9
    # Unbound, nothing is guessed: one line naming the key.
    with pytest.raises(ValueError, match="not bound to a solver"):
        MajorityVote().sampling  # noqa: B018
    with pytest.raises(ValueError, match="Evaluation.max_new_tokens: not set"):
        Evaluation(["toy"]).sampling  # noqa: B018
    with pytest.raises(ValueError, match="MajorityVote.sampling.max_new_tokens: not set"):
        MajorityVote().bound_to(SolverReading(TOY_SOLVER))


def test_the_curriculum_writes_with_the_challengers_budget_unless_it_sets_one():
    from rzero_pl.curriculum import ChallengerWriting, Curriculum
    from rzero_pl.rewards import RoleSampling
    from rzero_pl.toy import TOY_CHALLENGER

    writing = ChallengerWriting(TOY_CHALLENGER, QuestionFormat(), None, 64)
    sampling = Curriculum().bound_to(writing).challenger_sampling
    assert (sampling.top_p, sampling.max_new_tokens) == (0.95, 64)
    own = Curriculum(challenger_sampling=RoleSampling(max_new_tokens=5)).bound_to(writing)
    assert own.challenger_sampling.max_new_tokens == 5
    with pytest.raises(ValueError, match="not bound to a challenger"):
        Curriculum().challenger_sampling  # noqa: B018


def test_role_sampling_checks_its_knobs_and_resolves_to_plain_sampling():
    from rzero_pl.engines.base import SamplingParams
    from rzero_pl.rewards import RoleSampling

    with pytest.raises(ValueError, match="sampling.top_p"):
        RoleSampling(top_p=2.0)
    with pytest.raises(ValueError, match="sampling.max_new_tokens"):
        RoleSampling(max_new_tokens=0)
    resolved = RoleSampling(top_k=40).with_budget(96)
    assert type(resolved) is SamplingParams
    assert resolved == SamplingParams(top_k=40, max_new_tokens=96)
    assert RoleSampling.of(SamplingParams(max_new_tokens=4)).with_budget(96).max_new_tokens == 4
