"""RZeroCLI: the ``rzero-pl`` command (LightningCLI with R-Zero's defaults).

``rzero-pl fit --config cli_configs/X.yaml`` trains. With an ``evolution:`` section it runs
the whole co-evolution (the ``model`` is the solver, ``data`` the curriculum); without one
it fits the model on the data once (e.g. the solver on labelled questions).
``--print_config`` shows every setting with its default; ``--help`` lists them with their
docstrings. Components (model source, engine, datamodules, callbacks) are swapped with
``class_path``.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
import warnings
from typing import Any

import lightning as L
import yaml
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from rzero_pl import __version__
from rzero_pl.errors import describe_os_error, one_line
from rzero_pl.ground.io import read_json
from rzero_pl.run.build import TRAINER_DEFAULTS, RunBuilder
from rzero_pl.run.evolution import INTERRUPTED_EXIT_CODE, Evolution
from rzero_pl.run.state import config_fingerprint
from rzero_pl.run.trackers import as_one_logger, run_logger
from rzero_pl.scale.distributed import is_rank_zero

# Settings that may change between a run and its resumption without changing its results.
# The trainer's other settings (callbacks, precision, gradient clipping) and the seed are part
# of the fingerprint.
RESUMABLE_CHANGES = ("ckpt_path", "config", "threads", "progress_interval")
RESUMABLE_TRAINER = (
    "logger",
    "enable_progress_bar",
    "enable_model_summary",
    "enable_checkpointing",
    "default_root_dir",
    "log_every_n_steps",
    "devices",
    "num_nodes",
    "strategy",
    "profiler",
)
# selection: when to stop and which iteration is the best never change a finished phase. The
# evaluation is fingerprinted: every iteration is scored on the baseline's problems and settings.
RESUMABLE_EVOLUTION = ("iterations", "allow_config_change", "run_dir", "selection")


class RZeroCLI(RunBuilder):
    """The ``rzero-pl`` command's ``fit`` and ``test``: a run built by ``RunBuilder``, then run."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("parser_kwargs", parser_descriptions())
        super().__init__(*args, **kwargs)

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """``fit`` and ``test`` of Lightning's subcommands: an R-Zero run has no validation
        loop (its evaluation is ``test``'s) and no prediction step, so ``validate`` and
        ``predict`` would do nothing."""
        lightning = LightningCLI.subcommands()
        return {name: lightning[name] for name in ("fit", "test")}

    def fit(self, model: L.LightningModule, datamodule: Any = None, **kwargs: Any) -> None:
        """Run the evolution when configured, else one ``Trainer.fit``."""
        config = self.config_init[self.subcommand]
        evolution = config.get("evolution")
        if evolution is None:
            self.trainer.fit(model, datamodule, **kwargs)
            return
        logger = run_logger(self.trainer.loggers, evolution.run_dir)  # with every tracker
        self._prepare_devices(model)
        status = "failed"
        try:
            evolution.run(
                self.actor, model, datamodule, self.instantiate_trainer, logger, self._fingerprint()
            )
            status = "success"
        except OSError as err:  # a full disk, a folder made read-only: say where in the run
            where = f"{phase_in_progress(evolution)} of run folder {evolution.run_dir}"
            raise OSError(describe_os_error(err, where)) from err
        finally:  # the writer's thread is a daemon: what it still holds at exit would be lost
            logger.finalize(status)
        if is_rank_zero():  # the run's last line: where to look at it and take its model
            print(next_steps(evolution.run_dir), flush=True)

    def _prepare_devices(self, model: L.LightningModule) -> None:
        """Before the evolution's first generation (the baseline evaluation, the engine's
        start-up): the process group of a torchrun/SLURM job, and the model on its device."""
        strategy = self.trainer.strategy
        environment = getattr(strategy, "cluster_environment", None)
        if environment is not None and environment.creates_processes_externally:
            strategy.connect(model)  # ModelParallelStrategy hands the module its mesh
            strategy.setup_environment()  # each phase's trainer then finds the group made
        if type(strategy).__name__ != "ModelParallelStrategy":  # FSDP2 shards it first
            model.to(strategy.root_device)

    def test(self, model: L.LightningModule, datamodule: Any = None, **kwargs: Any) -> None:
        """Score the solver on ``evaluation``'s benchmarks, without training.

        Point ``model.init_args.policy`` at any model, and its ``weights`` at saved role
        weights (e.g. ``{solver: runs/toy/iter2/solver/weights}``) to score a trained run.
        """
        config = self.config_init[self.subcommand]
        evaluation = config.get("evaluation")
        if evaluation is None and config.get("evolution") is not None:
            evaluation = config["evolution"].evaluation
        if evaluation is None:
            raise ValueError(
                "rzero-pl test needs an `evaluation:` section (rzero_pl.benchmarks.evaluation.Evaluation)"
            )
        if hasattr(model, "reading"):  # the solver's budget and grading timeout
            evaluation = evaluation.bound_to(model.reading())
        folder = os.path.join(self.trainer.default_root_dir, "eval", "test")
        strategy = self.trainer.strategy
        # Every configured tracker gets the scores; the default TensorBoard's save_dir is
        # ./runs: its scores belong beside eval.json instead.
        logger = as_one_logger(
            [
                TensorBoardLogger(save_dir=folder, name="tensorboard", version="")
                if isinstance(one, TensorBoardLogger) and _is_default_logger(one)
                else one
                for one in self.trainer.loggers
            ]
        )

        def score() -> None:  # on every rank: process group and device first, as fit does
            strategy.setup_environment()
            model.to(strategy.root_device)  # the actor's policy is the model's submodule
            evaluation.run(self.actor, "test", 0, logger, folder)

        if strategy.launcher is not None:  # e.g. `--trainer.devices=2`: starts the other ranks
            strategy.launcher.launch(score, trainer=self.trainer)
        else:
            score()
        if logger is not None and is_rank_zero():
            logger.finalize("success")  # e.g. MLflow's run is marked finished, not left running

    def _fingerprint(self) -> str:
        # As --print_config writes it: a default object (e.g. the repetition penalty's
        # lazy_instance) as class_path and init_args, never as a repr with an address.
        config = yaml.safe_load(self.parser.dump(self.config, skip_check=True))
        config = config[self.subcommand] if self.subcommand else config
        for key in RESUMABLE_CHANGES:
            config.pop(key, None)
        for key in RESUMABLE_TRAINER:
            (config.get("trainer") or {}).pop(key, None)
        evolution = config.get("evolution") or {}
        for key in RESUMABLE_EVOLUTION:  # the run folder's own path: a moved run resumes
            evolution.pop(key, None)
            (evolution.get("init_args") or {}).pop(key, None)
        return config_fingerprint(config)


