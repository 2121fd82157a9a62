"""The benchmark suite at tiny sizes: each benchmark runs and returns numbers (not how fast).

Speed targets live in bench/RESULTS.md, never here; these tests only keep the scripts from
rotting. They use the session's tiny local model, not the cached toy base.
"""

from __future__ import annotations

import math
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

GRPO_TINY = {
    "prompts": 2, "group": 2, "micro": 2, "prompt_len": 4, "min_completion": 2,
    "max_completion": 6, "repeats": 1,
}  # fmt: skip


def finite_positive(*values: float) -> bool:
    return all(math.isfinite(v) and v > 0 for v in values)


@pytest.mark.slow  # TRL's GRPOTrainer and ours, timed
def test_grpo_step_bench_matches_trl_and_times_both(tiny_model_dir):
    pytest.importorskip("trl")
    import bench_grpo_step

    result = bench_grpo_step.run({**GRPO_TINY, "model_dir": tiny_model_dir}, with_memory=False)
    assert finite_positive(result["ours_s"], result["trl_s"], result["ratio"])
    assert result["rows"] == 4 and result["completion_tokens"] > 0
    # the same update on both sides: equal losses and gradients
    assert result["loss_max_abs_diff"] < 1e-5
    assert result["grad_max_rel_diff"] < 1e-4
    assert "rzero-pl" in bench_grpo_step.table(result)


def test_grpo_step_memory_of_our_side(tiny_model_dir):
    import bench_grpo_step

    cfg = {**bench_grpo_step.defaults(), **GRPO_TINY, "model_dir": tiny_model_dir}
    memory = bench_grpo_step.memory_of(cfg, "ours")
    assert memory["rise_mb"] >= 0 and memory["peak_rss_mb"] > 0


def test_generation_bench_counts_tokens_on_both_sides(tiny_model_dir):
    import bench_generation

    cfg = {"questions": 2, "group": 2, "max_new_tokens": 6, "repeats": 1}
    result = bench_generation.run({**cfg, "model_dir": tiny_model_dir})
    assert finite_positive(result["engine_tok_s"], result["bare_tok_s"], result["peak_rss_mb"])
    assert result["rows"] == 4
    assert all(0 < n <= 4 * 6 for side in ("engine", "bare") for n in result["tokens"][side])
    assert "HFEngine" in bench_generation.table(result)


@pytest.mark.slow  # one whole toy iteration
def test_e2e_bench_splits_one_iteration_by_phase(tiny_model_dir):
    import bench_e2e

    extra = [
        "--evolution.vote.samples=2", "--data.init_args.questions_per_step=2",
        "--evolution.curriculum.min_kept=1", "--model.init_args.group_size=2",
        "--model.init_args.minibatch_size=4", "--model.init_args.micro_batch_size=4",
        "--model.init_args.sampling.max_new_tokens=6",
        "--evolution.challenger.init_args.group_size=2",
        "--evolution.challenger.init_args.sampling.max_new_tokens=8",
        "--evolution.challenger.init_args.minibatch_size=4",
        "--evolution.challenger.init_args.micro_batch_size=4",
        "--evolution.challenger_data.init_args.slots_per_step=2",
        "--evolution.evaluation.init_args.max_new_tokens=6",
    ]  # fmt: skip
    cfg = {"challenger_steps": 1, "solver_steps": 1, "candidates": 4, "eval_samples": 2}
    result = bench_e2e.run({**cfg, "model_dir": tiny_model_dir, "extra": extra})
    phases = result["phases"]
    assert {"challenger voting (solver votes + labels)", "curriculum", "solver update"} <= set(
        phases
    )
    assert all(math.isfinite(v) and v >= 0 for v in phases.values())
    # the random tiny model rarely writes a valid question: the solver phase may be skipped
    assert phases["challenger generation"] > 0 and phases["challenger update"] > 0
    assert finite_positive(result["wall_s"], result["peak_rss_mb"])
    assert "curriculum" in bench_e2e.table(result)


def test_run_all_runs_a_benchmark_in_a_subprocess_with_its_peak_rss():
    import run_all

    row = run_all.run_one("repetition", ["--sizes", "12", "--full-max", "12", "--repeats", "1"])
    assert row["rc"] == 0, row.get("error")
    assert row["peak_rss_mb"] > 0 and row["wall_s"] > 0
    assert "penalties identical" in row["text"]
    assert "table rows" in run_all.summary(row)


def test_majority_vote_bench_runs_with_the_released_labeller_when_installed():
    import importlib.util

    import run_all

    args = ["--questions", "6", "--naive", "3", "--pathological", "0", "--workers", "1"]
    has_mathruler = all(importlib.util.find_spec(m) for m in ("mathruler", "pylatexenc"))
    row = run_all.run_one("majority_vote", args + (["--mathruler", "6"] if has_mathruler else []))
    assert row["rc"] == 0, row.get("error")
    assert "majority_votes: 6 questions x 10 = 60 answers" in row["text"]
    if has_mathruler:
        assert "mathruler reference, 1 process: 6 questions" in row["text"]
