"""The README's evaluation example: every command in its "Evaluation" section parses, the full
runs score every problem of the suite at the released token limits, the arithmetic the README
gives is the commands' own, and the config runs on CPU with only the hardware and model swapped.
"""

from __future__ import annotations

import json
import os
import re
import shlex

import pytest

from rzero_pl.benchmarks.registry import GENERAL_BENCHMARKS, MATH_BENCHMARKS, benchmark_root
from rzero_pl.cli import RZeroCLI, main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The released evaluation's limits (Chengsong-Huang/R-Zero at 5699329): generate.py 4096 for
# math; eval_mmlupro.py, eval_supergpqa.py, eval_bbeh.py 8192.
RELEASED_TOKENS = {
    **dict.fromkeys(MATH_BENCHMARKS, 4096),
    **dict.fromkeys(GENERAL_BENCHMARKS, 8192),
}
SUPERGPQA_FULL = 26_529  # the Hub split; the local file is a 300-question sample


class ParseOnlyCLI(RZeroCLI):
    def instantiate_classes(self) -> None:
        self.config_init = None


def evaluation_section() -> str:
    text = open(os.path.join(ROOT, "README.md")).read()
    start = text.index("\n## Evaluation\n")
    return text[start : text.index("\n## ", start + 1)]


def readme_commands() -> list[list[str]]:
    """The section's ``rzero-pl test`` commands, split as a shell would (after ``test``)."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", evaluation_section(), re.S):
        lines = [line for line in block.splitlines() if not line.lstrip().startswith("#")]
        for command in " ".join(lines).replace("\\ ", " ").split("rzero-pl test")[1:]:
            commands.append(shlex.split(command))
    return commands


def evaluation_of(args: list[str]) -> dict:
    return dict(ParseOnlyCLI(args=args, run=False).config["evaluation"]["init_args"])


def test_the_full_runs_score_every_problem_at_the_released_token_limits():
    commands = readme_commands()
    assert len(commands) == 3, commands  # math, general, and the smoke test
    full = [evaluation_of(c) for c in commands if not any("max_samples" in a for a in c)]
    scored = {name: e["max_new_tokens"] for e in full for name in e["benchmarks"]}
    assert scored == RELEASED_TOKENS
    assert all(e["max_samples"] is None and e["temperature"] == 0.0 for e in full)
    roots = [a for c in commands for a in c if "default_root_dir" in a]
    assert len(roots) == 1  # the second run writes beside the first, not over it


def test_the_smoke_test_is_a_subset_and_says_so():
    (smoke,) = [c for c in readme_commands() if any("max_samples" in a for a in c)]
    assert evaluation_of(smoke)["max_samples"] == 200
    assert "smoke test only" in evaluation_section() and "±7 points" in evaluation_section()


def test_the_stated_arithmetic_is_the_commands_own():
    """Problems x 1 sample (greedy) x tokens, from the local files and SuperGPQA's Hub size."""
    root = benchmark_root()
    if root is None:
        pytest.skip("no local benchmark files")
    count = {name: sum(1 for _ in open(root / name / "test.jsonl")) for name in RELEASED_TOKENS}
    count["supergpqa"] = SUPERGPQA_FULL
    text = " ".join(evaluation_section().split())
    for names in (MATH_BENCHMARKS, GENERAL_BENCHMARKS):
        problems = sum(count[n] for n in names)
        tokens = problems * RELEASED_TOKENS[names[0]]
        stated = f"{problems:,} × 1 × {RELEASED_TOKENS[names[0]]:,} = {tokens / 1e6:.1f} M"
        assert stated in text, stated


def test_the_config_runs_on_cpu_with_the_hardware_and_model_swapped(tiny_model_dir, tmp_path):
    """Only the accelerator, precision, engine, model and sizes change (the GPU runs vLLM)."""
    model = "--actor.policy.init_args.model"
    main(
        [
            "test",
            "--config=cli_configs/qwen3_4b_eval.yaml",
            "--trainer.accelerator=cpu",
            "--trainer.precision=32-true",
            f"--trainer.default_root_dir={tmp_path}",
            "--actor.engine=rzero_pl.engines.HFEngine",
            f"{model}.init_args.name_or_path={tiny_model_dir}",
            f"{model}.init_args.dtype=float32",
            "--evaluation.init_args.max_samples=2",
            "--evaluation.init_args.max_new_tokens=8",
        ]
    )
    scores = json.loads((tmp_path / "eval" / "test" / "eval.json").read_text())
    assert set(MATH_BENCHMARKS) <= set(scores["benchmarks"])
