"""Phase checkpoints that appear whole or not at all, and the check that reads them back.

Lightning writes a checkpoint through fsspec: into a temporary file in the system's temp
folder (here pointed into the run folder, ``temp_files_in``), then moved over the destination. When that folder is on another file system the move
is a copy, which a kill can cut short, and nothing is fsynced. ``AtomicCheckpoint`` saves
under a temporary name next to the destination instead, fsyncs it and renames it, so
``last.ckpt`` is always the previous rollout step's checkpoint or the new one.
``resume_point`` reads a checkpoint back before a phase resumes from it: one of another phase
or attempt, or a file that does not load (damaged outside rzero-pl), is reported and set
aside, never trained from.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_warn

from rzero_pl.ground.faults import fault_point
from rzero_pl.ground.io import TMP_MARK, fsync_tree, remove_path, replace_durably, set_aside
from rzero_pl.scale.distributed import is_rank_zero

IDENTITY_KEY = "rzero_identity"  # the phase attempt a checkpoint belongs to


class AtomicCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose files are renamed into place once fully written, and which
    writes ``last.ckpt`` at the end of every rollout step (epoch).

    Args:
        phase: The evolution phase, for the fault point ``checkpoint:<phase>`` that the
            kill/resume tests use (it fires while the new checkpoint lies written under its
            temporary name).
        identity: Stored in every checkpoint (``rzero_identity``): the phase attempt it
            belongs to (``RunState.identity``); ``resume_point`` resumes only a match.
        **kwargs: ``ModelCheckpoint``'s arguments.
    """

    def __init__(self, phase: str = "", identity: dict | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.phase = phase
        self.identity = identity

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._at_epoch_end = True
        try:
            super().on_train_epoch_end(trainer, pl_module)
            # Lightning 2.6 saves ``last.ckpt`` at an epoch's end only together with a top-k
            # checkpoint, so with ``save_top_k=0`` it would be written once, when training
            # ends: a phase killed midway would start over. Every rollout step is saved here.
            if self.save_last and not self._should_skip_saving_checkpoint(trainer):
                self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        finally:
            self._at_epoch_end = False

    def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict) -> None:
        super().on_save_checkpoint(trainer, pl_module, checkpoint)
        checkpoint[IDENTITY_KEY] = self.identity
        if getattr(self, "_at_epoch_end", False):
            mark_epoch_completed(checkpoint)

    def _save_checkpoint(self, trainer: Any, filepath: str) -> None:
        folder, name = os.path.split(filepath)
        tmp = os.path.join(folder, f".{name}{TMP_MARK}save")  # one name that every rank agrees on
        with temp_files_in(folder):
            super()._save_checkpoint(trainer, tmp)
        self._last_checkpoint_saved = filepath
        trainer.strategy.barrier("rzero_atomic_checkpoint")
        if trainer.is_global_zero and os.path.exists(tmp):
            fault_point(f"checkpoint:{self.phase}")
            if os.path.isdir(tmp):  # a sharded checkpoint is a folder: swap it whole
                fsync_tree(tmp)
                old = os.path.join(folder, f".{name}{TMP_MARK}old")
                if os.path.exists(filepath):
                    os.replace(filepath, old)
                os.replace(tmp, filepath)
                remove_path(old)
            else:
                replace_durably(tmp, filepath)
        trainer.strategy.barrier("rzero_atomic_checkpoint_done")


@contextlib.contextmanager
def temp_files_in(folder: str) -> Iterator[None]:
    """Point ``tempfile`` into ``folder/.tmp-files`` while a checkpoint is saved.

    Lightning saves through an fsspec transaction, whose local files are first written to
    ``tempfile``'s folder (the system's /tmp): a small /tmp failed a save although the run
    folder had room. The folder's name holds ``TMP_MARK``: a killed save's leftovers are
    deleted on the next start.
    """
    path = os.path.join(folder, f"{TMP_MARK}files")
    os.makedirs(path, exist_ok=True)
    previous = tempfile.tempdir
    tempfile.tempdir = path
    try:
        yield
    finally:
        tempfile.tempdir = previous
        remove_path(path)


def mark_epoch_completed(checkpoint: dict) -> None:
    """Record the epoch being saved at its end as completed.

    Lightning counts an epoch completed only after the epoch-end hooks, so a checkpoint
    written in them resumes "on epoch end": the fit loop then loads the finished epoch's
    train loader first and the next epoch's right after. For us a loader is a rollout step,
    so that resume would generate a whole rollout step for nothing (and log it twice). Marked
    completed, the checkpoint resumes at the start of the next rollout step.
    """
    progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress")
    if not progress:
        return
    for counts in (progress["total"], progress["current"]):
        if counts["processed"] > counts["completed"]:
            counts["completed"] = counts["processed"]
    checkpoint["epoch"] = progress["current"]["completed"]


