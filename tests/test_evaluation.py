"""Evaluation: the torchmetrics figures, rank sharding, the Hub mapping, end to end.

The end-to-end test scores the tiny random Llama on five problems of two real local
benchmarks (skipped without them); the others build their own rows. Nothing touches the Hub.
"""

from __future__ import annotations

import datetime
import json
import math
import sys
import types
from pathlib import Path

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp
from builders import KeyedEngine

from rzero_pl.benchmarks import (
    ENV_ROOT,
    BenchmarkAccuracy,
    accuracy_interval,
    benchmark_root,
    extract_answer,
    get_benchmark,
    grade,
    load_rows,
    mean_interval,
    mean_interval_from_sums,
    rows_from_table,
    score,
    wilson_interval,
)
from rzero_pl.benchmarks.evaluation import Evaluation, eval_metrics, evaluate
from rzero_pl.cli import main
from rzero_pl.engines.base import SamplingParams

ROOT = Path(__file__).resolve().parents[1]
MODEL = "--actor.policy.init_args.model"


def _write_rows(root: Path, name: str, rows: list[dict]) -> None:
    path = root / name / "test.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


MC_SAID = ("\\boxed{B}", "The answer is (B).", "\\boxed{C}", "\\boxed{C}", "no idea")


def _suite(root: Path) -> dict[str, str]:
    """gsm8k (7 rows, 0/2/4/6 right), mmlu_pro (5 rows, 0/1 right, 4 unreadable), supergpqa
    (1 row, right): uneven shards, one of them empty. Returns the fake engine's answers."""
    gsm = [{"id": f"g{i}", "problem": f"Q{i}: {i} + {i}?", "answer": str(2 * i)} for i in range(7)]
    answers = {f"Q{i}:": f"so \\boxed{{{2 * i + i % 2}}}" for i in range(7)}
    options = ["red", "green", "blue", "grey"]
    mc = [
        {"id": f"m{i}", "problem": f"Colour {i}?", "answer": "B", "options": options}
        for i in range(5)
    ]
    answers.update({f"Colour {i}?": said for i, said in enumerate(MC_SAID)})
    answers["Which letter?"] = "Answer: A"
    _write_rows(root, "gsm8k", gsm)
    _write_rows(root, "mmlu_pro", mc)
    _write_rows(
        root,
        "supergpqa",
        [{"id": "s0", "problem": "Which letter?", "answer": "A", "options": ["x", "y"]}],
    )
    return answers


SUITE = ["gsm8k", "mmlu_pro", "supergpqa"]
GREEDY = SamplingParams(temperature=0.0, max_new_tokens=8)


# ----------------------------------------------------------------------------- interval maths


def test_mean_interval_from_sums_hand_values():
    values = [0.5, 0.75, 0.25, 0.5]  # mean 0.5, s = sqrt(0.125 / 3) = 0.2041, n = 4
    low, high = mean_interval_from_sums(2.0, 1.125, 4)
    half = 1.959963984540054 * math.sqrt(0.125 / 3) / 2  # = 0.20004
    assert (low, high) == (pytest.approx(0.5 - half), pytest.approx(0.5 + half))
    assert (low, high) == pytest.approx(mean_interval(values))
    assert mean_interval_from_sums(1.0, 1.0, 1) == (0.0, 1.0)  # one problem: no spread
    assert mean_interval_from_sums(3.0, 3.0, 3) == (1.0, 1.0)  # all right: clipped, no NaN


def test_accuracy_interval_picks_wilson_for_one_sample():
    assert accuracy_interval(3, 3, 4, k=1) == wilson_interval(3, 4)
    assert accuracy_interval(2.0, 1.125, 4, k=4) == mean_interval_from_sums(2.0, 1.125, 4)


# ----------------------------------------------------------------------------- torchmetrics


