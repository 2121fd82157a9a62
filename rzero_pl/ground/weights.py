"""Where a role's weights folder points: a folder itself, or a run's ``best`` (the iteration
the collapse guard recorded in ``RUN_DIR/best.json``, checked against ``state.json``)."""

from __future__ import annotations

import os

from rzero_pl.ground.io import read_json


def resolve_weights(folder: str, role: str) -> str | None:
    """``folder`` itself, or for ``RUN_DIR/best`` the best iteration's ``role`` weights
    (None: the best is the base, nothing to load)."""
    if os.path.basename(os.path.normpath(folder)) != "best" or os.path.isdir(folder):
        return folder
    path = os.path.join(os.path.dirname(os.path.normpath(folder)), "best.json")
    record = read_json(path)
    if record is None:
        raise FileNotFoundError(f"{folder}: no such weights folder, and no {path} to resolve it")
    state_path = os.path.join(os.path.dirname(path), "state.json")
    recorded = (read_json(state_path) or {}).get("best")
    if recorded is not None and recorded != record:  # a hand-edited best.json: never trusted
        raise ValueError(
            f"{path}: differs from the best iteration {state_path} recorded "
            f"(iteration {recorded.get('iteration')}); restore it from state.json's 'best'"
        )
    relative = record["weights"].get(role)
    if relative is None:
        return None
    return os.path.join(os.path.dirname(path), relative)
