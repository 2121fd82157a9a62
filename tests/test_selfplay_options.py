"""Issue 28's self-play options together in one shrunk toy evolution (2 iterations): the
cross-iteration memory of the repetition term, curriculum replay and label-confidence
advantages. Each option's maths is tested by hand in its own file (test_rewards.py,
test_curriculum.py, test_solver.py); this checks that the evolution wires them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import tensorboard_scalars
from test_kill_resume import ROOT, _config, _env

pytestmark = pytest.mark.slow

OPTIONS = [
    "--evolution.challenger.init_args.repetition.init_args.memory_max=0.5",
    "--evolution.challenger.init_args.repetition.init_args.memory_mean=0.5",
    "--data.init_args.replay=0.5",
    "--model.init_args.label_confidence=1.0",
]


def test_the_options_run_and_the_memory_remembers_the_first_iteration(tmp_path):
    config = _config(tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "rzero_pl", "fit", "--config", config, *OPTIONS],
        env=_env(None),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    scalars = tensorboard_scalars(os.path.join(tmp_path, "run", "tensorboard"))
    memory = scalars["challenger/repetition/memory_max_similarity"]
    # logged only once something is remembered: iteration 2's challenger steps (2 of them)
    assert len(memory) == 2 and all(0.0 < e.value <= 1.0 for e in memory)


def test_solver_from_base_restarts_every_solver_phase_from_the_saved_base(tmp_path, monkeypatch):
    """Each solver phase loads RUN_DIR/base/solver (saved before any training) first; the
    union of the curricula is served (unit-tested in test_curriculum.py)."""
    from rzero_pl.cli import main
    from rzero_pl.models.actor import Actor

    loaded: list[tuple[str, str]] = []
    original = Actor.load_role

    def load_role(self, role, folder):
        loaded.append((role, os.path.relpath(folder, tmp_path / "run")))
        return original(self, role, folder)

    monkeypatch.setattr(Actor, "load_role", load_role)
    config = _config(tmp_path)
    args = ["fit", "--config", config, "--evolution.solver_from_base=true"]
    main([*args, "--data.init_args.union=true"])
    base = os.path.join("base", "solver")
    assert os.path.isfile(os.path.join(tmp_path, "run", base, "model.safetensors"))
    assert [f for role, f in loaded if role == "solver"] == [base, base]
