"""GPU check: a few rollout steps of two shipped configs on real-shape random models, one JSON.

No hub access is needed: each model is built from a ``config.json`` kept in ``bench/shapes/``
(the public model cards' architecture numbers), randomly initialised in bf16 on the GPU and
saved with a word-level tokenizer of the model's vocabulary size (every id decodes). Each run
is a child process (an out-of-memory error ends that run only, and the next starts with an
empty GPU):

- ``octothinker``: ``cli_configs/octothinker.yaml`` (QLoRA nf4, vLLM on CUDA, bf16-mixed);
- ``qwen3_4b_fsdp``: ``cli_configs/qwen3_4b_fsdp.yaml`` on one GPU (FSDP2 with one rank).

Only the sizes change (questions per step, tokens, batch sizes: ``SIZES``) and, for FSDP, the
rank count (8 -> 1); every other setting is the config's. Each run records its solver's
rollout steps (seconds, generated tokens/s), the peak GPU memory that torch allocated and
reserved, and ``rzero_pl.scale.memory``'s estimate (the README's memory figures) for the same
module and trainer. Budget: at most 8 minutes on one H100 (``RUN_TIMEOUT_S`` per run).

    bash bench/gpu_check.sh [--out bench/gpu_check.json] [--runs octothinker qwen3_4b_fsdp]
                            [--fsdp-cpu-offload]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPES = os.path.join(ROOT, "bench", "shapes")
# Published sizes (model cards): Llama-3.2-3B (OctoThinker-3B's base) 3.21B, Qwen3-4B 4.0B.
PUBLISHED_PARAMS = {"octothinker-3b": 3.21e9, "qwen3-4b": 4.0e9}
RUNS = {
    "octothinker": ("octothinker.yaml", "octothinker-3b"),
    "qwen3_4b_fsdp": ("qwen3_4b_fsdp.yaml", "qwen3-4b"),
}
# Sizes of the check: 4 questions x G (the config's) per rollout step, 256 new tokens, 3 steps.
SIZES = {"questions": 4, "max_new_tokens": 256, "steps": 3, "micro_batch_size": 2}
RUN_TIMEOUT_S = 220  # two runs and their start-ups in under 8 minutes
NO_GPU = "gpu_check: no CUDA GPU here (torch.cuda.is_available() is False); run it on a GPU host"


def shape_config(name: str) -> Any:
    """The transformers config of ``bench/shapes/<name>/config.json``."""
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(os.path.join(SHAPES, name))


def meta_model(name: str) -> Any:
    """The model of a shape on the meta device: its structure and sizes, no memory."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(shape_config(name))


def word_tokenizer(vocab_size: int, eos_token_id: int) -> Any:
    """A fast tokenizer with exactly ``vocab_size`` words ``w0 ...``: any id a random model
    samples decodes, and text splits on whitespace (unknown words become ``w0``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"w{i}": i for i in range(vocab_size)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="w0"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece()  # words joined by spaces
    eos = f"w{eos_token_id}"
    return PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="w0", eos_token=eos, pad_token=eos
    )


def write_random_model(name: str, folder: str) -> str:
    """Save a randomly initialised bf16 model of shape ``name`` and its tokenizer in ``folder``."""
    import torch
    from transformers import AutoModelForCausalLM

    config = shape_config(name)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(folder)
    del model
    torch.cuda.empty_cache()
    eos = config.eos_token_id if isinstance(config.eos_token_id, int) else config.eos_token_id[0]
    word_tokenizer(config.vocab_size, eos).save_pretrained(folder)
    return folder


def check_settings(
    config_file: str, model_dir: str, run_dir: str, offload: bool = False
) -> dict[str, Any]:
    """The shipped config with the local model, one rank, the check's sizes; no evolution.

    ``offload`` turns on the config's own ``actor.policy.fsdp.cpu_offload`` (FSDP configs
    only): one rank holds every shard, which the estimate puts above an 80 GB GPU.
    """
    import yaml

    with open(os.path.join(ROOT, "cli_configs", config_file)) as f:
        settings = yaml.safe_load(f)
    for key in ("evolution", "data", "seed_everything"):
        settings.pop(key, None)
    settings["actor"]["policy"]["model"]["init_args"]["name_or_path"] = model_dir
    trainer = settings["trainer"]
    trainer.update(devices=1, num_nodes=1, default_root_dir=run_dir)
    strategy = trainer.get("strategy")
    if isinstance(strategy, dict):  # FSDP2 over one rank
        strategy["init_args"]["data_parallel_size"] = 1
        if offload:
            settings["actor"]["policy"]["fsdp"]["cpu_offload"] = True
    solver = settings["model"]["init_args"]
    solver["sampling"]["max_new_tokens"] = SIZES["max_new_tokens"]
    solver["micro_batch_size"] = SIZES["micro_batch_size"]
    # one optimizer update per rollout step, as many rollouts as it samples
    solver["minibatch_size"] = SIZES["questions"] * solver["group_size"]
    return settings


def step_records(metrics_csv: str) -> list[dict[str, float]]:
    """The solver's per-rollout-step metrics (seconds, tokens/s, lengths) from a CSV log."""
    import csv

    keep = ("rollout_seconds", "gen_tokens_per_s", "response_length_mean")
    rows = []
    with open(metrics_csv) as f:
        for row in csv.DictReader(f):
            picked = {k: float(row[f"solver/{k}"]) for k in keep if row.get(f"solver/{k}")}
            if picked:
                rows.append({"step": int(row["step"]), **picked})
    return rows