def test_benchmark_accuracy_matches_score_across_updates():
    flat = [[True], [False], [True], [True]]
    metric = BenchmarkAccuracy()
    metric.update(flat[:1])
    metric.update(flat[1:])
    figures = metric.compute()
    expected = score([True, False, True, True])
    assert figures["accuracy"] == 0.75 and figures["k"] == 1 and figures["n_samples"] == 4
    assert [figures["ci95_low"], figures["ci95_high"]] == expected["ci95"]

    at_k = [[True, True, False, False], [True, True, True, True], [False] * 4, [True, False] * 2]
    metric = BenchmarkAccuracy()
    metric.update(at_k[:2])
    metric.update([])  # an empty shard adds nothing
    metric.update(at_k[2:])
    figures, expected = metric.compute(), score(at_k)
    assert figures["accuracy"] == pytest.approx(expected["accuracy"]) == 0.5
    assert [figures["ci95_low"], figures["ci95_high"]] == pytest.approx(expected["ci95"])
    assert (figures["n_problems"], figures["n_samples"], figures["k"]) == (4, 16, 4)
    with pytest.raises(ValueError, match="at least one"):
        metric.update([[True], []])


# ----------------------------------------------------------------------------- one process


def test_evaluate_figures_samples_and_averages(tmp_path):
    answers = _suite(tmp_path)
    result = evaluate(KeyedEngine(answers), None, SUITE, sampling=GREEDY, root=str(tmp_path))
    b = result.summary["benchmarks"]
    assert b["gsm8k"]["accuracy"] == pytest.approx(4 / 7)
    assert b["gsm8k"]["ci95"] == pytest.approx(list(wilson_interval(4, 7)))
    assert b["mmlu_pro"]["accuracy"] == pytest.approx(0.4)  # unreadable = wrong, not a guess
    assert b["supergpqa"]["accuracy"] == 1.0
    assert result.summary["math_average"]["accuracy"] == pytest.approx(4 / 7)
    # Overall = mean(math average, SuperGPQA, MMLU-Pro, BBEH) over those present.
    assert result.summary["overall_average"]["accuracy"] == pytest.approx((4 / 7 + 1 + 0.4) / 3)
    assert result.summary["overall_average"]["missing"] == ["bbeh"]
    mc = result.samples["mmlu_pro"]
    assert [s["extracted"] for s in mc] == ["B", "B", "C", "C", None]
    assert [s["correct"] for s in mc] == [True, True, False, False, False]
    assert (
        result.samples["gsm8k"][1]["extracted"] == "3" and result.samples["gsm8k"][1]["gold"] == "2"
    )
    metrics = eval_metrics(result.summary)
    assert metrics["eval/mmlu_pro/accuracy"] == pytest.approx(0.4)
    assert metrics["eval/gsm8k/ci95_low"] == b["gsm8k"]["ci95"][0]
    assert metrics["eval/overall_average"] == result.summary["overall_average"]["accuracy"]


def test_reference_compat_is_off_by_default_and_guesses_when_on(tmp_path):
    options = [f"o{j}" for j in range(10)]
    rows = [
        {"id": str(i), "problem": f"P{i}?", "answer": "C", "options": options} for i in range(200)
    ]
    _write_rows(tmp_path, "mmlu_pro", rows)
    engine = KeyedEngine({"P": "I cannot tell."})
    assert Evaluation(["mmlu_pro"]).reference_compat is False
    plain = evaluate(engine, None, ["mmlu_pro"], sampling=GREEDY, root=str(tmp_path))
    assert plain.accuracies()["mmlu_pro"] == 0.0
    guessed = evaluate(
        engine, None, ["mmlu_pro"], sampling=GREEDY, root=str(tmp_path), reference_compat=True
    )
    assert 0.03 < guessed.accuracies()["mmlu_pro"] < 0.2  # about one guess in ten is right


def test_sampling_uses_the_benchmarks_k(tmp_path):
    _write_rows(tmp_path, "amc23", [{"problem": f"A{i}", "answer": "7"} for i in range(2)])
    engine = KeyedEngine({"A0": "\\boxed{7}", "A1": "\\boxed{8}"})
    hot = SamplingParams(temperature=0.6, top_p=0.95, max_new_tokens=8)
    result = evaluate(engine, None, ["amc23"], sampling=hot, root=str(tmp_path))
    entry = result.summary["benchmarks"]["amc23"]
    assert (entry["k"], entry["n_samples"], entry["accuracy"]) == (32, 64, 0.5)
    greedy = evaluate(engine, None, ["amc23"], sampling=GREEDY, root=str(tmp_path))
    assert greedy.summary["benchmarks"]["amc23"]["k"] == 1  # greedy: one pass, not 32 copies


