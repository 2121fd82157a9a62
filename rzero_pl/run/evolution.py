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
      best.json                      the best iteration so far (``selection``); RUN_DIR/best
      analysis/                      iterK.json, analysis.md (``analysis``, or ``rzero-pl analyze``)
      base/solver/                   the base solver (``solver_from_base`` only)

Re-running the same command resumes: finished phases are skipped (their weights are
loaded), a phase in progress restarts from its last checkpoint, a written curriculum is
reused. Every file is written atomically (``rzero_pl.ground.io``, ``AtomicCheckpoint``), so a kill
at any moment leaves each file whole or absent; temporary files of a killed writer are
deleted on the next start. SIGTERM (what SLURM sends before pre-emption) stops the run at
the next safe point and exits with status 143; the next run resumes from the last finished
rollout step.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from rzero_pl.analysis.analyze import Analysis, latest_solver
from rzero_pl.analysis.dynamics import scalars
from rzero_pl.benchmarks.evaluation import Evaluation
from rzero_pl.curriculum import ChallengerWriting, Curriculum, CurriculumReport
from rzero_pl.errors import MAX_ITERATIONS, MAX_STEPS, ConfigError, check_number
from rzero_pl.ground.faults import fault_callbacks, fault_point
from rzero_pl.ground.io import read_json, read_jsonl, remove_stale_temps, set_aside
from rzero_pl.grpo.challenger import ChallengerGRPO
from rzero_pl.grpo.solver import SolverGRPO
from rzero_pl.models.actor import Actor
from rzero_pl.rewards import MajorityVote
from rzero_pl.run.checkpoints import AtomicCheckpoint, check_weights, resume_point, weights_digest
from rzero_pl.run.progress import progress
from rzero_pl.run.selection import BestIteration, read_summary
from rzero_pl.run.state import (
    OffsetLogger,
    RunLock,
    RunState,
    check_problem_counts,
    check_recorded_accuracy,
    check_recorded_file,
    check_recorded_value,
    check_run_folder,
    file_sha256,
    mark_restart,
    run_folders,
)
from rzero_pl.scale.distributed import is_rank_zero, on_rank_zero

if TYPE_CHECKING:  # the core never imports the datamodules; the CLI hands one over
    from rzero_pl.datamodules.pseudo_labelled import CurriculumDataModule

PREEMPTED_EXIT_CODE = 143  # 128 + SIGTERM, as a shell reports a process that SIGTERM ended
INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT: Ctrl-C
STOP_SIGNALS = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "Ctrl-C (SIGINT)"}


class _FitEndLine(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("`Trainer.fit` stopped: `max_epochs=")


@contextlib.contextmanager
def _without_fit_end_line() -> Iterator[None]:
    """Lightning's "`Trainer.fit` stopped: `max_epochs=S` reached." off during a phase's fit:
    a phase always runs its S rollout steps (``_fit`` refuses a fit that ends sooner), so the
    line said nothing, once per phase."""
    lightning = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    quiet = _FitEndLine()
    lightning.addFilter(quiet)
    try:
        yield
    finally:
        lightning.removeFilter(quiet)


class Preempted(SystemExit):
    """SIGTERM or Ctrl-C stopped the run at a safe point; re-running the same command
    resumes it."""

    def __init__(self, message: str, code: int = PREEMPTED_EXIT_CODE) -> None:
        super().__init__(code)
        self.message = message


def _error_of(check: Callable[..., None], *args: Any) -> str | None:
    """The one-line ``ValueError`` that ``check(*args)`` raises, as text (None: passed)."""
    try:
        check(*args)
    except ValueError as err:
        return str(err)
    return None


def check_writable(run_dir: str) -> None:
    """Refuse in one line a run folder that is empty or cannot be made and written (the
    alternative was a bare Errno line naming no setting, after the model had loaded)."""
    if not run_dir or not run_dir.strip():
        raise ConfigError("evolution.run_dir is empty; give a folder, e.g. runs/my_run")
    existing = os.path.abspath(run_dir)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ConfigError(f"evolution.run_dir: {existing} is a file; {run_dir} cannot be made")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"evolution.run_dir: {existing} is not writable (read-only, or its permissions); "
            "give a folder you can write"
        )


