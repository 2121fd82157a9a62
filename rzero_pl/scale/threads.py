"""CPU threads: one share of the cores per rank, so that nothing oversubscribes them.

A CPU run has three kinds of busy work: the trainer's torch ops, a CPU vLLM engine (in the
trainer's process; it binds its OpenMP threads to the CPUs the process may use) and the
answer-verify workers (one process per CPU the parent may use, ``verify_pool``). They run one
after the other inside a rank, so each may use the rank's whole share; what oversubscribes is
several ranks each taking every core (torch's default is one thread per core, and measured
here with a busy neighbour, ``generate`` ran 10x slower with 2 threads than with 1).

``configure_threads`` gives local rank r of L ranks its own 1/L of the allowed CPUs (the
process's affinity, inherited by its verify workers and read by vLLM's CPU binding) and sets
torch's thread count to that share, or to the ``threads`` setting when one is given (else to
``OMP_NUM_THREADS`` when the user set it).
"""

from __future__ import annotations

import os


def allowed_cpus() -> list[int]:
    """The CPUs this process may run on (all of ``os.cpu_count()`` where affinity is unknown)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def cpu_share(cpus: list[int], local_rank: int, local_ranks: int) -> list[int]:
    """Local rank ``local_rank``'s equal, disjoint share of ``cpus`` (at least one CPU; ranks
    wrap around when there are more ranks than CPUs)."""
    if local_ranks <= 1:
        return list(cpus)
    per = max(1, len(cpus) // local_ranks)
    start = (local_rank * per) % len(cpus)
    return cpus[start : start + per]


def thread_count(requested: int | None, share: list[int], env: str | None = None) -> int:
    """``threads`` when set (>= 1), else ``OMP_NUM_THREADS`` (``env``) when the user set it,
    else one thread per CPU of the share."""
    if requested is not None and requested < 1:
        raise ValueError(f"threads must be >= 1, got {requested}")
    if requested is None and env and env.strip().isdigit() and int(env) >= 1:
        return int(env)
    return requested or len(share)


def configure_threads(requested: int | None, local_rank: int = 0, local_ranks: int = 1) -> int:
    """Pin this CPU rank to its share of the cores and set torch's threads; return the count."""
    import torch

    cpus = allowed_cpus()
    share = cpu_share(cpus, local_rank, local_ranks)
    if share != cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, share)
    threads = thread_count(requested, share, os.environ.get("OMP_NUM_THREADS"))
    torch.set_num_threads(threads)
    return threads