def resume_point(last: str, identity: dict | None = None) -> tuple[str | None, int]:
    """``(last.ckpt, its global step)``, or ``(None, 0)`` to start the phase afresh.

    A checkpoint is trusted only when it was written by this attempt at the phase
    (``identity``: phase, configuration fingerprint, step axis). One of another attempt, or
    one that does not load (damaged outside rzero-pl: ours are renamed into place whole), is
    set aside (``last.ckpt.set-aside``, ``last.ckpt.damaged``), said in one line, and the phase
    starts over. One that cannot be read (permissions) is an error: it may be good.
    """
    if not os.path.exists(last):
        return None, 0
    meta = checkpoint_meta(last)
    if meta is None:
        rank_zero_warn(f"{last} does not load; set aside as {last}.damaged, phase restarted")
        if is_rank_zero():
            os.replace(last, last + ".damaged")
        return None, 0
    step, recorded = meta
    if recorded != identity:
        aside = set_aside(last) if is_rank_zero() else f"{last}.set-aside"
        rank_zero_warn(
            f"{last} belongs to {_attempt(recorded)}, not to this attempt at "
            f"{_attempt(identity)}; set aside as {aside}, the phase starts afresh"
        )
        return None, 0
    return last, step


def _attempt(identity: dict | None) -> str:
    if not identity:
        return "no recorded phase (an older rzero-pl)"
    return (
        f"{identity.get('phase')} (configuration {identity.get('fingerprint')}, "
        f"from step {identity.get('step_start')})"
    )


def checkpoint_step(path: str) -> int | None:
    """The ``global_step`` stored in a Lightning checkpoint file; None when it does not load."""
    meta = checkpoint_meta(path)
    return None if meta is None else meta[0]


def checkpoint_meta(path: str) -> tuple[int, dict | None] | None:
    """``(global_step, identity)`` of a Lightning checkpoint; None when it does not load.

    Loaded with ``weights_only=True`` (no pickled code runs) and memory-mapped, so only the
    few bytes read are touched. A file that cannot be read (permissions) raises a one-line
    ``ValueError``: it is not damaged, and setting it aside would lose the phase's progress.
    """
    if os.path.isdir(path):  # a sharded checkpoint (FSDP): its loop state is in meta.pt
        path = os.path.join(path, "meta.pt")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return int(checkpoint["global_step"]), checkpoint.get(IDENTITY_KEY)
    except PermissionError:
        raise ValueError(
            f"{path}: cannot be read (permission denied); give read permission back "
            "(chmod u+r) and re-run to resume from it"
        ) from None
    except Exception:
        return None


def weights_digest(folder: str) -> dict[str, dict[str, Any]]:
    """``{file: {"size", "sha256"}}`` of every file in a role's weights folder.

    Recorded in ``state.json`` when a phase is recorded, and compared before the phase's
    weights are loaded on resume (``check_weights``). The whole file is hashed: a challenger
    and a solver of one model have the same tensor names, shapes and so headers.
    """
    digest = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if not os.path.isfile(path) or TMP_MARK in name:
            continue
        sha = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                sha.update(block)
        digest[name] = {"size": os.path.getsize(path), "sha256": sha.hexdigest()}
    return digest


def check_weights(folder: str, recorded: dict[str, Any] | None, phase: str) -> None:
    """Raise a one-line ``ValueError`` naming ``folder`` unless its files are the ones
    ``state.json`` recorded for ``phase`` (size first, then content). A state without a
    record (written before checksums) is not checked."""
    if recorded is None:
        return
    redo = (
        f"restore the folder, or delete the '{phase}' entry and every later one from "
        "state.json to redo them"
    )
    if not os.path.isdir(folder):
        raise ValueError(f"{folder}: the weights of finished phase {phase} are missing; {redo}")
    why = None
    for name, expected in recorded.items():
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            why = f"{name} is missing"
        elif os.path.getsize(path) != expected["size"]:
            why = f"{name} has {os.path.getsize(path)} bytes, {expected['size']} were recorded"
        if why:
            break
    if why is None:
        digest = weights_digest(folder)
        changed = [n for n, e in recorded.items() if digest[n]["sha256"] != e["sha256"]]
        if not changed:
            return
        why = f"{changed[0]} differs from what was recorded (sha256)"
    raise ValueError(f"{folder}: not the weights of finished phase {phase} ({why}); {redo}")
