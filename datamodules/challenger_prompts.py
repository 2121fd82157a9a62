"""ChallengerPromptsDataModule: the challenger's prompt slots.

The challenger prompt is the same for every slot; the slots only size the rollout batch
(the reference reads 512 rows of a dataset per step and ignores their content).
"""

from __future__ import annotations

from rzero_pl.datamodules.base import RolloutDataModule

from rzero_pl.errors import MAX_ITEMS, check_number


class ChallengerPromptsDataModule(RolloutDataModule):
    """B identical prompt slots per rollout step; G questions are sampled for each.

    Args:
        slots_per_step: B, prompts per rollout step (reference: 512).
    """

    def __init__(self, slots_per_step: int = 512) -> None:
        check_number(
            "ChallengerPromptsDataModule.slots_per_step",
            slots_per_step,
            at_least=1,
            at_most=MAX_ITEMS,
        )
        super().__init__(slots_per_step, seed=0)

    def pool(self) -> list[dict]:
        return [{"slot": i} for i in range(self.items_per_step)]
