"""bench/gpu_check: what runs without a GPU (shapes, settings, JSON, the CPU refusal)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import gpu_check  # noqa: E402


@pytest.mark.parametrize("shape", sorted(gpu_check.PUBLISHED_PARAMS))
def test_each_shape_builds_on_meta_at_its_published_size(shape):
    model = gpu_check.meta_model(shape)
    count = model.num_parameters()
    assert abs(count / gpu_check.PUBLISHED_PARAMS[shape] - 1) < 0.02, count
    assert next(model.parameters()).device.type == "meta"


def test_shapes_carry_the_model_cards_architecture():
    llama = gpu_check.shape_config("octothinker-3b")
    assert (llama.hidden_size, llama.num_hidden_layers, llama.num_attention_heads) == (3072, 28, 24)
    assert (llama.num_key_value_heads, llama.intermediate_size, llama.vocab_size) == (
        8,
        8192,
        128256,
    )
    rope = llama.rope_parameters  # transformers 5 gathers rope_theta and rope_scaling here
    assert (rope["rope_theta"], rope["rope_type"], rope["factor"]) == (500000.0, "llama3", 32.0)
    qwen = gpu_check.shape_config("qwen3-4b")
    assert (qwen.hidden_size, qwen.num_hidden_layers, qwen.num_attention_heads) == (2560, 36, 32)
    assert (qwen.num_key_value_heads, qwen.intermediate_size, qwen.vocab_size) == (8, 9728, 151936)
    assert qwen.rope_parameters["rope_theta"] == 1000000


def test_the_word_tokenizer_decodes_every_id():
    tok = gpu_check.word_tokenizer(50, eos_token_id=3)
    assert len(tok) == 50 and tok.eos_token_id == tok.pad_token_id == 3
    assert tok.decode([0, 49]) == "w0 w49"
    assert tok("w7 anything w8").input_ids == [7, 0, 8]


@pytest.mark.parametrize("run", sorted(gpu_check.RUNS))
def test_check_settings_change_only_model_ranks_and_sizes(run, tmp_path):
    config_file, _ = gpu_check.RUNS[run]
    s = gpu_check.check_settings(config_file, "/models/x", str(tmp_path))
    assert "evolution" not in s and "data" not in s
    assert s["actor"]["policy"]["model"]["init_args"]["name_or_path"] == "/models/x"
    assert s["trainer"]["devices"] == 1
    solver = s["model"]["init_args"]
    assert solver["minibatch_size"] == gpu_check.SIZES["questions"] * solver["group_size"]
    assert solver["sampling"]["max_new_tokens"] == gpu_check.SIZES["max_new_tokens"]
    if run == "octothinker":
        assert s["actor"]["policy"]["quantization"] == "nf4"
        assert s["trainer"]["precision"] == "bf16-mixed"
    else:
        assert s["trainer"]["strategy"]["init_args"]["data_parallel_size"] == 1
        assert s["actor"]["policy"]["lora"] is None
        assert s["actor"]["policy"]["fsdp"]["cpu_offload"] is False
        offloaded = gpu_check.check_settings(config_file, "/m", str(tmp_path), offload=True)
        assert offloaded["actor"]["policy"]["fsdp"]["cpu_offload"] is True


def test_write_report_writes_indented_json_atomically(tmp_path):
    path = tmp_path / "sub" / "check.json"
    gpu_check.write_report(str(path), {"runs": {"a": {"steps": [{"step": 0, "s": 1.5}]}}})
    assert json.loads(path.read_text()) == {"runs": {"a": {"steps": [{"step": 0, "s": 1.5}]}}}
    assert path.read_text().startswith("{\n  ")
    assert os.listdir(path.parent) == ["check.json"]  # no temporary file left


def test_step_records_read_the_solver_rows_of_a_csv_log(tmp_path):
    csv = tmp_path / "metrics.csv"
    csv.write_text(
        "epoch,step,solver/gen_tokens_per_s,solver/loss,solver/rollout_seconds\n"
        "0,0,120.5,,3.0\n"
        "0,1,,0.2,\n"
    )
    assert gpu_check.step_records(str(csv)) == [
        {"step": 0, "gen_tokens_per_s": 120.5, "rollout_seconds": 3.0}
    ]


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="the refusal is the CPU machine's"
)
def test_on_a_cpu_machine_it_stops_with_one_line(tmp_path):
    out = tmp_path / "check.json"
    done = subprocess.run(
        ["bash", os.path.join(ROOT, "bench", "gpu_check.sh"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == gpu_check.NO_GPU and done.stdout == ""
    assert not out.exists()
