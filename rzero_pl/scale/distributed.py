"""Many ranks, one rollout step: small helpers that every part of the loop shares.

Every rank sees the same step items (they are a seeded function of the step), keeps its own
contiguous shard of them (a prompt's group of G completions therefore never spans ranks),
and exchanges Python objects only where a statistic needs the whole rollout batch. Without
an initialised process group every helper is the single-process identity, so the same code
runs on a laptop and on many nodes.

This module is the one place that says which rank a process is and how items split over
ranks: equal contiguous shards for rollout steps (``shard``), uneven contiguous ones for the
curriculum's N candidates (``shard_bounds(..., even=False)``), strided ones for benchmark
problems (``strided_indices``, for load balance).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch.distributed as dist
from lightning.pytorch.utilities import rank_zero_only

T = TypeVar("T")
# What launchers (torchrun, Lightning, SLURM) set before any process group exists.
_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID")


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group; ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_rank_zero() -> bool:
    """True on the one process that writes shared files (the run folder, weights, eval.json).

    Asked before the process group exists too (at start-up, or in a rank Lightning spawned
    before it joins the group), so the launcher's variables and Lightning's own rank count as
    well as the process group's rank: all of them must say 0.
    """
    launched = all(os.environ.get(v, "0") == "0" for v in _RANK_VARIABLES)
    return launched and getattr(rank_zero_only, "rank", 0) == 0 and world()[0] == 0


def shard_bounds(n: int, rank: int, world_size: int, even: bool = True) -> tuple[int, int]:
    """``[start, stop)`` of ``rank``'s contiguous shard of ``n`` items; shards in rank order.

    ``even=True`` (rollout steps): shards must be equal, every rank runs the same number of
    forward/backward passes, and FSDP's collectives would wait forever on a rank with fewer
    micro-batches; an uneven ``n`` raises. ``even=False`` (work no backward pass follows, such
    as the curriculum's N candidates): the first ``n % world_size`` ranks take one item more.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in a world of size {world_size}")
    size, extra = divmod(n, world_size)
    if extra and even:
        raise ValueError(
            f"{n} items per rollout step do not split evenly over {world_size} ranks; "
            f"use a multiple of {world_size} (items_per_step / slots_per_step / "
            "questions_per_step)"
        )
    start = rank * size + min(rank, extra)
    return start, start + size + (rank < extra)


def shard(items: Sequence[T], rank: int, world_size: int, even: bool = True) -> tuple[list[T], int]:
    """``rank``'s shard of ``items`` (see :func:`shard_bounds`) and the global index of its
    first item."""
    start, stop = shard_bounds(len(items), rank, world_size, even)
    return list(items[start:stop]), start


def strided_indices(n: int, rank: int, world_size: int) -> list[int]:
    """The items one rank takes of ``n`` when it takes every ``world_size``-th one:
    ``rank, rank + world_size, …``.

    For work whose cost varies along the list, such as benchmark problems (a file sorted by
    difficulty or subject, and generation time grows with the response): every rank gets a
    similar mix and the ranks finish together, where contiguous shards would leave the
    ranks with the hard end waiting. :func:`merge_strided` puts the results back in order.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in a world of size {world_size}")
    return list(range(rank, n, world_size))


def merge_strided(shards: Sequence[Sequence[T]]) -> list[T]:
    """Undo :func:`strided_indices`: ``shards[r][j]`` is item ``r + j * len(shards)``."""
    world_size, n = len(shards), sum(len(part) for part in shards)
    merged: list[Any] = [None] * n
    for rank, part in enumerate(shards):
        expected = len(range(rank, n, world_size))
        if len(part) != expected:
            raise ValueError(f"shard {rank} has {len(part)} items, expected {expected} of {n}")
        merged[rank::world_size] = list(part)
    return merged


def gather_objects(obj: T) -> list[T]:
    """Every rank's ``obj``, in rank order, on every rank (``[obj]`` on one process)."""
    rank, size = world()
    if size == 1:
        return [obj]
    out: list[Any] = [None] * size
    dist.all_gather_object(out, obj)
    return out


def gather_lists(items: Sequence[T]) -> tuple[list[T], int]:
    """The concatenation of every rank's ``items`` and the offset of this rank's part."""
    parts = gather_objects(list(items))
    rank = world()[0]
    return [x for part in parts for x in part], sum(len(p) for p in parts[:rank])


def barrier() -> None:
    if world()[1] > 1:
        dist.barrier()


def on_rank_zero(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only and hand its (picklable) result to every rank."""
    rank, size = world()
    result = fn() if rank == 0 else None
    if size == 1:
        return result  # type: ignore[return-value]
    box = [result]
    dist.broadcast_object_list(box, src=0)
    return box[0]  # type: ignore[return-value]