def next_steps(run_dir: str) -> str:
    """The line a finished evolution ends with: the commands that show the run and export it."""
    folder = shlex.quote(run_dir)
    return f"report: rzero-pl report {folder} · export: rzero-pl export {folder}"


def _is_default_logger(logger: TensorBoardLogger) -> bool:
    """Whether ``logger`` is ``TRAINER_DEFAULTS``' TensorBoard logger (not one configured)."""
    default = TRAINER_DEFAULTS["logger"]["init_args"]
    return (
        os.path.normpath(logger.save_dir) == default["save_dir"] and logger.name == default["name"]
    )


def phase_in_progress(evolution: Evolution) -> str:
    """The first phase ``state.json`` does not record as finished (for an error's line)."""
    try:
        done = (read_json(os.path.join(evolution.run_dir, "state.json")) or {}).get("phases")
    except (ValueError, OSError, AttributeError):  # the error line goes out without it
        done = None
    evaluated = evolution.evaluation is not None
    order = ["baseline"] if evaluated else []
    for it in range(1, evolution.iterations + 1):
        names = ("challenger", "curriculum", "solver") + (("eval",) if evaluated else ())
        order += [f"iter{it}/{name}" for name in names]
    return next((f"phase {p}" for p in order if p not in (done or {})), "the run's end")


def _report() -> Any:
    from rzero_pl.analysis.report import main as report

    return report


def _analyze() -> Any:
    from rzero_pl.run.posthoc import main as analyze

    return analyze


def _export() -> Any:
    from rzero_pl.export import main as export

    return export


# `rzero-pl analyze|report|export RUN_DIR`: commands on a run folder.
RUN_FOLDER_COMMANDS = {"analyze": _analyze, "report": _report, "export": _export}
# Every command `rzero-pl --help` lists, with its line: RZeroCLI.subcommands() (LightningCLI's)
# and RUN_FOLDER_COMMANDS (tests/test_cli_help.py checks that the three agree).
COMMANDS = {
    "fit": "train: the R-Zero co-evolution (`evolution:`; re-run to resume), or one GRPO fit",
    "test": "score a model or saved role weights on the `evaluation:` benchmarks",
    "analyze": "the paper's self-play table of a run folder (RUN_DIR/analysis/)",
    "report": "one self-contained HTML page about a run folder (RUN_DIR/report.html)",
    "export": "a trained role as a Hugging Face model folder, or the curricula as a dataset",
}
TITLE = "R-Zero (arXiv 2508.05004) as a PyTorch Lightning trainer"
ABOUT = (
    "One base model improves its reasoning from zero labelled data: a challenger learns to\n"
    "write questions at the edge of the solver's ability, and the solver learns from the\n"
    "majority vote of its own answers."
)


def help_text() -> str:
    """What ``rzero-pl --help`` prints: the program, what it does, every command."""
    width = max(map(len, COMMANDS))
    commands = "\n".join(f"  {name:<{width}}  {line}" for name, line in COMMANDS.items())
    return (
        "usage: rzero-pl COMMAND [options]   (rzero-pl COMMAND --help: its options)\n\n"
        f"rzero-pl {__version__}: {TITLE}.\n{ABOUT}\n\ncommands:\n{commands}\n\n"
        "options:\n  -h, --help  show this help and exit\n"
        "  --version   show rzero-pl's version and exit\n\n"
        "Start with `rzero-pl fit --config cli_configs/toy.yaml` (the whole loop on a CPU).\n"
    )