def test_mean_at_k_samples_for_real(tiny_model_dir, tmp_path):
    from rzero_pl.engines import HFEngine
    from rzero_pl.models import PretrainedModel
    from rzero_pl.models.policy import Policy

    _write_rows(
        tmp_path,
        "gsm8k",
        [{"problem": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(2)],
    )
    policy = Policy(PretrainedModel(tiny_model_dir, dtype="float32"), lora=None)
    engine = HFEngine()
    engine.attach(policy)
    hot = SamplingParams(temperature=1.0, top_p=0.99, max_new_tokens=8)
    result = evaluate(engine, policy.tokenizer, ["gsm8k"], sampling=hot, k=4, root=str(tmp_path))
    entry = result.summary["benchmarks"]["gsm8k"]
    assert (entry["k"], entry["n_samples"], entry["n_problems"]) == (4, 8, 2)
    first = [s["response"] for s in result.samples["gsm8k"][:4]]
    assert len(set(first)) > 1  # four real draws, not one greedy pass copied


# ----------------------------------------------------------------------------- two ranks


def _rank_worker(rank: int, root: str, answers: dict[str, str], out: str) -> None:
    dist.init_process_group(
        "gloo",
        init_method=f"file://{out}/rendezvous",
        rank=rank,
        world_size=2,
        timeout=datetime.timedelta(seconds=60),
    )
    try:
        evaluation = Evaluation(SUITE, root=root, max_new_tokens=8)
        actor = types.SimpleNamespace(generate=KeyedEngine(answers).generate, tokenizer=None)
        result = evaluation.run(actor, "test", 0, folder=f"{out}/rank{rank}")
        compat = evaluate(
            KeyedEngine(answers),
            None,
            ["mmlu_pro"],
            sampling=GREEDY,
            root=root,
            reference_compat=True,
            seed=5,
        )
        Path(f"{out}/result{rank}.json").write_text(
            json.dumps([result.summary, result.samples, compat.samples])
        )
    finally:
        dist.destroy_process_group()


def _without_seconds(summary: dict) -> dict:
    for entry in summary["benchmarks"].values():
        entry.pop("seconds")
    return summary


@pytest.mark.skipif(
    not dist.is_available() or "fork" not in mp.get_all_start_methods(),
    reason="needs torch.distributed and the fork start method",
)
def test_two_gloo_ranks_equal_one_process(tmp_path):
    root = tmp_path / "benchmarks"
    answers = _suite(root)
    out = tmp_path / "out"
    out.mkdir()
    # fork: the ranks inherit the imported modules (a spawned rank re-imports for ~5-10 s).
    mp.start_processes(
        _rank_worker, args=(str(root), answers, str(out)), nprocs=2, start_method="fork"
    )

    single = evaluate(KeyedEngine(answers), None, SUITE, sampling=GREEDY, root=str(root))
    compat = evaluate(
        KeyedEngine(answers),
        None,
        ["mmlu_pro"],
        sampling=GREEDY,
        root=str(root),
        reference_compat=True,
        seed=5,
    )
    ranks = [json.loads((out / f"result{r}.json").read_text()) for r in range(2)]
    for summary, samples, compat_samples in ranks:  # every rank returns the whole result
        assert _without_seconds(summary) == _without_seconds(json.loads(json.dumps(single.summary)))
        assert samples == single.samples
        assert compat_samples == compat.samples
    written = json.loads((out / "rank0" / "eval.json").read_text())
    assert _without_seconds(written) == ranks[0][0]
    assert len((out / "rank0" / "samples" / "gsm8k.jsonl").read_text().splitlines()) == 7
    assert not (out / "rank1").exists()  # rank 0 alone writes


# ----------------------------------------------------------------------------- the Hub mapping


MMLU_ROW = dict(
    question_id=70, question="Pick", options=["x", "y", "z"], answer="C", category="law"
)
SGPQA_ROW = dict(uuid="u1", question="Q", options=["a", "b"], answer="b", answer_letter="B")


def test_hub_column_mapping_on_an_in_memory_table():
    gsm = rows_from_table(
        get_benchmark("gsm8k"), [{"question": "Tom?", "answer": "So\n#### 1,234"}]
    )
    assert (gsm[0].id, gsm[0].problem, gsm[0].answer) == ("gsm8k-0", "Tom?", "1234")
    mmlu = rows_from_table(get_benchmark("mmlu_pro"), [MMLU_ROW])
    assert mmlu[0].id == "70" and mmlu[0].answer == "C" and mmlu[0].options == ["x", "y", "z"]
    assert mmlu[0].problem == "Pick\n\nOptions:\nA. x\nB. y\nC. z"
    assert mmlu[0].extra["category"] == "law" and "options" not in mmlu[0].extra
    sgp = rows_from_table(get_benchmark("supergpqa"), [SGPQA_ROW])
    assert (sgp[0].id, sgp[0].answer) == ("u1", "B")  # the letter column, not the text
    aime = rows_from_table(get_benchmark("aime2024"), [{"id": 60, "problem": "P", "answer": "025"}])
    assert aime[0].answer == "25"
    no_options = {k: v for k, v in MMLU_ROW.items() if k != "options"}
    with pytest.raises(ValueError, match=r"TIGER-Lab/MMLU-Pro\[test\]\[0\]: no column 'options'"):
        rows_from_table(get_benchmark("mmlu_pro"), [no_options])
    blank = [{"question": "a", "answer": "1"}, {"question": "b", "answer": " "}]
    with pytest.raises(ValueError, match=r"openai/gsm8k\[test\]\[1\].*'answer'"):
        rows_from_table(get_benchmark("gsm8k"), blank)


def test_load_rows_falls_back_to_the_hub_through_datasets(tmp_path, monkeypatch):
    calls = []

    def load_dataset(path, config, split):
        calls.append((path, config, split))
        return [{**MMLU_ROW, "question_id": i, "answer": "B"} for i in range(4)]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    rows = load_rows("mmlu_pro", root=tmp_path, max_samples=2, seed=1)  # no local file
    assert calls == [("TIGER-Lab/MMLU-Pro", None, "test")]
    assert len(rows) == 2 and all(r.answer == "B" for r in rows)


# ----------------------------------------------------------------------------- end to end


def test_rzero_pl_test_scores_a_tiny_model_on_two_real_benchmarks(tiny_model_dir, tmp_path):
    root = benchmark_root()
    if root is None or not (root / "gsm8k").is_dir() or not (root / "mmlu_pro").is_dir():
        pytest.skip(f"no local gsm8k/mmlu_pro files: set {ENV_ROOT}")
    main(
        [
            "test",
            "--config",
            str(ROOT / "cli_configs" / "toy_eval.yaml"),
            f"{MODEL}.class_path=rzero_pl.models.sources.PretrainedModel",
            f"{MODEL}.init_args.name_or_path={tiny_model_dir}",
            "--evaluation.init_args.benchmarks=[gsm8k, mmlu_pro]",
            f"--evaluation.init_args.root={root}",
            "--evaluation.init_args.max_samples=5",
            "--evaluation.init_args.max_new_tokens=8",
            f"--trainer.default_root_dir={tmp_path}",
            f"--trainer.logger.init_args.save_dir={tmp_path / 'tb'}",
        ]
    )
    folder = tmp_path / "eval" / "test"
    summary = json.loads((folder / "eval.json").read_text())
    for name in ("gsm8k", "mmlu_pro"):
        entry = summary["benchmarks"][name]
        assert (entry["n_problems"], entry["n_samples"], entry["k"]) == (5, 5, 1)
        samples = [
            json.loads(line)
            for line in (folder / "samples" / f"{name}.jsonl").read_text().splitlines()
        ]
        assert [s["id"] for s in samples] == [
            r.id for r in load_rows(name, root=root, max_samples=5)
        ]
        for s in samples:
            assert set(s) == {"id", "prompt", "response", "extracted", "gold", "correct"}
            assert s["correct"] == grade(name, s["response"], s["gold"])
            assert s["extracted"] == extract_answer(name, s["response"])
        assert entry["accuracy"] == sum(s["correct"] for s in samples) / 5
        assert entry["ci95"] == list(wilson_interval(sum(s["correct"] for s in samples), 5))
    assert summary["math_average"]["components"] == {
        "gsm8k": summary["benchmarks"]["gsm8k"]["accuracy"]
    }

    from builders import tensorboard_scalars

    folder = str(next((tmp_path / "tb").rglob("events.out.tfevents.*")).parent)
    logged = {tag: events[-1].value for tag, events in tensorboard_scalars(folder).items()}
    assert logged == pytest.approx(eval_metrics(summary), abs=1e-6)
    assert {
        "eval/gsm8k/accuracy",
        "eval/mmlu_pro/ci95_high",
        "eval/math_average",
        "eval/overall_average",
    } <= set(logged)
