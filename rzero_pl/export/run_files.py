"""What an export reads from a run folder: its state, its configuration, the chosen weights.

Only finished phases are exported, and their files are checked against what ``state.json``
recorded (the weights' sizes and sha256, the curriculum's sha256), as a resumed run checks them:
an export never publishes weights or curricula the run did not write.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import yaml

from rzero_pl.errors import one_line
from rzero_pl.ground.io import read_json
from rzero_pl.ground.weights import resolve_weights
from rzero_pl.models.sources import ModelSource
from rzero_pl.roles import ROLES
from rzero_pl.run.checkpoints import check_weights
from rzero_pl.run.state import check_state


@dataclass(frozen=True)
class Run:
    """A finished (or stopped) run folder, read once."""

    folder: str
    state: dict[str, Any]
    config: dict[str, Any]
    config_text: str

    def finished(self, step: str) -> list[int]:
        """The iterations whose ``step`` (``solver``, ``curriculum``, …) is recorded as done."""
        found = [re.fullmatch(rf"iter(\d+)/{step}", name) for name in self.state["phases"]]
        return sorted(int(m[1]) for m in found if m)


@dataclass(frozen=True)
class Choice:
    """The weights to export: ``iteration`` 0 is the base (``weights`` None)."""

    role: str
    iteration: int
    weights: str | None
    chosen_by: str  # how: "best.json (mean accuracy)", "--iteration"


def open_run(folder: str) -> Run:
    """Read ``folder``'s ``state.json`` and ``config.yaml``; one line when it is not a run."""
    state_path = os.path.join(folder, "state.json")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: no such run folder (give an evolution.run_dir)")
    state = read_json(state_path)
    if state is None:
        raise FileNotFoundError(
            f"{folder}: not a run folder (no state.json); give the evolution.run_dir of a run"
        )
    check_state(state, state_path)
    config_path = os.path.join(folder, "config.yaml")
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"{config_path}: missing; the export needs the run's settings")
    with open(config_path, encoding="utf-8") as f:
        text = f.read()
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"{config_path}: not YAML ({one_line(str(err))})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{config_path}: not a run configuration (a YAML mapping expected)")
    return Run(folder, state, config, text)


def choose(run: Run, role: str, iteration: int | None) -> Choice:
    """``role``'s weights of ``iteration``, or of the best iteration (``best.json``)."""
    if role not in ROLES:
        raise ValueError(f"--role: {role!r} is not a role; choose one of {', '.join(ROLES)}")
    finished = run.finished(role)
    if iteration is None:
        record = read_json(os.path.join(run.folder, "best.json"))
        if record is None:
            raise FileNotFoundError(
                f"{run.folder}: no best.json (the run has no evaluation, or none finished); "
                f"pass --iteration K (finished {role} iterations: {_listed(finished)})"
            )
        weights = resolve_weights(os.path.join(run.folder, "best"), role)  # checks state.json
        iteration, chosen_by = int(record["iteration"]), f"best.json ({record.get('metric')})"
    else:
        weights, chosen_by = None, "--iteration"
        if iteration < 0 or (iteration > 0 and iteration not in finished):
            raise ValueError(
                f"--iteration: {iteration} is not a finished {role} phase of {run.folder} "
                f"(finished: {_listed(finished)}; 0 is the base)"
            )
        if iteration > 0:
            weights = os.path.join(run.folder, f"iter{iteration}", role, "weights")
    if weights is not None:
        phase = f"iter{iteration}/{role}"
        check_weights(weights, (run.state["phases"].get(phase) or {}).get("weights"), phase)
    return Choice(role, iteration, weights, chosen_by)


def _listed(iterations: list[int]) -> str:
    return ", ".join(map(str, iterations)) or "none"


def section(config: Any, *keys: str) -> Any:
    """``config[k1][k2]…`` through ``init_args`` wrappers (None when a key is missing)."""
    node = config
    for key in keys:
        if isinstance(node, dict) and isinstance(node.get("init_args"), dict):
            node = node["init_args"]
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    if isinstance(node, dict) and isinstance(node.get("init_args"), dict):
        return {**node["init_args"], "class_path": node.get("class_path")}
    return node


def model_spec(run: Run) -> dict[str, Any]:
    """The run's ``actor.policy.model`` (``class_path``, ``init_args``) as config.yaml says it."""
    policy = section(run.config, "actor", "policy") or {}
    spec = policy.get("model")
    if not isinstance(spec, dict) or "class_path" not in spec:
        raise ValueError(
            f"{run.folder}/config.yaml: no actor.policy.model; the base model cannot be rebuilt"
        )
    return spec


def model_source(run: Run) -> ModelSource:
    """The run's base model source, built from ``config.yaml`` as the CLI built it."""
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--model", type=ModelSource)
    try:
        parsed = parser.parse_object({"model": model_spec(run)})
        return parser.instantiate_classes(parsed).model
    except Exception as err:  # noqa: BLE001  jsonargparse raises several kinds: say which key
        raise ValueError(
            f"{run.folder}/config.yaml: actor.policy.model: {one_line(str(err))}"
        ) from None
