"""CurriculumDataModule: serve an iteration's ``curriculum.jsonl`` to the solver.

``rzero_pl.curriculum.Curriculum`` builds the file (questions, votes, labels, the band);
this module only reads the kept ``(problem, label)`` pairs of the folder it is pointed at
(``serve``) and hands them out, ``questions_per_step`` per rollout step.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from typing import Any

from rzero_pl.datamodules.base import RolloutDataModule

from rzero_pl.errors import MAX_ITEMS, check_number
from rzero_pl.ground.io import read_jsonl


class CurriculumDataModule(RolloutDataModule):
    """The kept questions of one curriculum, with their pseudo-labels.

    Args:
        questions_per_step: Questions per solver rollout step (reference: 512).
        seed: Seed of the question order.
        replay: Share of the served pool drawn from earlier iterations' kept questions, with
            their stored labels (R-Diverse, arXiv 2602.13103; 0: this iteration's only).
        union: Serve every earlier iteration's kept questions too (the union of the
            curricula, with their stored labels) instead of a ``replay`` share.
    """

    def __init__(
        self, questions_per_step: int = 512, seed: int = 0, replay: float = 0.0, union: bool = False
    ) -> None:
        check_number(
            "CurriculumDataModule.questions_per_step",
            questions_per_step,
            at_least=1,
            at_most=MAX_ITEMS,
        )
        check_number("CurriculumDataModule.replay", replay, at_least=0, at_most=0.9)
        if union and replay:
            raise ValueError("CurriculumDataModule: set replay or union, not both")
        super().__init__(questions_per_step, seed)
        self.replay = replay
        self.union = union
        self.folder: str | None = None
        self.earlier: list[str] = []
        self._pool: list[dict] | None = None

    def serve(self, folder: str, earlier: Sequence[str] = ()) -> None:
        """Serve ``folder/curriculum.jsonl`` (a built curriculum's folder), with ``replay``'s
        share drawn from the ``earlier`` iterations' curriculum folders."""
        self.folder, self.earlier, self._pool = folder, list(earlier), None

    def pool(self) -> list[dict]:
        if self._pool is None:
            if self.folder is None:
                raise RuntimeError("CurriculumDataModule: serve(folder) before fitting")
            current = _kept(self.folder)
            older = [row for folder in self.earlier for row in _kept(folder)]
            count = len(older) if self.union else replay_count(len(current), self.replay)
            seed = self.seed * 1_000_003 + len(self.earlier)  # a new draw every iteration
            self._pool = current + replay_sample(older, count, seed)
        return self._pool

    def state_dict(self) -> dict[str, Any]:
        return {"folder": self.folder, "earlier": self.earlier}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.folder, self.earlier = state.get("folder"), list(state.get("earlier") or [])
        self._pool = None


def _kept(folder: str) -> list[dict]:
    return list(read_jsonl(os.path.join(folder, "curriculum.jsonl"), ("problem", "answer")))


def replay_count(current: int, share: float) -> int:
    """How many earlier questions join ``current`` ones so that they make ``share`` of the
    pool (R-Diverse's replay): ``round(share * current / (1 - share))``."""
    return round(share * current / (1.0 - share))


def replay_sample(rows: Sequence[dict], count: int, seed: int) -> list[dict]:
    """``count`` of ``rows`` drawn without replacement (all when fewer), seeded, each marked
    ``replayed`` and keeping its stored label and share."""
    picked = random.Random(seed).sample(list(rows), min(count, len(rows)))
    return [{**row, "replayed": True} for row in picked]