@dataclass(frozen=True)
class Bound:
    """An evolution's parts bound to its roles (``Evolution.bind``): the challenger's vote,
    the curriculum's labelling vote (the same one unless ``label_vote``), the curriculum and
    the evaluation."""

    vote: MajorityVote
    labels: MajorityVote
    curriculum: Curriculum
    evaluation: Evaluation | None


class Evolution:
    """The outer loop of R-Zero.

    Args:
        challenger: The challenger's GRPO settings (it trains the run's one actor too).
        challenger_data: The challenger's prompt slots per rollout step.
        curriculum: How each iteration's questions are written, labelled and kept.
        vote: The solver's majority vote (m answers per question): the challenger's
            uncertainty reward and, unless ``label_vote`` is given, the curriculum's labels
            and band, said once.
        label_vote: The curriculum's own vote (its m, band and ``missing_cluster``), for the
            labels and the self-play analysis; None: ``vote``. The released code labels with
            m = 9 and keeps 3-7 of 9 (band [0.3, 0.8]) while its reward votes with m = 10.
        iterations: K, co-evolution iterations (paper: 3).
        challenger_steps: Challenger rollout steps per iteration (reference: 5).
        solver_steps: Solver rollout steps per iteration (reference: 15).
        run_dir: The run folder (see the module docstring).
        evaluation: Benchmarks run on the base solver and after every solver phase.
        allow_config_change: Resume a run folder written by a different configuration.
        train_challenger: False runs the paper's "Base Challenger" ablation: the challenger
            phase is skipped, so every curriculum is written by the untrained challenger
            (the base model); everything else is unchanged.
        selection: The collapse guard: which iteration is the best (``best.json``) and,
            with ``patience``, when to stop (default: keep the best, never stop early).
        analysis: The paper's self-play analysis after every iteration's evaluation
            (``analysis/iterK.json``, ``analysis/analysis.md``, ``analysis/…`` scalars);
            None: not run (``rzero-pl analyze RUN_DIR`` runs it afterwards).
        solver_from_base: Every solver phase starts from the base weights (kept once in
            ``RUN_DIR/base/solver``) instead of the previous iteration's solver; with the
            curriculum served as the union of every iteration's (``data.union``) this tells
            drift from the curricula apart. The votes still come from the previous solver.
        cumulative_steps: With ``solver_from_base``, iteration k's solver trains
            k x ``solver_steps`` rollout steps, as many as a solver that never restarted has
            trained by then (the restart then costs no training, only the weights it drifted
            to); the phase takes k times as long.
    """

    def __init__(
        self,
        challenger: ChallengerGRPO,
        challenger_data: L.LightningDataModule,
        curriculum: Curriculum | None = None,
        vote: MajorityVote | None = None,
        label_vote: MajorityVote | None = None,
        iterations: int = 3,
        challenger_steps: int = 5,
        solver_steps: int = 15,
        run_dir: str = "runs/rzero",
        evaluation: Evaluation | None = None,
        allow_config_change: bool = False,
        train_challenger: bool = True,
        selection: BestIteration | None = None,
        analysis: Analysis | None = None,
        solver_from_base: bool = False,
        cumulative_steps: bool = False,
    ) -> None:
        check_number("evolution.iterations", iterations, at_least=1, at_most=MAX_ITERATIONS)
        # 0 would train nothing in silence (a negative count never stops: Lightning reads
        # max_epochs=-1 as no limit); leaving a role untrained is an ablation setting of its own.
        check_number("evolution.challenger_steps", challenger_steps, at_least=1, at_most=MAX_STEPS)
        check_number("evolution.solver_steps", solver_steps, at_least=1, at_most=MAX_STEPS)
        check_writable(run_dir)
        check_run_folder(run_dir)  # before any model loads; run() checks again
        self.challenger = challenger
        self.challenger_data = challenger_data
        self.curriculum = curriculum or Curriculum()
        self.vote = vote or MajorityVote()
        self.label_vote = label_vote
        self.iterations = iterations
        self.challenger_steps = challenger_steps
        self.solver_steps = solver_steps
        self.run_dir = run_dir
        self.evaluation = evaluation
        self.allow_config_change = allow_config_change
        self.train_challenger = train_challenger
        self.selection = selection or BestIteration()
        if self.selection.signal == "probe_confidence" and analysis is None:
            raise ConfigError(
                "evolution.selection.signal probe_confidence reads the analysis' probe: set "
                "evolution.analysis (e.g. {sample: 100})"
            )
        self.analysis = analysis
        self.solver_from_base = solver_from_base
        if cumulative_steps and not solver_from_base:
            raise ConfigError(
                "evolution.cumulative_steps: set without evolution.solver_from_base (a solver "
                "that keeps its weights has trained every step already); set both or neither"
            )
        self.cumulative_steps = cumulative_steps
        self._summarised = False  # Lightning's model summary: the first phase's trainer only

    def run(
        self,
        actor: Actor,
        solver: SolverGRPO,
        data: CurriculumDataModule,
        make_trainer: Callable[..., L.Trainer],
        logger: Any,
        fingerprint: str = "",
    ) -> RunState:
        """Run (or resume) every iteration; ``make_trainer(**overrides)`` builds each phase's
        trainer. ``solver`` trains on ``data``, which serves each iteration's curriculum."""
        check_run_folder(self.run_dir)  # nothing is created or removed before this
        os.makedirs(self.run_dir, exist_ok=True)
        with RunLock(self.run_dir), self._sigterm_stops_the_run():
            state = RunState(self.run_dir)
            state.check_fingerprint(fingerprint, self.allow_config_change)
            if is_rank_zero():  # the folder is accepted and locked: its temporaries are ours
                for path in remove_stale_temps(self.run_dir, run_folders(self.run_dir)):
                    rank_zero_info(f"removed {path}, left by an interrupted write")
            problem = on_rank_zero(lambda: _error_of(self._check_records, state))
            if problem:  # raised on every rank, so that none waits for the others
                raise ValueError(problem)
            bound = self.bind(actor, solver)
            labels, curriculum, evaluation = bound.labels, bound.curriculum, bound.evaluation
            if self.analysis is not None:
                self.analysis.keep_base(actor, self.run_dir)
            if self.solver_from_base:
                self._keep_base_solver(actor, state)
            baseline = self._eval_folder("baseline")
            self._evaluate(actor, evaluation, state, "baseline", baseline, logger)
            for it in range(1, self.iterations + 1):
                self._iteration(
                    it,
                    state,
                    actor,
                    labels,
                    curriculum,
                    evaluation,
                    solver,
                    data,
                    make_trainer,
                    logger,
                )
                self._analyze(it, actor, labels, curriculum, logger, state.step)
                if self._select(state, it):
                    break
        return state

    def bind(self, actor: Actor, solver: SolverGRPO) -> Bound:
        """Bind the challenger to ``actor`` and every part that samples or grades for a role to
        that role: the votes and the evaluation ask and read as the solver does (its prompt,
        answer rule, grading timeout, budget), the curriculum writes as the challenger trained
        (its prompt, question format, vocabulary dropout, budget)."""
        reading = solver.reading()
        vote = self.vote.bound_to(reading)
        self.challenger.bind(actor, vote)  # its questions are scored by the solver's vote
        labels = vote if self.label_vote is None else self.label_vote.bound_to(reading)
        challenger = self.challenger
        writing = ChallengerWriting(
            challenger.prompt,
            challenger.question_format,
            challenger.vocab_dropout,
            challenger.sampling.max_new_tokens,
        )
        evaluation = None if self.evaluation is None else self.evaluation.bound_to(reading)
        return Bound(vote, labels, self.curriculum.bound_to(writing), evaluation)

    def _check_records(self, state: RunState) -> None:
        """Before anything is trusted: each finished curriculum's ``curriculum.json`` and each
        finished evaluation's ``eval.json`` hold what ``state.json`` recorded for them (a
        disagreement is one line naming both files)."""
        for phase, done in state.data["phases"].items():
            if phase.endswith("/curriculum") and "kept" in done:
                path = os.path.join(self.run_dir, phase, "curriculum.json")
                if os.path.exists(path):  # a missing one is rebuilt and checked by its sha256
                    record = read_json(path)
                    kept = record.get("kept") if isinstance(record, dict) else None
                    check_recorded_value(path, "kept", kept, done, state.path)
            elif (phase == "baseline" or phase.endswith("/eval")) and "accuracy" in done:
                folder = self._eval_folder(phase)
                if os.path.exists(os.path.join(folder, "eval.json")):
                    check_recorded_accuracy(read_summary(folder), folder, done, state.path)

    def _analyze(
        self,
        it: int,
        actor: Actor,
        vote: MajorityVote,
        curriculum: Curriculum,
        logger: Any,
        step: int,
    ) -> None:
        """The self-play analysis of iteration ``it`` (once; ``analysis/iterK.json``)."""
        done = os.path.join(self.run_dir, "analysis", f"iter{it}.json")
        if self.analysis is None or on_rank_zero(lambda: os.path.exists(done)):
            return
        restore = latest_solver(self.run_dir, it) or self.analysis.base_folder(self.run_dir)
        row = self.analysis.iteration(it, self.run_dir, actor, vote, curriculum.truth, restore)
        if is_rank_zero():
            logger.log_metrics(scalars(row), step=step)
            logger.save()

    def _select(self, state: RunState, it: int) -> bool:
        """Record the best iteration so far; True when the guard stops the run here."""
        if self.evaluation is None and self.selection.signal == "benchmark":
            return False
        phases = ["baseline"] + [f"iter{k}/eval" for k in range(1, it + 1)]
        folders = [self._eval_folder(p) for p in phases]
        decision = on_rank_zero(lambda: self.selection.decide_run(self.run_dir, it, folders))
        if state.done(f"iter{it + 1}/eval") and not decision.stop:
            return False  # a resumed run records the best once it reaches its last evaluation
        state.data["best"] = self.selection.record(self.run_dir, decision)
        state.data.pop("stopped", None)  # a resumed run with more patience goes on
        if decision.stop:
            state.data["stopped"] = {
                "after": f"iter{it}",
                "reason": f"{decision.stale} iteration(s) without beating iteration "
                f"{decision.best} beyond its 95 % interval (patience {self.selection.patience})",
            }
            rank_zero_info(f"[selection] stopped after iter{it}: {state.data['stopped']['reason']}")
        state.save()
        return decision.stop

    def _iteration(
        self,
        it: int,
        state: RunState,
        actor: Actor,
        vote: MajorityVote,
        curriculum: Curriculum,
        evaluation: Evaluation | None,
        solver: SolverGRPO,
        data: CurriculumDataModule,
        make_trainer: Callable[..., L.Trainer],
        logger: Any,
    ) -> None:
        folder = os.path.join(self.run_dir, f"iter{it}")
        challenger, prompts = self.challenger, self.challenger_data
        steps = self.challenger_steps
        phase = f"iter{it}/challenger"
        repetition = challenger.repetition
        if repetition is not None and repetition.remembers:  # the earlier questions, from disk
            repetition.remember(self._earlier_questions(it), seed=it)
        if self.train_challenger:
            self._phase(state, phase, challenger, prompts, steps, folder, make_trainer, logger)
        elif not state.done(phase):
            self._finish(state, logger, phase, skipped="train_challenger is false")
        report = self._curriculum(state, it, curriculum, actor, vote, folder, logger)
        data.serve(os.path.join(folder, "curriculum"), self._earlier_curricula(it))
        phase = f"iter{it}/solver"
        if report.kept > 0:
            if self.solver_from_base and not state.done(phase):
                actor.load_role("solver", self._base_solver())  # a checkpoint overrides it
            steps = self.solver_steps * (it if self.cumulative_steps else 1)
            self._phase(state, phase, solver, data, steps, folder, make_trainer, logger)
        elif not state.done(phase):
            rank_zero_warn(f"iteration {it}: the curriculum kept no question; solver phase skipped")
            self._finish(state, logger, phase, skipped="empty curriculum")
        phase = f"iter{it}/eval"
        self._evaluate(actor, evaluation, state, phase, self._eval_folder(phase), logger)

    def _base_solver(self) -> str:
        return os.path.join(self.run_dir, "base", "solver")

    def _keep_base_solver(self, actor: Actor, state: RunState) -> None:
        """Save the base solver once, before any solver phase trains (collective: FSDP)."""
        folder = self._base_solver()
        if os.path.isdir(folder):
            return
        trained = [p for p in state.data["phases"] if p.endswith("/solver")]
        if trained:
            raise ValueError(
                f"evolution.solver_from_base: {folder} is missing but {trained[0]} already "
                "trained, so the base solver cannot be saved now; start a new run_dir"
            )
        actor.policy.save_role("solver", folder)

    def _eval_folder(self, phase: str) -> str:
        """Where evaluation ``phase`` (``baseline`` or ``iterK/eval``) writes ``eval.json``."""
        if phase == "baseline":
            return os.path.join(self.run_dir, "eval", "baseline")
        return os.path.join(self.run_dir, phase)

    def _earlier_curricula(self, it: int) -> list[str]:
        """The curriculum folders of the iterations before ``it``."""
        return [os.path.join(self.run_dir, f"iter{k}", "curriculum") for k in range(1, it)]

    def _earlier_questions(self, it: int) -> list[str]:
        """Every valid question the curricula of iterations before ``it`` wrote."""
        paths = [os.path.join(f, "questions.jsonl") for f in self._earlier_curricula(it)]
        rows = [row for path in paths if os.path.exists(path) for row in read_jsonl(path)]
        return [row["question"] for row in rows if row.get("question")]

    @contextlib.contextmanager
    def _sigterm_stops_the_run(self) -> Iterator[None]:
        """On SIGTERM or Ctrl-C (SIGINT): inside ``Trainer.fit`` let Lightning stop at the next
        batch (it calls this handler too, after its own; Ctrl-C is handed to its SIGTERM
        handler, since its own Ctrl-C handling exits 1 without a word on resuming); anywhere
        else stop at once. A second Ctrl-C inside a fit stops at once too. Every file is
        atomic, so the work in progress is simply redone by the next run."""
        self._fitting = False
        self._stopped_by: int | None = None
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            again, self._stopped_by = self._stopped_by == signum, self._stopped_by or signum
            if not self._fitting or (again and signum == signal.SIGINT):
                where = "a second Ctrl-C: the rollout step in progress is dropped"
                raise self._preempted(where if self._fitting else "between rollout steps")
            lightning = signal.getsignal(signal.SIGTERM)
            if signum == signal.SIGINT and callable(lightning) and lightning is not handler:
                lightning(signal.SIGTERM, frame)  # stop after the current batch

        previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
        try:
            yield
        finally:
            for signum, old in previous.items():
                signal.signal(signum, old)

    def _preempted(self, where: str) -> Preempted:
        signum = self._stopped_by or signal.SIGTERM
        message = (
            f"{STOP_SIGNALS[signum]}: the run stopped cleanly ({where}); every finished rollout "
            f"step is saved in {self.run_dir}. Re-run the same command to resume."
        )
        if is_rank_zero():  # printed, not warned: warnings may be filtered out
            print(message, file=sys.stderr, flush=True)
        code = INTERRUPTED_EXIT_CODE if signum == signal.SIGINT else PREEMPTED_EXIT_CODE
        return Preempted(message, code)

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
            check_weights(weights, state.done(phase).get("weights"), phase)
            if not os.path.isdir(weights):
                raise FileNotFoundError(
                    f"{state.path}: {phase} is recorded as finished but its weights {weights} "
                    f"are missing; restore them, or delete the '{phase}' entry to redo it"
                )
            module.actor.load_role(role, weights)
            return
        checkpoints = os.path.join(folder, role, "checkpoints")
        identity = state.identity(phase)  # only this attempt's checkpoint is resumed
        resume, resume_step = resume_point(os.path.join(checkpoints, "last.ckpt"), identity)
        mark_restart(logger, state.step + resume_step)
        checkpoint = AtomicCheckpoint(
            phase, identity, dirpath=checkpoints, save_last=True, save_top_k=0
        )
        once = {"enable_model_summary": False} if self._summarised else {}
        trainer = make_trainer(
            max_epochs=steps,
            max_steps=-1,
            logger=OffsetLogger(logger, state.step),
            callbacks=[
                checkpoint,
                *fault_callbacks(phase),
            ],
            default_root_dir=os.path.join(folder, role),
            **once,
        )
        self._summarised = True
        start = time.perf_counter()
        resuming = " (resuming)" if resume else ""
        where = self._progress(state, phase)
        rank_zero_info(f"[{phase}] {steps} rollout steps{resuming} · {where}")
        fault_point(f"phase:{phase}:start")
        self._fit(trainer, module, data, resume, phase, steps)
        fault_point(f"phase:{phase}:trained")
        module.policy.save_role(role, weights)  # every rank (FSDP gathers); rank 0 writes
        fault_point(f"phase:{phase}:saved")
        seconds = time.perf_counter() - start
        digest = weights_digest(weights) if is_rank_zero() else None  # rank 0 wrote them
        state.finish(phase, steps=trainer.global_step, seconds=seconds, weights=digest)

    def _fit(
        self, trainer: L.Trainer, module: Any, data: Any, resume: str | None, phase: str, steps: int
    ) -> None:
        self._fitting = True
        try:
            with _without_fit_end_line():
                trainer.fit(module, data, ckpt_path=resume, weights_only=True)
        except SIGTERMException:
            raise self._preempted(
                f"{phase}, rollout step {trainer.current_epoch}/{steps}"
            ) from None
        finally:
            self._fitting = False
        if trainer.received_sigterm:
            raise self._preempted(f"{phase}, rollout step {trainer.current_epoch}/{steps}")
        if trainer.current_epoch < steps:  # a trainer setting or a callback ended it early
            raise ConfigError(
                f"{phase} stopped at rollout step {trainer.current_epoch}/{steps}: a trainer "
                "setting or callback ended the fit early (max_time, max_steps, should_stop); "
                "remove it, then re-run the same command to resume"
            )

    def _curriculum(
        self,
        state: RunState,
        it: int,
        curriculum: Curriculum,
        actor: Actor,
        vote: MajorityVote,
        folder: str,
        logger: Any,
    ) -> CurriculumReport:
        phase = f"iter{it}/curriculum"
        done = state.done(phase)
        written = os.path.join(folder, "curriculum")
        if not done:
            mark_restart(logger, state.step)
            if not state.started_here(phase) and os.path.exists(written) and is_rank_zero():
                # Another attempt's files (an entry deleted to redo it): never reused.
                aside = set_aside(written)
                rank_zero_warn(f"{written}: not this attempt's curriculum; set aside as {aside}")
            state.start(phase)
            where = self._progress(state, phase)
            rank_zero_info(f"[{phase}] {curriculum.candidates} candidates · {where}")
        # Every rank writes and votes on its share of the candidates; rank 0 writes the files.
        with actor.gathered():  # FSDP: ranks generate unequal amounts
            report = curriculum.build(
                actor, vote, written, seed=it, earlier=self._earlier_curricula(it)
            )
        fault_point(f"phase:{phase}:built")
        kept_file = os.path.join(written, "curriculum.jsonl")
        if done:  # the solver must train on the questions that were recorded, all of them
            check_recorded_file(kept_file, done.get("sha256"), phase)
        if not done:
            metrics = {f"curriculum/{k}": v for k, v in report.metrics().items()}
            logger.log_metrics(metrics, step=state.step)
            sha = file_sha256(kept_file) if os.path.exists(kept_file) else None
            self._finish(
                state, logger, phase, steps=1, kept=report.kept, sha256=sha, seconds=report.seconds
            )
        rank_zero_info(f"[{phase}] {report.kept} of {report.candidates} kept")
        return report

    def _evaluate(
        self,
        actor: Actor,
        evaluation: Evaluation | None,
        state: RunState,
        phase: str,
        folder: str,
        logger: Any,
    ) -> None:
        if evaluation is None or state.done(phase):
            return
        mark_restart(logger, state.step)
        rank_zero_info(f"[{phase}] evaluation · {self._progress(state, phase)}")
        start = time.perf_counter()
        with actor.gathered():  # FSDP: ranks generate unequal amounts
            result = evaluation.run(actor, phase, state.step, logger, folder=folder)
        fault_point(f"phase:{phase}:done")
        problems = {name: b["n_problems"] for name, b in result.summary["benchmarks"].items()}
        check_problem_counts(state.data["phases"], phase, problems, state.path)
        seconds = time.perf_counter() - start
        info = {"accuracy": result.accuracies(), "problems": problems, "seconds": seconds}
        self._finish(state, logger, phase, steps=1, **info)

    def _progress(self, state: RunState, phase: str) -> str:
        """``iteration k of K · elapsed E · ETA T`` as ``phase`` starts (``rzero_pl.run.progress``)."""
        return progress(state.data["phases"], phase, self.iterations, self.evaluation is not None)

    @staticmethod
    def _finish(state: RunState, logger: Any, phase: str, **info: Any) -> None:
        """Record ``phase`` as finished once what it logged is on disk.

        A finished phase is never redone, so scalars still queued in the writer's thread when
        the process dies (or exits) would be lost for good; a training phase's trainer has
        already flushed them when its fit ended.
        """
        logger.save()
        state.finish(phase, **info)
