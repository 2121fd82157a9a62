"""The run folder's bookkeeping: ``state.json`` and a logger whose step axis never restarts.

Every phase of the evolution is its own ``Trainer.fit``, and each one counts its
``global_step`` from zero. ``OffsetLogger`` adds the steps of all finished phases, so that
``challenger/…``, ``curriculum/…``, ``solver/…`` and ``eval/…`` share one increasing axis.
Each phase owns its own range of that axis: a training phase one step per optimizer update,
the curriculum and each evaluation one step each, so no two phases ever log at one step.
``RunState`` records which phases are finished (written atomically after each one), so a
re-run of the same command skips them. A re-run also writes a TensorBoard restart marker at
the step it resumes from (``mark_restart``), so that what the interrupted process logged past
that step is hidden, and the axis stays one continuous line.
"""

from __future__ import annotations

import fcntl
import hashlib
import inspect
import json
import os
import re
from typing import Any

from lightning.pytorch.loggers import Logger

from rzero_pl.errors import ConfigError
from rzero_pl.ground.faults import fault_point
from rzero_pl.ground.io import is_temp_name, read_json, write_json_atomic
from rzero_pl.scale.distributed import is_rank_zero

STATE_VERSION = 2  # 2: the curriculum and each evaluation own one step of the axis


class _OffsetExperiment:
    """A SummaryWriter seen through an offset: ``add_*(…, global_step=k)`` writes at
    ``offset + k`` (the rollout tables go straight to the writer, not through the logger)."""

    def __init__(self, experiment: Any, offset: int) -> None:
        self._experiment, self._offset = experiment, offset

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._experiment, name)
        if not name.startswith("add_") or not callable(attr):
            return attr
        try:
            position = list(inspect.signature(attr).parameters).index("global_step")
        except (TypeError, ValueError):  # no signature, or no global_step: pass through
            return attr

        def shifted(*args: Any, **kwargs: Any) -> Any:
            args = list(args)
            if len(args) > position and args[position] is not None:
                args[position] = self._offset + args[position]
            elif kwargs.get("global_step") is not None:
                kwargs["global_step"] = self._offset + kwargs["global_step"]
            return attr(*args, **kwargs)

        return shifted


class OffsetLogger(Logger):
    """Delegate to ``base`` with every step shifted by ``offset``."""

    def __init__(self, base: Logger, offset: int) -> None:
        super().__init__()
        self.base = base
        self.offset = offset

    @property
    def name(self) -> str | None:
        return self.base.name

    @property
    def version(self) -> int | str | None:
        return self.base.version

    @property
    def save_dir(self) -> str | None:
        return self.base.save_dir

    @property
    def log_dir(self) -> str | None:
        return getattr(self.base, "log_dir", None)

    @property
    def root_dir(self) -> str | None:
        return getattr(self.base, "root_dir", None)

    @property
    def experiment(self) -> Any:
        return _OffsetExperiment(self.base.experiment, self.offset)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.base.log_metrics(metrics, step=self.offset + (step or 0))

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        self.base.log_hyperparams(params, *args, **kwargs)

    def save(self) -> None:
        self.base.save()

    def finalize(self, status: str) -> None:
        self.base.save()  # the base outlives this phase: flush, do not close


def mark_restart(logger: Any, step: int) -> None:
    """Write TensorBoard's restart marker (``SessionLog.START``) at ``step``.

    TensorBoard's reader then drops every event at ``step`` or later that was written before
    the marker: what an interrupted process logged past its last checkpoint, which the
    resumed phase logs again.
    """
    if not is_rank_zero():
        return
    experiment = getattr(logger, "experiment", None)
    file_writer = getattr(experiment, "_get_file_writer", None)  # torch's or tensorboardX's
    if file_writer is None:
        return
    if type(experiment).__module__.startswith("tensorboardX"):
        from tensorboardX.proto.event_pb2 import Event, SessionLog
    else:
        from tensorboard.compat.proto.event_pb2 import Event, SessionLog
    file_writer().add_event(Event(session_log=SessionLog(status=SessionLog.START)), step=step)
    experiment.flush()


