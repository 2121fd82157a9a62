"""LabelledQuestionsDataModule: serve ``(problem, answer)`` pairs to the solver."""

from __future__ import annotations

from rzero_pl.datamodules.base import RolloutDataModule

from rzero_pl.errors import check_number
from rzero_pl.questions import QuestionSource


class LabelledQuestionsDataModule(RolloutDataModule):
    """Labelled questions from a source (a JSONL file, the toy world).

    Args:
        source: Where the questions come from.
        questions_per_step: Questions per rollout step (reference: 512).
        seed: Seed of the question order.
    """

    def __init__(
        self, source: QuestionSource, questions_per_step: int = 512, seed: int = 0
    ) -> None:
        check_number(
            "LabelledQuestionsDataModule.questions_per_step", questions_per_step, at_least=1
        )
        super().__init__(questions_per_step, seed)
        self.source = source
        self._pool: list[dict] | None = None

    def pool(self) -> list[dict]:
        if self._pool is None:
            self._pool = self.source.load()
        return self._pool