def write_report(path: str, report: dict[str, Any]) -> None:
    """Write ``report`` as indented JSON, atomically (a reader never sees half a file)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp") as f:
        json.dump(report, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(f.name, path)


def gib(n: float) -> float:
    return round(n / 2**30, 2)


def run_one(name: str, work: str, out: str, offload: bool = False) -> dict[str, Any]:
    """Build ``name``'s model and config, fit its solver for ``SIZES['steps']`` rollout steps.

    The estimate and the set-up times are written to ``out`` before the fit, so that a run
    that runs out of memory still reports what was expected of it.
    """
    import torch

    from rzero_pl.run.build import build_run
    from rzero_pl.scale import memory

    config_file, shape = RUNS[name]
    started = time.perf_counter()
    model_dir = write_random_model(shape, os.path.join(work, shape))
    written = time.perf_counter()
    settings = check_settings(config_file, model_dir, os.path.join(work, name), offload)
    built = build_run(settings)
    trainer = check_trainer(settings["trainer"], work, name)
    estimate = memory.estimate_for(built.model, trainer)
    result: dict[str, Any] = {
        "config": f"cli_configs/{config_file}",
        "shape": f"bench/shapes/{shape}/config.json",
        "parameters": meta_model(shape).num_parameters(),
        "sizes": SIZES,
        "fsdp_cpu_offload": offload and "strategy" in settings["trainer"],
        "seconds": {
            "write_random_model": round(written - started, 1),
            "build_policy_and_engine": round(time.perf_counter() - written, 1),
        },
        "estimate_gib": {"total": gib(estimate.total)}
        | {k: gib(v) for k, v in vars(estimate).items()},
        "device_gib": gib(torch.cuda.get_device_properties(0).total_memory),
    }
    write_report(out, result)
    fit_start = time.perf_counter()
    torch.cuda.reset_peak_memory_stats()
    trainer.fit(built.model, questions_data(work))
    result["seconds"]["fit"] = round(time.perf_counter() - fit_start, 1)
    result["steps"] = step_records(os.path.join(trainer.logger.log_dir, "metrics.csv"))
    result["peak_gib"] = {
        "allocated": gib(torch.cuda.max_memory_allocated()),
        "reserved": gib(torch.cuda.max_memory_reserved()),
    }
    return result


def check_trainer(settings: dict[str, Any], work: str, name: str) -> Any:
    """One GPU, the config's precision and strategy, ``SIZES['steps']`` epochs, a CSV log."""
    import lightning as L
    from lightning.pytorch.loggers import CSVLogger

    strategy = settings.get("strategy")
    if isinstance(strategy, dict):
        from lightning.pytorch.strategies import ModelParallelStrategy

        strategy = ModelParallelStrategy(**strategy["init_args"])
    return L.Trainer(
        accelerator="gpu",
        devices=1,
        precision=settings.get("precision", "32-true"),
        strategy=strategy or "auto",
        max_epochs=SIZES["steps"],
        logger=CSVLogger(work, name=name),
        enable_checkpointing=False,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )


def questions_data(work: str) -> Any:
    """``SIZES['questions']`` small labelled questions, served all at every rollout step."""
    from rzero_pl.datamodules import LabelledQuestionsDataModule

    from rzero_pl.questions import JsonlQuestions

    path = os.path.join(work, "questions.jsonl")
    with open(path, "w") as f:
        for i in range(SIZES["questions"]):
            row = {"problem": f"What is {i} + {i + 2}?", "answer": str(2 * i + 2)}
            f.write(json.dumps(row) + "\n")
    return LabelledQuestionsDataModule(JsonlQuestions(path), SIZES["questions"])


def child(name: str, work: str, timeout: float, offload: bool) -> dict[str, Any]:
    """Run ``name`` in its own process; its result, or the error's last line."""
    out = os.path.join(work, f"{name}.json")
    cmd = [sys.executable, os.path.abspath(__file__), "--one", name, "--out", out, "--work", work]
    cmd += ["--fsdp-cpu-offload"] if offload else []
    try:
        done = subprocess.run(cmd, timeout=timeout, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        done = subprocess.CompletedProcess(cmd, 124, "", f"timed out after {timeout:.0f} s")
    result: dict[str, Any] = {}
    if os.path.exists(out):  # complete, or what was known before the fit
        with open(out) as f:
            result = json.load(f)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout or "no output").strip().splitlines()
        result["error"] = lines[-1] if lines else f"exit {done.returncode}"
    return result


def device_facts() -> dict[str, Any]:
    import torch

    return {
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "gpu_check.json"))
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS))
    parser.add_argument(
        "--fsdp-cpu-offload",
        action="store_true",
        help="FSDP configs: turn on the config's fsdp.cpu_offload (one rank holds all shards)",
    )
    parser.add_argument("--one", choices=list(RUNS), help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print(NO_GPU, file=sys.stderr)
        return 2
    if args.one:  # a child: one run, its own JSON
        write_report(args.out, run_one(args.one, args.work, args.out, args.fsdp_cpu_offload))
        return 0
    work = tempfile.mkdtemp(prefix="gpu_check-")
    start = time.perf_counter()
    report: dict[str, Any] = {"device": device_facts(), "runs": {}}
    for name in args.runs:
        report["runs"][name] = child(name, work, RUN_TIMEOUT_S, args.fsdp_cpu_offload)
        report["seconds"] = round(time.perf_counter() - start, 1)
        write_report(args.out, report)  # after every run: a later failure keeps the first
    print(f"gpu_check: wrote {args.out} in {report['seconds']} s")
    return 0 if all("error" not in r for r in report["runs"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
