"""The co-evolution: K iterations of challenger → curriculum → solver → evaluation.

Both roles continue from their own previous weights; iteration 1 starts both from the
base. The solver that scores the challenger and labels the curriculum is the previous
iteration's solver (with LoRA: the solver adapter as it stands before this iteration's
solver phase). Everything lives in one run folder::

    run_dir/
      state.json                     finished phases, step axis, config fingerprint
      tensorboard/                   one TensorBoard run for all phases
      eval/baseline/                 the base solver's evaluation (eval.json, samples/)
      iter1/challenger/weights/      the challenger after this iteration (HF/PEFT form)
      iter1/challenger/checkpoints/  Lightning checkpoints while the phase runs
      iter1/curriculum/              questions.jsonl, curriculum.jsonl, curriculum.json
      iter1/solver/weights/, iter1/solver/checkpoints/
      iter1/eval/                    the solver's evaluation after this iteration

Re-running the same command resumes: finished phases are skipped (their weights are
loaded), a phase in progress restarts from its last checkpoint, a written curriculum is
reused.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from rzero_pl.challenger import ChallengerGRPO
from rzero_pl.evaluation import Evaluation
from rzero_pl.run_state import OffsetLogger, RunState
from rzero_pl.solver import SolverGRPO


class Evolution:
    """The outer loop of R-Zero.

    Args:
        challenger: The challenger's GRPO settings (it shares the solver's policy and engine).
        challenger_data: The challenger's prompt slots per rollout step.
        iterations: K, co-evolution iterations (paper: 3).
        challenger_steps: Challenger rollout steps per iteration (reference: 5).
        solver_steps: Solver rollout steps per iteration (reference: 15).
        run_dir: The run folder (see the module docstring).
        evaluation: Benchmarks run on the base solver and after every solver phase.
        allow_config_change: Resume a run folder written by a different configuration.
    """

    def __init__(
        self,
        challenger: ChallengerGRPO,
        challenger_data: L.LightningDataModule,
        iterations: int = 3,
        challenger_steps: int = 5,
        solver_steps: int = 15,
        run_dir: str = "runs/rzero",
        evaluation: Evaluation | None = None,
        allow_config_change: bool = False,
    ) -> None:
        if iterations < 1:
            raise ValueError(f"evolution.iterations must be >= 1, got {iterations}")
        self.challenger = challenger
        self.challenger_data = challenger_data
        self.iterations = iterations
        self.challenger_steps = challenger_steps
        self.solver_steps = solver_steps
        self.run_dir = run_dir
        self.evaluation = evaluation
        self.allow_config_change = allow_config_change

    def run(
        self,
        solver: SolverGRPO,
        curriculum: Any,
        make_trainer: Callable[..., L.Trainer],
        logger: Any,
        fingerprint: str = "",
    ) -> RunState:
        """Run (or resume) every iteration; ``make_trainer(**overrides)`` builds each phase's trainer."""
        os.makedirs(self.run_dir, exist_ok=True)
        state = RunState(self.run_dir)
        state.check_fingerprint(fingerprint, self.allow_config_change)
        self.challenger.bind(solver.policy, solver.engine)
        self._evaluate(
            solver, state, "baseline", os.path.join(self.run_dir, "eval", "baseline"), logger
        )
        for it in range(1, self.iterations + 1):
            folder = os.path.join(self.run_dir, f"iter{it}")
            self._phase(
                state,
                f"iter{it}/challenger",
                self.challenger,
                self.challenger_data,
                self.challenger_steps,
                folder,
                make_trainer,
                logger,
            )
            report = self._curriculum(state, it, solver, curriculum, folder, logger)
            if report.kept == 0:
                rank_zero_warn(
                    f"iteration {it}: the curriculum kept no question; solver phase skipped"
                )
                state.finish(f"iter{it}/solver", skipped="empty curriculum")
            else:
                self._phase(
                    state,
                    f"iter{it}/solver",
                    solver,
                    curriculum,
                    self.solver_steps,
                    folder,
                    make_trainer,
                    logger,
                )
            self._evaluate(solver, state, f"iter{it}/eval", os.path.join(folder, "eval"), logger)
        return state

    def _phase(
        self,
        state: RunState,
        phase: str,
        module: Any,
        data: Any,
        steps: int,
        folder: str,
        make_trainer: Callable[..., L.Trainer],
        logger: Any,
    ) -> None:
        """Fit one role for ``steps`` rollout steps, or load its weights if already done."""
        role = module.role
        weights = os.path.join(folder, role, "weights")
        if state.done(phase):
            if os.path.isdir(weights):
                module.policy.load_role(role, weights)
                module.engine.push(role)
            return
        checkpoints = os.path.join(folder, role, "checkpoints")
        last = os.path.join(checkpoints, "last.ckpt")
        trainer = make_trainer(
            max_epochs=steps,
            max_steps=-1,
            logger=OffsetLogger(logger, state.step),
            callbacks=[ModelCheckpoint(dirpath=checkpoints, save_last=True, save_top_k=0)],
            default_root_dir=os.path.join(folder, role),
        )
        start = time.perf_counter()
        rank_zero_info(
            f"[{phase}] {steps} rollout steps" + (" (resuming)" if os.path.exists(last) else "")
        )
        trainer.fit(module, data, ckpt_path=last if os.path.exists(last) else None)
        if trainer.current_epoch < steps:  # interrupted (Ctrl-C, SIGTERM): resume next time
            raise KeyboardInterrupt(
                f"{phase} stopped at rollout step {trainer.current_epoch}/{steps}"
            )
        if trainer.is_global_zero:
            module.policy.save_role(role, weights)
        seconds = time.perf_counter() - start
        logger.log_metrics(
            {f"{role}/phase_seconds": seconds}, step=state.step + trainer.global_step
        )
        state.finish(phase, steps=trainer.global_step, seconds=seconds)

    def _curriculum(
        self,
        state: RunState,
        it: int,
        solver: SolverGRPO,
        curriculum: Any,
        folder: str,
        logger: Any,
    ) -> Any:
        report = curriculum.build(
            solver.engine, solver.policy.tokenizer, os.path.join(folder, "curriculum"), seed=it
        )
        if not state.done(f"iter{it}/curriculum"):
            metrics = {f"curriculum/{k}": v for k, v in report.metrics().items()}
            logger.log_metrics(metrics, step=state.step)
            state.finish(f"iter{it}/curriculum", kept=report.kept)
        rank_zero_info(f"[iter{it}/curriculum] {report.kept} of {report.candidates} kept")
        return report

    def _evaluate(
        self, solver: SolverGRPO, state: RunState, phase: str, folder: str, logger: Any
    ) -> None:
        if self.evaluation is None or state.done(phase):
            return
        result = self.evaluation.run(solver, phase, state.step, logger, folder=folder)
        state.finish(phase, accuracy=result.accuracies())
