"""Run a shipped GPU config for real on CPU: only the model source, accelerator and sizes change.

``derive`` reads ``cli_configs/<name>`` and applies a flat ``{dotted.key: value}`` change set;
``SIZES`` (plus the model source and the accelerator) is the whole of what a test may change,
and ``derive`` refuses any other key, so a config setting that cannot run on CPU shows up as a
failing run (a bug to fix), never as a quiet override.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POLICY = "actor.policy"
MODEL = f"{POLICY}.model"
CHALLENGER = "evolution.challenger.init_args"
EVALUATION = "evolution.evaluation.init_args"

# What a real-config test may change besides the model source: hardware and sizes.
ALLOWED = (
    "trainer.accelerator",
    MODEL,
    "evolution.vote.samples",
    "evolution.vote.sampling.max_new_tokens",
    "model.init_args.group_size",
    "model.init_args.sampling.max_new_tokens",
    "model.init_args.minibatch_size",
    "model.init_args.micro_batch_size",
    "evolution.curriculum.candidates",
    "data.init_args.questions_per_step",
    "evolution.curriculum.min_kept",
    "evolution.curriculum.max_rounds",
    "evolution.curriculum.challenger_sampling.max_new_tokens",
    "evolution.curriculum.labelled",
    # Not a size: SmolLM2 never boxes (it ends with "#### 8" or "The answer is: 8"), so under
    # the paper's \boxed{} rule every reward would be 0; the flexible rule is the way in.
    "model.init_args.answer_rule",
    "evolution.iterations",
    "evolution.challenger_steps",
    "evolution.solver_steps",
    "evolution.run_dir",
    f"{CHALLENGER}.group_size",
    f"{CHALLENGER}.sampling.max_new_tokens",
    f"{CHALLENGER}.minibatch_size",
    f"{CHALLENGER}.micro_batch_size",
    "evolution.challenger_data.init_args.slots_per_step",
    f"{EVALUATION}.benchmarks",
    f"{EVALUATION}.max_samples",
    f"{EVALUATION}.max_new_tokens",
    f"{EVALUATION}.root",
    f"{EVALUATION}.answer_rules",  # follows the benchmarks (it may name only those scored)
    # How vLLM serves LoRA roles on this device: on CPU merged weights without compilation
    # are 5x faster than adapters (bench/REAL.md, section 7); GPUs keep the config's choice.
    "actor.engine.init_args.lora_serving",
    "actor.engine.init_args.enforce_eager",
    # Hardware: one CPU rank instead of 8 GPUs (the FSDP2 strategy itself is kept).
    "trainer.devices",
    "trainer.strategy.init_args.data_parallel_size",
    # Sizes of the labels' own vote (cli_configs/qwen3_4b_released.yaml).
    "evolution.label_vote.samples",
    "evolution.label_vote.sampling.max_new_tokens",
    # Where the released prompts are read: a test's fake clone and its commit.
    *(
        f"{prompt}.init_args.{key}"
        for prompt in (
            "model.init_args.prompt",
            f"{CHALLENGER}.prompt",
            f"{EVALUATION}.math_prompt",
            *(f"{EVALUATION}.general_prompts.{b}" for b in ("supergpqa", "mmlu_pro", "bbeh")),
        )
        for key in ("clone_dir", "commit")
    ),
)


def tiny_sizes(run_dir: str, labelled: str, benchmarks_root: str, tokens: int = 16) -> dict:
    """N = 2 candidates, m = 2 votes, G = 2 (challenger) and 4 (solver, on 4 questions), one
    step per phase, ``tokens`` per completion, 2 GSM8K rows."""
    return {
        "evolution.vote.samples": 2,
        "evolution.vote.sampling.max_new_tokens": tokens,
        "model.init_args.group_size": 4,
        "model.init_args.sampling.max_new_tokens": tokens,
        "model.init_args.minibatch_size": 16,
        "model.init_args.micro_batch_size": 4,
        "evolution.curriculum.candidates": 2,
        "data.init_args.questions_per_step": 4,
        "evolution.curriculum.min_kept": 1,
        "evolution.curriculum.max_rounds": 1,
        "evolution.curriculum.challenger_sampling.max_new_tokens": tokens,
        "evolution.curriculum.labelled": {
            "class_path": "rzero_pl.questions.JsonlQuestions",
            "init_args": {"path": labelled},
        },
        "evolution.iterations": 1,
        "evolution.challenger_steps": 1,
        "evolution.solver_steps": 1,
        "evolution.run_dir": run_dir,
        f"{CHALLENGER}.group_size": 2,
        f"{CHALLENGER}.sampling.max_new_tokens": tokens,
        f"{CHALLENGER}.minibatch_size": 4,
        f"{CHALLENGER}.micro_batch_size": 2,
        "evolution.challenger_data.init_args.slots_per_step": 2,
        f"{EVALUATION}.benchmarks": ["gsm8k"],
        f"{EVALUATION}.max_samples": 2,
        f"{EVALUATION}.max_new_tokens": tokens,
        f"{EVALUATION}.root": benchmarks_root,
    }


def _walk(config: Any, key: str) -> tuple[Any, Any]:
    """The container holding the last part of ``key`` and that part (a name or an index)."""
    parts: list[Any] = []
    for part in key.split("."):
        name, _, index = part.partition("[")
        parts.append(name)
        if index:
            parts.append(int(index.rstrip("]")))
    node = config
    for part in parts[:-1]:
        node = node[part]
    return node, parts[-1]


def derive(name: str, changes: dict[str, Any]) -> dict:
    """``cli_configs/<name>`` with ``changes`` applied; a key outside ``ALLOWED`` is refused."""
    with open(os.path.join(ROOT, "cli_configs", name)) as f:
        config = yaml.safe_load(f)
    config = copy.deepcopy(config)
    for key, value in changes.items():
        if key not in ALLOWED:
            raise KeyError(f"{key}: not a size, the accelerator or the model source")
        node, last = _walk(config, key)
        node[last] = value
    return config
