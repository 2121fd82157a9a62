"""The run's experiment trackers: the run folder's TensorBoard, plus any the configuration adds.

``trainer.logger`` may be any Lightning logger or a list of them (W&B, MLflow, CSV, …). The
evolution logs through one logger (``run_logger``): the run folder's TensorBoard always (it is
the run's record: ``rzero-pl report`` and ``rzero-pl analyze`` read it, and the rollout tables
and restart markers go there), then every configured logger that is not TensorBoard. Every
phase logs to the same run of each tracker, on the run's one step axis (``OffsetLogger``).
"""

from __future__ import annotations

import os
from argparse import Namespace
from typing import Any

from lightning.pytorch.loggers import Logger, TensorBoardLogger


def run_logger(configured: list[Logger], run_dir: str) -> Logger:
    """The logger the evolution logs through: the run folder's TensorBoard, with every
    configured logger that is not TensorBoard (a configured TensorBoard becomes the run
    folder's). Another tracker's files go where it is configured, never into the run folder
    (which holds only what rzero-pl writes): ``check_outside``, which ``rzero-pl fit`` runs
    before any model loads (``rzero_pl.run.build.check_fit``)."""
    tensorboard = TensorBoardLogger(save_dir=run_dir, name="tensorboard", version="")
    others = [one for one in configured if not isinstance(one, TensorBoardLogger)]
    return Trackers([tensorboard, *others]) if others else tensorboard


def as_one_logger(loggers: list[Logger]) -> Logger | None:
    """Several loggers as one (``Trackers``), one as itself, none as None (``rzero-pl
    test``'s scores go to every configured tracker)."""
    if len(loggers) > 1:
        return Trackers(loggers)
    return loggers[0] if loggers else None


def configured_loggers(logger: Any) -> list[Logger]:
    """``trainer.logger`` as a list: one logger, a list of them, or none (``False``, ``None``;
    ``True`` is Lightning's default, a TensorBoard, which rzero-pl replaces with the run's)."""
    if isinstance(logger, Logger):
        return [logger]
    if isinstance(logger, (list, tuple)):
        return [one for one in logger if isinstance(one, Logger)]
    return []


def check_outside(logger: Logger, run_dir: str) -> None:
    """Refuse in one line a tracker whose local folder lies inside the run folder."""
    folder = logger.save_dir
    if not isinstance(folder, str) or "://" in folder:  # a server, or no local folder
        return
    run, own = os.path.realpath(run_dir), os.path.realpath(folder)
    if own == run or own.startswith(run + os.sep):
        raise ValueError(
            f"trainer.logger: {type(logger).__name__} writes to {folder}, inside the run folder "
            f"{run_dir} (which holds only rzero-pl's files); give it a save_dir outside it, "
            "e.g. runs/trackers"
        )


class Trackers(Logger):
    """Several loggers as one: scalars, hyperparameters, saves and the end go to each. The
    first one (the run folder's TensorBoard) answers for the folder and the ``experiment``
    (rollout tables are TensorBoard text)."""

    def __init__(self, loggers: list[Logger]) -> None:
        super().__init__()
        self.loggers = loggers

    @property
    def name(self) -> str | None:
        return self.loggers[0].name

    @property
    def version(self) -> int | str | None:
        return self.loggers[0].version

    @property
    def save_dir(self) -> str | None:
        return self.loggers[0].save_dir

    @property
    def log_dir(self) -> str | None:
        return getattr(self.loggers[0], "log_dir", None)

    @property
    def root_dir(self) -> str | None:
        return getattr(self.loggers[0], "root_dir", None)

    @property
    def experiment(self) -> Any:
        return self.loggers[0].experiment

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        for logger in self.loggers:
            logger.log_metrics(metrics, step=step)

    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kw: Any) -> None:
        for logger in self.loggers:
            logger.log_hyperparams(params, *args, **kw)

    def save(self) -> None:
        for logger in self.loggers:
            logger.save()

    def finalize(self, status: str) -> None:
        for logger in self.loggers:
            logger.finalize(status)
