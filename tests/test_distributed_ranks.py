"""One iteration on 2 CPU ranks (FSDP2, gloo, torchrun) against one process, to the last bit,
resumed after a kill; with skip_signal_free; with vLLM engines. The single-process helpers:
tests/test_distributed.py. The one-process runs fork from the preloaded CLI
(tests/preloaded.py); the ranks are torchrun's, new interpreters."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import preloaded
import pytest
import torch
from safetensors.torch import load_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")


# ---- one iteration on 2 CPU ranks (FSDP2, gloo) against one process --------------------


@pytest.fixture(scope="session")
def primed_model_dir(tmp_path_factory):
    sys.path.insert(0, TESTS)
    from scale_helpers import build_primed_model

    return build_primed_model(str(tmp_path_factory.mktemp("primed")))


def _args(model_dir, run_dir):
    m = "--actor.policy.init_args.model"
    c = "--evolution.challenger.init_args"
    return [
        "fit",
        "--config",
        os.path.join(ROOT, "cli_configs", "toy.yaml"),
        # Fixed candidate questions: the solver phase runs whatever the primed model writes.
        "--evolution.curriculum=scale_helpers.FixedQuestionsCurriculum",
        "--evolution.vote.band=[0.0,1.0]",
        "--evolution.curriculum.labelled=rzero_pl.toy.tasks.ToyQuestions",  # kept > 0 whatever the votes
        "--evolution.curriculum.labelled.init_args.n=4",
        f"{m}.class_path=rzero_pl.models.sources.PretrainedModel",
        f"{m}.init_args.name_or_path={model_dir}",
        "--actor.engine=scale_helpers.PromptSeededEngine",
        "--trainer.enable_progress_bar=false",
        "--evolution.curriculum.candidates=8",
        "--evolution.vote.samples=4",
        "--data.init_args.questions_per_step=4",
        "--evolution.curriculum.max_rounds=1",
        "--evolution.curriculum.min_kept=1",
        "--evolution.curriculum.challenger_sampling.max_new_tokens=40",
        "--evolution.vote.sampling.max_new_tokens=12",
        "--model.init_args.group_size=4",
        "--model.init_args.minibatch_size=16",
        "--model.init_args.micro_batch_size=1",
        "--model.init_args.sampling.max_new_tokens=12",
        "--evolution.iterations=1",
        "--evolution.challenger_steps=2",
        "--evolution.solver_steps=2",
        f"--evolution.run_dir={run_dir}",
        f"{c}.group_size=2",
        f"{c}.minibatch_size=4",
        f"{c}.micro_batch_size=1",
        f"{c}.sampling.max_new_tokens=40",
        "--evolution.challenger_data.init_args.slots_per_step=2",
        "--evolution.evaluation.init_args.max_samples=4",
        "--evolution.evaluation.init_args.max_new_tokens=12",
    ]


TWO_RANKS = [
    "--trainer.devices=2",
    "--trainer.strategy=lightning.pytorch.strategies.ModelParallelStrategy",
    "--trainer.strategy.init_args.data_parallel_size=2",
    "--trainer.strategy.init_args.tensor_parallel_size=1",
]


def _run(cmd, fault=None):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]))
    env.pop("RZERO_PL_FAULT", None)
    if fault:
        env["RZERO_PL_FAULT"] = fault
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)


def _single(args: list[str], run_dir: str) -> None:
    """The one-process run, forked from the preloaded CLI (tests/preloaded.py)."""
    env = {k: v for k, v in os.environ.items() if k != "RZERO_PL_FAULT"}
    log = f"{run_dir}.log"
    code, output = preloaded.run(args, env, ROOT, log, timeout=600)
    assert code == 0, output[-3000:]


def _weights(run_dir, role):
    return load_file(os.path.join(run_dir, "iter1", role, "weights", "model.safetensors"))


def _assert_phases_ran(run_dir):
    """Both training phases ran and wrote weights, the curriculum kept questions: what the
    test compares exists (a run whose solver phase was skipped compares nothing)."""
    state = json.loads(open(os.path.join(run_dir, "state.json")).read())
    phases = state["phases"]
    assert phases["iter1/curriculum"]["kept"] > 0, phases["iter1/curriculum"]
    for role in ("challenger", "solver"):
        assert phases[f"iter1/{role}"]["steps"] > 0, phases[f"iter1/{role}"]
        folder = os.path.join(run_dir, "iter1", role, "weights")
        assert any(f.endswith(".safetensors") for f in os.listdir(folder)), folder


def _questions(run_dir):
    path = os.path.join(run_dir, "iter1", "curriculum", "questions.jsonl")
    with open(path) as f:
        return [(r["question"], r["label"], r["share"]) for r in map(json.loads, f)]


@pytest.mark.slow
def test_two_rank_fsdp2_iteration_matches_one_process_and_resumes(primed_model_dir, tmp_path):
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    _single(_args(primed_model_dir, one), one)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
    cmd = [*torchrun, "-m", "rzero_pl", *_args(primed_model_dir, two), *TWO_RANKS]
    # Killed at the end of the solver's second rollout step, before its checkpoint is saved.
    killed = _run(cmd, fault="train:iter1/solver:epoch@2")
    assert killed.returncode != 0
    checkpoint = os.path.join(two, "iter1", "solver", "checkpoints", "last.ckpt")
    assert os.path.isdir(checkpoint), "expected a sharded (directory) checkpoint"
    assert {f for f in os.listdir(checkpoint) if f.endswith(".distcp")} == {
        "__0_0.distcp",
        "__1_0.distcp",
    }
    shutil.rmtree(os.path.join(two, "iter1", "solver", "weights"), ignore_errors=True)
    resumed = _run(cmd)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resum" in resumed.stderr + resumed.stdout

    _assert_phases_ran(one)
    _assert_phases_ran(two)
    assert _questions(two) == _questions(one)
    for role in ("challenger", "solver"):
        a, b = _weights(one, role), _weights(two, role)
        assert a.keys() == b.keys()
        for name in a:
            torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5, msg=name)


SKIP = [
    "--model.init_args.skip_signal_free=true",
    "--evolution.challenger.init_args.skip_signal_free=true",
]


@pytest.mark.slow
def test_two_rank_skip_signal_free_matches_one_process(primed_model_dir, tmp_path):
    """Ranks keep different numbers of informative rollouts; the top-up keeps them in step."""
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    _single([*_args(primed_model_dir, one), *SKIP], one)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
    ranks = _run([*torchrun, "-m", "rzero_pl", *_args(primed_model_dir, two), *TWO_RANKS, *SKIP])
    assert ranks.returncode == 0, ranks.stderr[-3000:]
    _assert_phases_ran(one)
    _assert_phases_ran(two)
    from builders import tensorboard_scalars

    scalars = tensorboard_scalars(os.path.join(one, "tensorboard"))
    trained = [e.value for e in scalars.get("solver/trained_fraction", [])]
    assert trained and min(trained) < 1.0, "some rollouts should have been skipped"
    assert _questions(two) == _questions(one)
    # Signal-free rollouts add nothing to the gradient, so the top-up rows change nothing.
    for role in ("challenger", "solver"):
        a, b = _weights(one, role), _weights(two, role)
        for name in a:
            torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5, msg=name)


@pytest.fixture(scope="session")
def primed_wide_model_dir(tmp_path_factory):
    sys.path.insert(0, TESTS)
    from scale_helpers import build_primed_model

    return build_primed_model(str(tmp_path_factory.mktemp("primed_wide")), hidden=128)


def _role_tensors(run_dir, role):
    folder = os.path.join(run_dir, "iter1", role, "weights")
    name = next(f for f in os.listdir(folder) if f.endswith(".safetensors"))
    return load_file(os.path.join(folder, name))


ENGINE = "--actor.engine"
VLLM = [
    f"{ENGINE}=rzero_pl.engines.vllm.VLLMEngine",
    f"{ENGINE}.init_args.dtype=float32",
    f"{ENGINE}.init_args.kv_cache_memory_bytes={64 << 20}",
    f"{ENGINE}.init_args.enforce_eager=true",
]
LORA = [
    "--actor.policy.init_args.lora.r=4",
    "--actor.policy.init_args.lora.alpha=8",
    "--model.init_args.lr=1e-2",
    "--evolution.challenger.init_args.lr=1e-2",
]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm is not installed")
@pytest.mark.parametrize("weights", ["full", "lora"])
def test_two_rank_vllm_iteration_matches_one_process(primed_wide_model_dir, tmp_path, weights):
    # One vLLM engine per rank (external_launcher), FSDP2 weights gathered into it by every
    # rank together, each rank writing and voting on its share of the curriculum.
    extra = VLLM + (LORA if weights == "lora" else [])

    def args(run_dir):
        plain = _args(primed_wide_model_dir, run_dir)
        return [a for a in plain if not a.startswith(f"{ENGINE}=")] + extra

    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    _single(args(one), one)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
    ranks = _run([*torchrun, "-m", "rzero_pl", *args(two), *TWO_RANKS])
    assert ranks.returncode == 0, ranks.stderr[-3000:]
    _assert_phases_ran(one)
    _assert_phases_ran(two)
    assert _questions(two) == _questions(one)
    for role in ("challenger", "solver"):
        a, b = _role_tensors(one, role), _role_tensors(two, role)
        assert a.keys() == b.keys()
        for name in a:
            torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5, msg=name)