def config_fingerprint(config: Any) -> str:
    """A short hash of the settings that decide what a run produces."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class RunState:
    """``state.json``: finished phases, the step axis, and the configuration fingerprint.

    Each finished phase records ``step_start`` and ``step_end``; they tile the axis with no
    gap, and ``step`` (the first free step) is the last phase's ``step_end``. The file is
    checked against its schema when read (``check_state``): a damaged or hand-edited state is
    a one-line error naming the file, never a silent fresh start.
    """

    def __init__(self, folder: str) -> None:
        self.path = os.path.join(folder, "state.json")
        data = read_json(self.path, default=_MISSING)
        if data is _MISSING:
            _refuse_orphan_phases(folder, self.path)
            data = {"version": STATE_VERSION, "fingerprint": None, "step": 0, "phases": {}}
        check_state(data, self.path)
        check_phase_order(data["phases"], self.path)
        self.data: dict[str, Any] = data

    def check_fingerprint(self, fingerprint: str, allow_change: bool) -> None:
        known = self.data.get("fingerprint")
        if known is not None and known != fingerprint and not allow_change:
            raise ValueError(
                f"{self.path}: this run folder was written by a different configuration "
                f"(fingerprint {known}, now {fingerprint}); use another run_dir, or set "
                "evolution.allow_config_change: true to resume it anyway"
            )
        self.data["fingerprint"] = fingerprint
        self.save()

    @property
    def step(self) -> int:
        return int(self.data["step"])

    def done(self, phase: str) -> dict[str, Any] | None:
        return self.data["phases"].get(phase)

    def identity(self, phase: str) -> dict[str, Any]:
        """What makes an attempt at ``phase`` this run's: the phase (role and iteration), the
        configuration fingerprint and where the phase starts on the step axis. A checkpoint
        or a written curriculum of any other attempt (another phase, another configuration,
        or one whose entry was deleted from ``state.json`` to redo it: the axis has moved on)
        does not match."""
        return {"phase": phase, "fingerprint": self.data["fingerprint"], "step_start": self.step}

    def start(self, phase: str) -> None:
        """Record that an attempt at ``phase`` starts (``started``: its identity)."""
        self.data.setdefault("started", {})[phase] = self.identity(phase)
        self.save()

    def started_here(self, phase: str) -> bool:
        """Whether the recorded attempt at ``phase`` is this one (see ``identity``)."""
        return (self.data.get("started") or {}).get(phase) == self.identity(phase)

    def finish(self, phase: str, steps: int = 0, **info: Any) -> None:
        """Record ``phase`` as finished; it used ``steps`` steps of the axis from ``step``."""
        start = self.step
        self.data["step"] = start + steps
        self.data["phases"][phase] = {
            "steps": steps,
            "step_start": start,
            "step_end": self.step,
            **info,
        }
        self.save()
        fault_point(f"phase:{phase}:finished")

    def save(self) -> None:
        if is_rank_zero():
            write_json_atomic(self.path, self.data)


_MISSING = object()
_PHASE_FIELDS = {"steps": int, "step_start": int, "step_end": int}
_ADVICE = "restore it, or move the run folder away and start a new run"


def check_state(data: Any, path: str) -> None:
    """Raise a one-line ``ValueError`` naming ``path`` unless ``data`` is a valid run state:
    ``{"version": 2, "fingerprint": str | null, "step": int >= 0, "phases": {name: {"steps",
    "step_start", "step_end": int, …}}}``."""

    def bad(what: str) -> ValueError:
        return ValueError(f"{path}: not a valid run state ({what}); {_ADVICE}")

    if not isinstance(data, dict):
        raise bad(f"a JSON object expected, got {type(data).__name__}")
    if "version" in data and data["version"] != STATE_VERSION:
        raise ValueError(
            f"{path}: written by another version of rzero-pl (state version "
            f"{data['version']!r}, this one reads {STATE_VERSION}); use a new run_dir"
        )
    for key, kind in (("version", int), ("step", int), ("phases", dict)):
        if not isinstance(data.get(key), kind) or isinstance(data.get(key), bool):
            raise bad(f"'{key}' missing or not {'an object' if kind is dict else 'an integer'}")
    if not isinstance(data.get("fingerprint"), (str, type(None))):
        raise bad("'fingerprint' is not a string or null")
    for name, entry in data["phases"].items():
        if not isinstance(entry, dict):
            raise bad(f"phase '{name}' is not an object")
        for key, kind in _PHASE_FIELDS.items():
            value = entry.get(key)
            if not isinstance(value, kind) or isinstance(value, bool) or value < 0:
                raise bad(f"phase '{name}': '{key}' missing or not an integer >= 0")
        if entry["step_end"] != entry["step_start"] + entry["steps"]:
            raise bad(f"phase '{name}': step_end is not step_start + steps")
    ends = [e["step_end"] for e in data["phases"].values()]
    if data["step"] < max(ends, default=0):
        raise bad("'step' lies before the end of a recorded phase")


def _refuse_orphan_phases(folder: str, path: str) -> None:
    """A run folder with phase folders but no ``state.json`` lost its record: refuse to start
    over on top of that work (the old files would be mixed with new ones)."""
    if not os.path.isdir(folder):
        return
    phases = sorted(n for n in os.listdir(folder) if re.fullmatch(r"iter\d+|eval", n))
    if phases:
        raise ValueError(
            f"{path}: missing, but the run folder holds phase folders ({', '.join(phases)}); "
            "restore state.json, or move the run folder away and start a new run"
        )


# Every name rzero-pl writes at the top of a run folder; nothing else may be there.
RUN_FILES = frozenset({".lock", "state.json", "best.json", "config.yaml", "report.html"})
RUN_FOLDERS = re.compile(r"iter\d+|eval|analysis|tensorboard|base")


def run_folders(folder: str) -> list[str]:
    """The entries of a run folder that are rzero-pl's folders (where its temporary files
    may lie)."""
    return [n for n in os.listdir(folder) if RUN_FOLDERS.fullmatch(n)]


def check_run_folder(folder: str) -> None:
    """Raise a one-line ``ConfigError`` unless ``folder`` may be used as a run folder: absent,
    empty, or holding only what rzero-pl writes there. The file system root and the home
    folder are never run folders. Reads only: nothing is created or removed."""
    real = os.path.realpath(folder or ".")
    if real in {os.path.realpath(os.sep), os.path.realpath(os.path.expanduser("~"))}:
        raise ConfigError(
            f"evolution.run_dir: {folder!r} is the file system root or the home folder; "
            "give a folder of its own, e.g. runs/my_run"
        )
    if not os.path.exists(real):
        return
    if not os.path.isdir(real):
        raise ConfigError(f"evolution.run_dir: {folder} is a file, not a folder")
    try:
        names = sorted(os.listdir(real))
    except OSError as err:
        raise ConfigError(
            f"evolution.run_dir: {folder} cannot be read ({err.strerror}); "
            "fix its permissions or give another folder"
        ) from None
    foreign = [n for n in names if not _written_here(n)]
    if not foreign:
        return
    nested = [n for n in foreign if os.path.isfile(os.path.join(real, n, "state.json"))]
    what = (
        f"another run ({os.path.join(nested[0], 'state.json')})"
        if nested
        else f"{foreign[0]!r}"
        + (f" and {len(foreign) - 1} more" if len(foreign) > 1 else "")
        + ", which rzero-pl did not write"
    )
    raise ConfigError(
        f"evolution.run_dir: {folder} holds {what}; a run folder holds only its own files: "
        "give a new or empty folder, e.g. runs/my_run"
    )


def _written_here(name: str) -> bool:
    """Whether a top-level entry of a run folder is one rzero-pl writes (its temporary
    files: ``.state.json.tmp-…`` and the like)."""
    if name in RUN_FILES or RUN_FOLDERS.fullmatch(name):
        return True
    return is_temp_name(name) and name.rsplit(".tmp-", 1)[0][1:] in RUN_FILES


class RunFolderBusy(OSError):
    """Another live process holds the run folder's lock (a one-line error from the CLI)."""


