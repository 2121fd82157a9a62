"""BenchmarkEvaluation: score the solver on benchmarks before and after a fit."""

from __future__ import annotations

import lightning as L

from rzero_pl.benchmarks.evaluation import Evaluation


class BenchmarkEvaluation(Evaluation, L.Callback):
    """Evaluate once when a fit starts from scratch (the baseline) and once when it ends.

    For a single fit (e.g. the solver on labelled questions); takes the arguments of
    ``rzero_pl.benchmarks.evaluation.Evaluation``, which the evolution runs itself (its
    ``evaluation:``). Every rank scores its shard of the problems; rank 0 logs and writes.
    """

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Not on a resumed fit: its baseline exists (global_step is still 0 here, as the
        # loops are restored after this hook, but the restored weights are not the base).
        if self.baseline and trainer.global_step == 0 and trainer.ckpt_path is None:
            self._for(pl_module).run(pl_module.actor, "baseline", 0, trainer.logger)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        step = trainer.global_step
        self._for(pl_module).run(pl_module.actor, f"step{step}", step, trainer.logger)

    def _for(self, pl_module: L.LightningModule) -> Evaluation:
        """Bound to the trained solver's budget and grading timeout (``SolverGRPO.reading``)."""
        return self.bound_to(pl_module.reading()) if hasattr(pl_module, "reading") else self
