"""Where a run is and when it will end: one line per phase change, from ``state.json``.

Each finished phase records its ``seconds``. *Elapsed* is their sum (the run's work so far,
over every process that worked on it). The *ETA* gives each phase still ahead (the one
starting included) the mean time of the finished phases of its kind (challenger, curriculum,
solver, evaluation; a skipped phase took none); while a kind ahead has no timed phase yet it is
``?``. It assumes all K iterations run (the collapse guard may stop sooner).

The live progress inside a phase (generation, votes, scoring) is ``rzero_pl.progress``'s.
"""

from __future__ import annotations

from typing import Any

from rzero_pl.progress import duration

TRAINING = ("challenger", "curriculum", "solver")


def phase_order(iterations: int, evaluated: bool) -> list[str]:
    """Every phase of a run, in the order it runs them (as ``state.json`` names them)."""
    order = ["baseline"] if evaluated else []
    kinds = TRAINING + (("eval",) if evaluated else ())
    for it in range(1, iterations + 1):
        order += [f"iter{it}/{kind}" for kind in kinds]
    return order


def kind(phase: str) -> str:
    """``challenger``, ``curriculum``, ``solver`` or ``eval`` (the baseline is an evaluation)."""
    return "eval" if phase == "baseline" else phase.rsplit("/", 1)[-1]


def _seconds(entry: dict[str, Any]) -> float | None:
    """A finished phase's time: its ``seconds``, 0 when skipped, None when not recorded."""
    if entry.get("skipped"):
        return 0.0
    seconds = entry.get("seconds")
    return float(seconds) if isinstance(seconds, (int, float)) else None


def eta_seconds(phases: dict[str, Any], ahead: list[str]) -> float | None:
    """Seconds the phases ``ahead`` will take, each its kind's mean; None while one is unknown."""
    timed: dict[str, list[float]] = {}
    for name, entry in phases.items():
        seconds = _seconds(entry)
        if seconds is not None:
            timed.setdefault(kind(name), []).append(seconds)
    if any(kind(phase) not in timed for phase in ahead):
        return None
    return sum(sum(timed[kind(p)]) / len(timed[kind(p)]) for p in ahead)


def progress(phases: dict[str, Any], phase: str, iterations: int, evaluated: bool) -> str:
    """``iteration k of K · elapsed E · ETA T`` as ``phase`` starts (``phases``: state.json's)."""
    it = int(phase[4:].split("/")[0]) if phase.startswith("iter") else 0
    where = f"iteration {it} of {iterations}" if it else f"before iteration 1 of {iterations}"
    elapsed = sum(s for s in map(_seconds, phases.values()) if s is not None)
    ahead = [p for p in phase_order(iterations, evaluated) if p not in phases]
    return f"{where} · elapsed {duration(elapsed)} · ETA {duration(eta_seconds(phases, ahead))}"