def parser_descriptions() -> dict[str, Any]:
    """LightningCLI's ``parser_kwargs``: the descriptions ``fit --help`` and ``test --help``
    show (Lightning's would be the Trainer's)."""
    described = {n: {"description": f"rzero-pl {n}: {COMMANDS[n]}"} for n in ("fit", "test")}
    return {"prog": "rzero-pl", "description": f"{TITLE}. {ABOUT}", **described}


def answer_without_command(argv: list[str]) -> bool:
    """``--help``, ``--version``, nothing, or an unknown command: answered here (True)."""
    if argv[:1] in (["-h"], ["--help"]):
        print(help_text(), end="")
        return True
    if argv[:1] == ["--version"]:
        print(f"rzero-pl {__version__}")
        return True
    if not argv:
        print(help_text(), end="", file=sys.stderr)
        sys.exit(2)
    if not argv[0].startswith("-") and argv[0] not in COMMANDS:
        print(
            f"rzero-pl: error: unknown command {argv[0]!r}; the commands are "
            f"{', '.join(COMMANDS)} (rzero-pl --help)",
            file=sys.stderr,
        )
        sys.exit(2)
    return False


def main(args: list[str] | None = None, one_line_errors: bool | None = None) -> None:
    """Entry point of the ``rzero-pl`` console script and ``python -m rzero_pl``.

    ``fit``/``test`` are LightningCLI's; ``analyze RUN_DIR`` (the paper's self-play analysis,
    ``rzero_pl.run.posthoc``), ``report RUN_DIR`` (one HTML page,
    ``rzero_pl.analysis.report``) and ``export RUN_DIR`` (``rzero_pl.export``) work on a run
    folder; ``--help`` (``COMMANDS``) and ``--version`` are answered here.

    From the command line (``args`` None) a configuration or input error (a bad value, a
    missing file, a bad benchmark line, a refused run folder) is printed as one line and the
    exit status is 2; ``RZERO_PL_TRACEBACK=1`` shows the traceback instead. Called from Python
    with ``args`` the exception is raised as usual.
    """
    if one_line_errors is None:
        one_line_errors = args is None and not os.environ.get("RZERO_PL_TRACEBACK")
    quiet_known_noise()
    if answer_without_command(list(args if args is not None else sys.argv[1:])):
        return
    command = (args if args is not None else sys.argv[1:])[:1]
    try:
        if command and command[0] in RUN_FOLDER_COMMANDS:  # not Lightning's: a run folder
            status = RUN_FOLDER_COMMANDS[command[0]]()(list((args or sys.argv[1:])[1:]))
            if status:
                sys.exit(status)
            return
        RZeroCLI(args=args)  # None: LightningCLI reads sys.argv itself (no 'args and argv' warning)
    except KeyboardInterrupt:  # outside a run (which stops cleanly itself): loading, parsing
        if not one_line_errors:
            raise
        print("rzero-pl: stopped by Ctrl-C; re-run the same command to resume", file=sys.stderr)
        sys.exit(INTERRUPTED_EXIT_CODE)
    except (ValueError, OSError, MisconfigurationException) as err:
        if not one_line_errors:
            raise
        text = describe_os_error(err) if isinstance(err, OSError) else str(err)
        print(f"rzero-pl: error: {one_line(text).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
    if args is None:
        _close_process_group()


class _QuietLightning(logging.Filter):
    """Drops Lightning's advert, and its hardware lines ("GPU available: …", "TPU available: …")
    after their first time in this process: every phase of an evolution builds a trainer, and
    each trainer printed them again."""

    HARDWARE = ("GPU available:", "TPU available:", "HPU available:")

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg)
        if text.startswith("💡 Tip:"):
            return False
        if text.startswith(self.HARDWARE):
            if text in self.seen:
                return False
            self.seen.add(text)
        return True


def quiet_known_noise() -> None:
    """Silence what every run printed and no user can act on, so that a warning means one.

    Lightning 2.6 calls a torch pytree constructor that torch 2.13 deprecates (fixed in
    Lightning, not here), advertises a cloud logger at every trainer's start, and prints the
    hardware it found at every trainer's start (kept once).
    """
    warnings.filterwarnings(
        "ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", append=True
    )
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _QuietLightning) for f in logger.filters):
        logger.addFilter(_QuietLightning())


def _close_process_group() -> None:
    """End a torchrun/SLURM rank's process group in order, after its last collective.

    Why: left to interpreter shutdown, gloo's threads can be torn down while still joinable
    ("terminate called without an active exception", SIGABRT), failing a finished job.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()
        dist.destroy_process_group()
        # Even then a rank aborted at interpreter shutdown (CI, 2026-12-05): the work is done,
        # so run Python's exit handlers and leave without tearing down C++ thread objects.
        import atexit

        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
