"""The kill-and-resume tests' shrunk toy run (tests/test_kill_resume.py), also the session's
finished run (tests/conftest.py ``finished_toy_run``) and a base for other tests' configs."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import preloaded
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ITERATIONS = 2
CANDIDATES = 8
EVAL_SAMPLES = 3


def shrunk_toy_config(tmp_path) -> str:
    """toy.yaml, shrunk: 2 iterations of 2 + 2 rollout steps, 8 candidates, 2 votes."""
    with open(os.path.join(ROOT, "cli_configs", "toy.yaml")) as f:
        config = yaml.safe_load(f)
    config["trainer"]["enable_progress_bar"] = False
    model = config["model"]["init_args"]
    # Long enough for the toy's answers and questions, so that both roles really train.
    model.update(group_size=4, minibatch_size=8, micro_batch_size=4)
    model["sampling"]["max_new_tokens"] = 48
    config["data"]["init_args"].update(questions_per_step=4)
    evolution = config["evolution"]
    evolution["curriculum"].update(candidates=CANDIDATES, min_kept=1, max_rounds=1)
    evolution["vote"].update(samples=4, band=[0.0, 1.0])  # keep every question: both solver
    evolution["vote"]["sampling"]["max_new_tokens"] = 32  # phases must run
    # The curriculum's candidates keep toy.yaml's budget (its challenger's, 64): at the shrunk
    # challenger's 48 a question and its boxed answer are cut short, and nothing is kept.
    evolution["curriculum"]["challenger_sampling"]["max_new_tokens"] = 64
    evolution.update(iterations=ITERATIONS, challenger_steps=2, solver_steps=2)
    evolution["run_dir"] = str(tmp_path / "run")
    evolution["challenger"]["init_args"]["group_size"] = 4
    evolution["challenger"]["init_args"]["sampling"]["max_new_tokens"] = 48
    evolution["challenger_data"]["init_args"]["slots_per_step"] = 2
    evolution["evaluation"]["init_args"].update(max_samples=EVAL_SAMPLES, max_new_tokens=8)
    path = tmp_path / "toy_tiny.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


def run_env(fault: str | None) -> dict[str, str]:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"}
    env.pop("RZERO_PL_FAULT", None)
    if fault:
        env["RZERO_PL_FAULT"] = fault
    return env


def fresh_command(config: str) -> list[str]:
    """``python -m rzero_pl fit``, a new interpreter: the command as users run it."""
    return [sys.executable, "-m", "rzero_pl", "fit", "--config", config]


def uninterrupted_run(folder) -> tuple[str, str, float]:
    """The shrunk toy configuration run once in ``folder`` by ``python -m rzero_pl`` in a new
    interpreter, never interrupted: (config, run folder, seconds of work from the moment it
    took its folder's lock to its exit)."""
    config, run_dir = shrunk_toy_config(folder), str(folder / "run")
    with open(folder / "stderr.txt", "w") as log:  # a file: a full pipe would stall it
        process = subprocess.Popen(
            fresh_command(config), env=run_env(None), cwd=ROOT, stdout=log, stderr=log
        )
        locked = preloaded.wait_for(os.path.join(run_dir, ".lock"), process, timeout=600)
        assert process.wait(timeout=900) == 0, (folder / "stderr.txt").read_text()[-3000:]
    return config, run_dir, time.perf_counter() - locked
