"""Many ranks, one rollout step: small helpers that every part of the loop shares.

Every rank sees the same step items (they are a seeded function of the step), keeps its own
contiguous shard of them (a prompt's group of G completions therefore never spans ranks),
and exchanges Python objects only where a statistic needs the whole rollout batch. Without
an initialised process group every helper is the single-process identity, so the same code
runs on a laptop and on many nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch.distributed as dist

T = TypeVar("T")


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group; ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_rank_zero() -> bool:
    """True on the process that writes shared files (the run folder, weights)."""
    return world()[0] == 0


def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """``[start, stop)`` of ``rank``'s contiguous, equal shard of ``n`` items.

    Shards must be equal: every rank runs the same number of forward/backward passes, and
    FSDP's collectives would wait forever on a rank with fewer micro-batches.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in a world of size {world_size}")
    if n % world_size:
        raise ValueError(
            f"{n} items per rollout step do not split evenly over {world_size} ranks; "
            f"use a multiple of {world_size} (items_per_step / slots_per_step / "
            "questions_per_step)"
        )
    size = n // world_size
    return rank * size, (rank + 1) * size


def shard(items: Sequence[T], rank: int, world_size: int) -> tuple[list[T], int]:
    """``rank``'s shard of ``items`` and the global index of its first item."""
    start, stop = shard_bounds(len(items), rank, world_size)
    return list(items[start:stop]), start


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
