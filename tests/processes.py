"""The processes below this one, read from ``/proc`` (Linux): what the tests see of the
math-verify pool's zygote and workers without asking the pool."""

from __future__ import annotations

import os
import time

WORKER_FILE = "verify_worker.py"


def _table() -> dict[int, tuple[int, str, list[str]]]:
    """Every process: (parent, state, argv)."""
    table = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:  # gone meanwhile
            continue
        table[int(pid)] = (int(fields[1]), fields[0], argv)
    return table


def descendants(root: int | None = None, table: dict | None = None) -> dict[int, str]:
    """Processes below ``root`` (default: this one) and their states (``Z``: a zombie)."""
    table = _table() if table is None else table
    found, frontier = {}, {os.getpid() if root is None else root}
    while frontier:
        frontier = {pid for pid, (parent, _, _) in table.items() if parent in frontier}
        found.update({pid: table[pid][1] for pid in frontier})
    return found


def verify_workers(root: int | None = None) -> dict[int, str]:
    """The math-verify workers below ``root`` (default: this process; a pool's zygote for that
    pool alone) and their states: a process running ``verify_worker.py`` that is not a zygote,
    or that a zygote forked (a fork keeps its zygote's command line)."""
    table = _table()

    def runs_verify(pid: int) -> bool:
        return pid in table and any(a.endswith(WORKER_FILE) for a in table[pid][2])

    return {
        pid: state
        for pid, state in descendants(root, table).items()
        if runs_verify(pid) and ("zygote" not in table[pid][2] or runs_verify(table[pid][0]))
    }


def parent(pid: int) -> int:
    """The parent process of ``pid``."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def gone(pids: set[int], seconds: float = 5.0) -> bool:
    """Whether none of ``pids`` is still a live process below this one within ``seconds``."""
    deadline = time.monotonic() + seconds
    while set(descendants()) & pids:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def settled_workers(count: int, seconds: float = 5.0) -> set[int]:
    """This process's math-verify workers once there are ``count`` of them (a killed worker is
    reaped and its replacement started in the background), or as they are after ``seconds``."""
    deadline = time.monotonic() + seconds
    while len(workers := set(verify_workers())) != count and time.monotonic() < deadline:
        time.sleep(0.05)
    return workers
