"""Datamodules: what each rollout step is made from (installed as ``rzero_pl.datamodules``)."""

from rzero_pl.datamodules.base import RolloutDataModule
from rzero_pl.datamodules.challenger_prompts import ChallengerPromptsDataModule
from rzero_pl.datamodules.labelled import LabelledQuestionsDataModule
from rzero_pl.datamodules.pseudo_labelled import CurriculumDataModule

__all__ = [
    "ChallengerPromptsDataModule",
    "CurriculumDataModule",
    "LabelledQuestionsDataModule",
    "RolloutDataModule",
]
