"""Fault injection for the kill/resume tests: die at a named point of a run, deterministically.

The run calls ``fault_point(name)`` at the moments worth dying at: the start and end of each
phase, each training batch and epoch, the middle of every atomic file write, and the moment
a checkpoint lies written under its temporary name. Nothing happens unless the environment
variable ``RZERO_PL_FAULT`` holds ``pattern@n`` or ``pattern@n:SIGNAL`` (``fnmatch`` pattern,
default signal ``KILL``): the n-th time this process passes a point matching ``pattern``, it
sends itself that signal. A test thus kills a run at a chosen moment instead of after a guess
of seconds, and gets the same kill on every machine.
"""

from __future__ import annotations

import os
import signal
from fnmatch import fnmatchcase
from typing import Any

from lightning.pytorch.callbacks import Callback

ENV = "RZERO_PL_FAULT"
_passes = 0


def parse_fault(spec: str) -> tuple[str, int, signal.Signals]:
    """``"pattern@n[:SIGNAL]"`` → (pattern, n, signal)."""
    pattern, _, rest = spec.rpartition("@")
    count, _, name = rest.partition(":")
    if not pattern or not count.isdigit() or int(count) < 1:
        raise ValueError(f"{ENV}={spec!r}: expected 'pattern@n' or 'pattern@n:SIGNAL', n >= 1")
    return pattern, int(count), signal.Signals[f"SIG{(name or 'KILL').upper()}"]


def fault_point(name: str) -> None:
    """Send the configured signal to this process if ``name`` is the chosen pass."""
    global _passes
    spec = os.environ.get(ENV)
    if not spec:
        return
    pattern, count, signum = parse_fault(spec)
    if not fnmatchcase(name, pattern):
        return
    _passes += 1
    if _passes == count:
        os.kill(os.getpid(), signum)


class FaultPoints(Callback):
    """``train:<phase>:batch`` after every training batch, ``train:<phase>:epoch`` at the end of
    every rollout step (before its checkpoint is saved); added to a phase's trainer only when
    ``RZERO_PL_FAULT`` is set."""

    def __init__(self, phase: str) -> None:
        self.phase = phase

    def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
        fault_point(f"train:{self.phase}:batch")

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        fault_point(f"train:{self.phase}:epoch")


def fault_callbacks(phase: str) -> list[Callback]:
    return [FaultPoints(phase)] if os.environ.get(ENV) else []
