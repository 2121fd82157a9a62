"""Issue 28's self-play options together in one shrunk toy evolution (2 iterations): the
cross-iteration memory of the repetition term, label-confidence advantages, and the solver
restarting from the base on the union of the curricula. Each option's maths is tested by hand
in its own file (test_rewards.py, test_curriculum.py, test_solver.py; replay, which excludes
the union, there too); this checks that the evolution wires them."""

from __future__ import annotations

import os

import pytest
from conftest import tensorboard_scalars
from test_kill_resume import _config

pytestmark = pytest.mark.slow

OPTIONS = [
    "--evolution.challenger.init_args.repetition.init_args.memory_max=0.5",
    "--evolution.challenger.init_args.repetition.init_args.memory_mean=0.5",
    "--model.init_args.label_confidence=1.0",
    "--evolution.solver_from_base=true",
    "--data.init_args.union=true",
]


def test_the_options_run_remember_and_restart_the_solver_from_the_base(tmp_path, monkeypatch):
    from rzero_pl.cli import main
    from rzero_pl.models.actor import Actor

    loaded: list[tuple[str, str]] = []
    original = Actor.load_role

    def load_role(self, role, folder):
        loaded.append((role, os.path.relpath(folder, tmp_path / "run")))
        return original(self, role, folder)

    monkeypatch.setattr(Actor, "load_role", load_role)
    main(["fit", "--config", _config(tmp_path), *OPTIONS])
    # The solver's two phases each start from the base, saved before any training.
    base = os.path.join("base", "solver")
    assert os.path.isfile(os.path.join(tmp_path, "run", base, "model.safetensors"))
    assert [f for role, f in loaded if role == "solver"] == [base, base]
    # The memory term is logged once something is remembered: iteration 2's 2 challenger steps.
    scalars = tensorboard_scalars(os.path.join(tmp_path, "run", "tensorboard"))
    memory = scalars["challenger/repetition/memory_max_similarity"]
    assert len(memory) == 2 and all(0.0 < e.value <= 1.0 for e in memory)
