"""RolloutDataModule: one epoch is one rollout step.

``train_dataloader`` runs once per epoch (the trainer reloads loaders every epoch): it
takes this step's items, asks the module for a finished rollout step (each rank makes the
rollouts of its own shard of the items), and returns a loader over it. The items of step
``k`` are a fixed function of the seed and ``k``, so a resumed run sees the same questions
it would have seen.
"""

from __future__ import annotations

import random

import lightning as L
from torch.utils.data import DataLoader

from rzero_pl.errors import MAX_ITEMS, check_number


class RolloutDataModule(L.LightningDataModule):
    """Base for datamodules whose batches are rollouts made from a pool of items.

    Args:
        items_per_step: Items (questions or prompt slots) per rollout step.
        seed: Seed of the order in which the pool is visited.
    """

    def __init__(self, items_per_step: int, seed: int = 0) -> None:
        super().__init__()
        check_number(
            f"{type(self).__name__}.items_per_step", items_per_step, at_least=1, at_most=MAX_ITEMS
        )
        self.items_per_step = items_per_step
        self.seed = seed

    def pool(self) -> list[dict]:
        """All items this datamodule can serve."""
        raise NotImplementedError

    def items_for_step(self, step: int) -> list[dict]:
        """The items of rollout step ``step``: consecutive slices of seeded shuffles."""
        pool = self.pool()
        if not pool:
            raise RuntimeError(f"{type(self).__name__} has no items to serve")
        picked: list[dict] = []
        position = step * self.items_per_step
        while len(picked) < self.items_per_step:
            epoch, offset = divmod(position, len(pool))
            order = list(range(len(pool)))
            random.Random(self.seed * 7919 + epoch).shuffle(order)
            take = order[offset : offset + self.items_per_step - len(picked)]
            picked.extend(pool[i] for i in take)
            position += len(take)
        return picked

    def train_dataloader(self) -> DataLoader:
        # Every rank gets the whole step and keeps its shard (``GRPOModule.rollout_step``,
        # which says what the step does and which collectives it makes, in order).
        module = self.trainer.lightning_module
        return module.rollout_step(self.items_for_step(self.trainer.current_epoch))
