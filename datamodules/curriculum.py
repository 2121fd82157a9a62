"""CurriculumDataModule: serve an iteration's ``curriculum.jsonl`` to the solver.

``rzero_pl.curriculum.Curriculum`` builds the file (questions, votes, labels, the band);
this module only reads the kept ``(problem, label)`` pairs of the folder it is pointed at
(``serve``) and hands them out, ``questions_per_step`` per rollout step.
"""

from __future__ import annotations

import os
from typing import Any

from rzero_pl.datamodules.base import RolloutDataModule

from rzero_pl.errors import check_number
from rzero_pl.run.io import read_jsonl


class CurriculumDataModule(RolloutDataModule):
    """The kept questions of one curriculum, with their pseudo-labels.

    Args:
        questions_per_step: Questions per solver rollout step (reference: 512).
        seed: Seed of the question order.
    """

    def __init__(self, questions_per_step: int = 512, seed: int = 0) -> None:
        check_number("CurriculumDataModule.questions_per_step", questions_per_step, at_least=1)
        super().__init__(questions_per_step, seed)
        self.folder: str | None = None
        self._pool: list[dict] | None = None

    def serve(self, folder: str) -> None:
        """Serve ``folder/curriculum.jsonl`` (a built curriculum's folder)."""
        self.folder, self._pool = folder, None

    def pool(self) -> list[dict]:
        if self._pool is None:
            if self.folder is None:
                raise RuntimeError("CurriculumDataModule: serve(folder) before fitting")
            path = os.path.join(self.folder, "curriculum.jsonl")
            self._pool = list(read_jsonl(path, ("problem", "answer")))
        return self._pool

    def state_dict(self) -> dict[str, Any]:
        return {"folder": self.folder}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.folder, self._pool = state.get("folder"), None