class RunLock:
    """An exclusive lock on a run folder (``.lock``), so two processes never write one run.

    The kernel drops the lock when its process dies, even by SIGKILL: a re-run after a crash
    is never refused. Only rank zero takes it (the other ranks of a job share its folder).
    """

    def __init__(self, folder: str) -> None:
        self.path = os.path.join(folder, ".lock")
        self.handle: Any = None

    def __enter__(self) -> RunLock:
        if not is_rank_zero():
            return self
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for the whole run
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise RunFolderBusy(
                f"{self.path}: another process (pid {owner}) is running this run folder; "
                "wait for it to stop, or use another run_dir"
            ) from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        self.handle = handle
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.handle is not None:
            self.handle.close()  # closing releases the lock
            self.handle = None


def file_sha256(path: str) -> str:
    """The sha256 of a file's bytes (recorded in ``state.json`` for files a later phase reads)."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            sha.update(block)
    return sha.hexdigest()


def check_recorded_file(path: str, recorded: str | None, phase: str) -> None:
    """Raise a one-line ``ValueError`` naming ``path`` unless it is the file recorded for
    ``phase`` (a state written before hashes were recorded is not checked)."""
    if recorded is None:
        return
    if not os.path.isfile(path):
        why = "is missing"
    elif file_sha256(path) != recorded:
        why = "differs from the file recorded in state.json (cut short or edited)"
    else:
        return
    raise ValueError(
        f"{path}: {why} for finished phase {phase}; restore it, or delete the '{phase}' entry "
        "and every later one from state.json to redo them"
    )


TRAINING_STEPS = ("challenger", "curriculum", "solver")  # one iteration's, in order


def check_phase_order(phases: dict[str, Any], path: str) -> None:
    """Raise a one-line ``ValueError`` when a training phase is recorded as finished while one
    before it is not (an entry deleted from the middle): redoing that one would leave the
    later phases built on the weights or questions it replaces."""
    order = sorted(
        (int(m[1]), TRAINING_STEPS.index(m[2]))
        for m in (re.fullmatch(r"iter(\d+)/(\w+)", name) for name in phases)
        if m and m[2] in TRAINING_STEPS
    )
    if not order:
        return
    expected = [(k, i) for k in range(1, order[-1][0] + 1) for i in range(len(TRAINING_STEPS))]
    missing = [p for p in expected[: expected.index(order[-1])] if p not in order]
    if missing:
        name = lambda p: f"iter{p[0]}/{TRAINING_STEPS[p[1]]}"  # noqa: E731
        raise ValueError(
            f"{path}: {name(order[-1])} is recorded as finished but {name(missing[0])} before it "
            f"is not; to redo {name(missing[0])}, delete its entry and every later one"
        )


def check_recorded_value(
    path: str, key: str, value: Any, recorded: dict[str, Any], state_path: str
) -> None:
    """Raise a one-line ``ValueError`` naming both files when ``value`` (read from ``path``)
    is not what ``state.json`` recorded under ``key`` (nothing recorded: not checked)."""
    if key in recorded and recorded[key] != value:
        raise ValueError(
            f"{path}: '{key}' is {value!r}, but {state_path} recorded {recorded[key]!r}; "
            "restore the file, or delete that phase's entry and every later one from "
            "state.json to redo them"
        )


def check_recorded_accuracy(
    summary: dict, folder: str, recorded: dict[str, Any] | None, state_path: str
) -> None:
    """An evaluation's ``eval.json`` must hold the accuracies ``state.json`` recorded for
    it (a hand-edited one would move the best iteration in silence)."""
    accuracies = {n: b.get("accuracy") for n, b in (summary.get("benchmarks") or {}).items()}
    check_recorded_value(
        os.path.join(folder, "eval.json"), "accuracy", accuracies, recorded or {}, state_path
    )


def check_problem_counts(
    phases: dict[str, Any], phase: str, problems: dict[str, int], path: str
) -> None:
    """Raise a one-line ``ValueError`` if a benchmark's problem count differs from the one an
    earlier evaluation of this run recorded: its file changed, so the accuracies of the
    run's evaluations would not compare."""
    for other, entry in phases.items():
        for name, count in (entry.get("problems") or {}).items():
            if name in problems and problems[name] != count:
                raise ValueError(
                    f"{path}: benchmark '{name}' has {problems[name]} problems in {phase}, "
                    f"{count} in {other}; its file changed during the run: restore it, or "
                    "evaluate in a new run_dir"
                )
