"""``rzero-pl`` runs started from one interpreter that has already imported the CLI.

Importing ``rzero_pl.cli`` (torch, Lightning, transformers) takes about 5 seconds, most of a
shrunk toy run's life, and the kill tests start 30 runs. Here each run is a new process forked
from multiprocessing's fork server, which imported the CLI once: it is still a separate
process with its own environment, working folder, output file and signals, killed with a real
SIGKILL, and its exit status reads like ``subprocess``'s (``-9`` when killed). The child runs
``rzero_pl.cli.main()`` on ``sys.argv`` as ``python -m rzero_pl`` does, and at its end the
interpreter's exit handlers, which multiprocessing would skip.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import subprocess
import sys
import time
import warnings
from typing import Any

_CONTEXT: Any = None


def _context() -> Any:
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = multiprocessing.get_context("forkserver")
        _CONTEXT.set_forkserver_preload(["rzero_pl.cli"])
    return _CONTEXT


def _child(args: list[str], env: dict[str, str], cwd: str, log: str) -> None:
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    if env.get("PYTHONWARNINGS") == "ignore":  # read at interpreter start-up, which was earlier
        warnings.simplefilter("ignore")
    sys.argv = ["rzero-pl", *args]
    from rzero_pl.cli import main

    try:
        main()
    finally:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()


class Run:
    """A started run, with the part of ``subprocess.Popen``'s interface the tests use."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: str, log: str) -> None:
        self._process = _context().Process(target=_child, args=(args, env, cwd, log))
        self._process.start()

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired("rzero-pl", timeout)
        return self._process.exitcode

    def kill(self) -> None:
        self._process.kill()  # SIGKILL


def run(
    args: list[str], env: dict[str, str], cwd: str, log: str, timeout: float
) -> tuple[int, str]:
    """Run to its end (or ``timeout``, which only catches a hang); (exit status, its output)."""
    open(log, "w").close()
    process = Run(args, env, cwd, log)
    try:
        status = process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
    with open(log, encoding="utf-8", errors="replace") as f:
        return status, f.read()


def wait_for(path: str, process: Any, timeout: float) -> float:
    """Poll until ``path`` exists or ``process`` (a ``Run`` or a ``Popen``) ends; the time it
    appeared (``perf_counter``)."""
    start = time.perf_counter()
    while not os.path.exists(path) and process.poll() is None:
        if time.perf_counter() - start > timeout:
            process.kill()
            raise AssertionError(f"no {path} after {timeout} s")
        time.sleep(0.02)
    return time.perf_counter()
