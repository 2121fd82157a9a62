"""bench/selfplay.py: every arm's overrides parse, and the comparison tables on hand-built run
folders give hand-computed numbers (the paired differences, the pooled sign test, the
true-label ceiling's folder and steps)."""

from __future__ import annotations

import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import selfplay  # noqa: E402


def test_every_arms_overrides_parse(tmp_path, capsys):
    """An arm's command is the shared toy command plus the arm's overrides; one parse of the
    shared command with every arm's overrides (a repeated key: the later value) checks every
    override the harness can pass (one CLI parse, not one per arm)."""
    from rzero_pl.cli import main

    shared = selfplay.command("rzero", 3, 5, str(tmp_path / "run"))
    for arm, overrides in selfplay.ARMS.items():
        assert selfplay.command(arm, 3, 5, str(tmp_path / "run")) == shared + overrides
    every = [o for arm in sorted(selfplay.ARMS) for o in selfplay.ARMS[arm]]
    with pytest.raises(SystemExit) as stop:
        main([*shared[3:], *every, "--print_config"])  # from "fit" on (no python -m rzero_pl)
    assert stop.value.code in (0, None)
    printed = capsys.readouterr().out
    assert "seed_everything: 3" in printed and "cumulative_steps: true" in printed


def _write_eval(folder: str, correct: list[bool]) -> None:
    """An evaluation folder as rzero-pl writes it: eval.json and the toy samples."""
    os.makedirs(os.path.join(folder, "samples"), exist_ok=True)
    accuracy = sum(correct) / len(correct)
    with open(os.path.join(folder, "eval.json"), "w") as f:
        json.dump({"benchmarks": {"toy": {"accuracy": accuracy}}}, f)
    with open(os.path.join(folder, "samples", "toy.jsonl"), "w") as f:
        for i, c in enumerate(correct):
            f.write(json.dumps({"id": f"p{i}", "correct": c}) + "\n")


def _run(root, arm: str, seed: int, per_iteration: list[list[bool]]) -> None:
    run = selfplay.run_dir(str(root), arm, seed)
    for it, correct in enumerate(per_iteration, start=1):
        _write_eval(os.path.join(run, f"iter{it}", "eval"), correct)


def test_comparisons_by_hand(tmp_path):
    # 4 problems; iteration 1 only. rzero: seed 0 gets p0, p1 right (50 %), seed 1 p0 (25 %).
    # kl_lowlr: seed 0 p0, p1, p2 (75 %), seed 1 p0, p3 (50 %).
    _run(tmp_path, "rzero", 0, [[True, True, False, False]])
    _run(tmp_path, "rzero", 1, [[True, False, False, False]])
    _run(tmp_path, "kl_lowlr", 0, [[True, True, True, False]])
    _run(tmp_path, "kl_lowlr", 1, [[True, False, False, True]])
    text = selfplay.comparisons(str(tmp_path), ["rzero", "kl_lowlr"], [0, 1], 1)
    row = next(line for line in text.splitlines() if line.startswith("| kl_lowlr | 1 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # differences +25 and +25 points: mean 25.0 with zero spread, so the interval is a point
    assert cells[2] == "25.0 [25.0, 25.0]"
    assert cells[3] == "2"
    assert cells[4] == "2 / 0"  # p2 (seed 0) and p3 (seed 1) won, none lost
    assert cells[5] == "0.5"  # two-sided: 2 * 0.5^2


def test_ceiling_steps_are_five_iterations_of_solver_steps():
    # cli_configs/toy.yaml: solver_steps 20
    assert selfplay.ceiling_steps(5) == 100
    assert selfplay.ceiling_steps(1) == 20


def test_the_ceiling_reads_its_last_evaluation_and_compares_each_arm(tmp_path):
    for seed, last in ((0, [True, True, True, True]), (1, [True, True, False, False])):
        evals = os.path.join(selfplay.run_dir(str(tmp_path), selfplay.CEILING, seed))
        evals = os.path.join(evals, "toy_solver", "version_0", "eval")
        _write_eval(os.path.join(evals, "baseline"), [False] * 4)
        _write_eval(os.path.join(evals, "step40"), [False] * 4)
        _write_eval(os.path.join(evals, "step100"), last)
    folder = selfplay.run_dir(str(tmp_path), selfplay.CEILING, 0)
    assert selfplay.ceiling_eval(folder).endswith("step100")  # not step40, not the baseline
    assert selfplay.ceiling_eval(str(tmp_path / "nothing")) is None
    # the arm at its last iteration: seed 0 p0 only (25 % vs 100 %), seed 1 p0, p3 (50 % vs 50 %)
    _run(tmp_path, "rzero", 0, [[True, False, False, False]])
    _run(tmp_path, "rzero", 1, [[True, False, False, True]])
    text = selfplay.ceiling_table(str(tmp_path), ["rzero"], [0, 1], 1)
    assert "True labels, 20 solver rollout steps" in text
    row = next(line for line in text.splitlines() if line.startswith("| rzero |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1].startswith("-37.5")  # (-75 + 0) / 2
    assert cells[3] == "1 / 4"  # won p3 (seed 1); lost p1, p2, p3 (seed 0) and p1 (seed 1)


def test_toy_plus_is_the_recipe_the_harness_measured(tmp_path, capsys):
    """cli_configs/toy_plus.yaml is toy.yaml with the kl_base_memory arm's overrides and 5
    iterations: the configuration bench/RESULTS.md confirmed, not a transcription of it."""
    from rzero_pl.cli import main

    def printed(args: list[str]) -> str:
        with pytest.raises(SystemExit):
            main([*args, "--print_config"])
        return capsys.readouterr().out

    run = str(tmp_path / "run")
    harness = selfplay.command("kl_base_memory", 0, 5, run)[3:]
    toy_plus = os.path.join(selfplay.ROOT, "cli_configs", "toy_plus.yaml")
    shipped = ["fit", "--config", toy_plus, f"--evolution.run_dir={run}", "--threads=1"]
    shipped += ["--trainer.enable_progress_bar=false", *selfplay.seed_args(0)]
    assert printed(shipped) == printed(harness)
