"""RZeroCLI: the ``rzero-pl`` command (LightningCLI with R-Zero's defaults).

``rzero-pl fit --config cli_configs/X.yaml`` trains. With an ``evolution:`` section it runs
the whole co-evolution (the ``model`` is the solver, ``data`` the curriculum); without one
it fits the model on the data once (e.g. the solver on labelled questions).
``--print_config`` shows every setting with its default; ``--help`` lists them with their
docstrings. Components (model source, engine, datamodules, callbacks) are swapped with
``class_path``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shlex
import sys
import warnings
from typing import Any

import lightning as L
import yaml
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from rzero_pl import __version__
from rzero_pl.benchmarks.evaluation import Evaluation
from rzero_pl.config_yaml import MAX_YAML_CHARS, check_yaml, use_bounded_yaml
from rzero_pl.errors import ConfigError, describe_os_error, one_line
from rzero_pl.grpo.challenger import ChallengerGRPO
from rzero_pl.grpo.module import GRPOModule
from rzero_pl.models.actor import Actor
from rzero_pl.run.evolution import INTERRUPTED_EXIT_CODE, Evolution
from rzero_pl.run.io import read_json
from rzero_pl.run.selection import resolve_weights
from rzero_pl.run.state import config_fingerprint
from rzero_pl.scale.distributed import is_rank_zero
from rzero_pl.scale.sharding import new_strategy

TRAINER_DEFAULTS: dict[str, Any] = {
    # One epoch is one rollout step; its loader is built anew every epoch.
    "reload_dataloaders_every_n_epochs": 1,
    "gradient_clip_val": 1.0,
    "num_sanity_val_steps": 0,
    "log_every_n_steps": 1,  # few, long steps: log every one
    "limit_val_batches": 0,
    "use_distributed_sampler": False,  # rollouts are sharded by prompt group, never split
    "logger": {
        "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
        "init_args": {"save_dir": "runs", "name": "rzero"},
    },
}
# Settings that may change between a run and its resumption without changing its results.
# The trainer's other settings (callbacks, precision, gradient clipping) and the seed are part
# of the fingerprint.
RESUMABLE_CHANGES = ("ckpt_path", "config", "threads")
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


class RZeroCLI(LightningCLI):
    """LightningCLI whose model and datamodule are chosen by ``class_path``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("subclass_mode_model", True)
        kwargs.setdefault("subclass_mode_data", True)
        kwargs.setdefault("trainer_defaults", TRAINER_DEFAULTS)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("auto_configure_optimizers", False)
        kwargs.setdefault("parser_kwargs", parser_descriptions())
        self._base_callbacks: list | None = None
        use_bounded_yaml()  # before any configuration text is read
        super().__init__(L.LightningModule, None, *args, **kwargs)  # data: optional

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """``fit`` and ``test`` of Lightning's subcommands: an R-Zero run has no validation
        loop (its evaluation is ``test``'s) and no prediction step, so ``validate`` and
        ``predict`` would do nothing."""
        lightning = LightningCLI.subcommands()
        return {name: lightning[name] for name in ("fit", "test")}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_class_arguments(Actor, "actor", fail_untyped=False)
        parser.add_argument(
            "--evolution",
            type=Evolution | None,
            default=None,
            help="Run the R-Zero co-evolution (model = solver, data = curriculum).",
        )
        parser.add_argument(
            "--evaluation",
            type=Evaluation | None,
            default=None,
            help="Benchmarks that `rzero-pl test` scores the model's solver on.",
        )
        parser.add_argument(
            "--threads",
            type=int | None,
            default=None,
            help="Torch threads of each rank; default: its share of the CPUs (on CPU each "
            "local rank is pinned to 1/L of them; see rzero_pl.scale.threads).",
        )

    def before_instantiate_classes(self) -> None:
        """Threads before any model loads: each CPU rank on its own share of the cores."""
        import torch

        from rzero_pl.scale.threads import configure_threads

        config = self.config[self.subcommand] if self.subcommand else self.config
        accelerator = str(config.get("trainer", {}).get("accelerator", "auto"))
        on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
        local = (int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
        configure_threads(config.get("threads"), *(local if on_cpu else (0, 1)))

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse; a bad key or value is reported as one line naming the key (exit status 2)."""
        for path in _config_files(args):
            problem = _config_file_problem(path)
            if problem:  # jsonargparse said "Unexpected config:", or lost the file and line
                print(f"rzero-pl: error: --config {path}{problem}", file=sys.stderr)
                raise SystemExit(2)
        captured = io.StringIO()
        try:
            with contextlib.redirect_stderr(captured):
                super().parse_arguments(parser, args)
        except SystemExit as stop:
            text = captured.getvalue()
            if stop.code in (0, None) or "error:" not in text:
                sys.stderr.write(text)
                raise
            line = one_line(text[text.index("error:") :].removeprefix("error:").strip())
            print(f"rzero-pl: error: {line} (--help lists every key)", file=sys.stderr)
            raise
        sys.stderr.write(captured.getvalue())

    def _dump_config(self) -> None:
        """Lightning's dump of the parsed configuration (its modules' hyperparameters), without
        validating the whole configuration again: the parse just did, and the check was a
        third of a start-up's parsing time (0.25 of 0.73 s for toy.yaml)."""
        if hasattr(self, "config_dump"):
            return
        text = self.parser.dump(
            self.config, skip_link_targets=False, skip_none=False, format="yaml", skip_check=True
        )
        self.config_dump = yaml.safe_load(text)
        if "subcommand" in self.config:
            self.config_dump = self.config_dump[self.config.subcommand]

    def instantiate_classes(self) -> None:
        """Build every component; a bad value is raised as one ``ConfigError`` line."""
        try:
            self._check_before_loading()
            super().instantiate_classes()
            self.actor = self._get(self.config_init, "actor")
            self.model.bind(self.actor)  # the challenger is bound by the evolution
        except ConfigError:
            raise
        except (ValueError, TypeError, OSError, MisconfigurationException) as err:
            section = "trainer" if getattr(self, "model", None) is not None else None
            raise ConfigError(one_line(str(err), section)) from err

    def _check_before_loading(self) -> None:
        """Build every component once without the model's weights (the actor's policy), so that
        a bad setting anywhere is reported in seconds, before any weight is read or built."""
        config = self.config.clone()
        prefix = f"{self.subcommand}." if self.subcommand else ""
        check_weights_folders(config.get(f"{prefix}actor.policy"))
        config[f"{prefix}actor.policy"] = None
        built = self.parser.instantiate_classes(config)
        if self.subcommand == "fit":
            check_fit(built["fit"])

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        # LightningCLI appends to the configured callback list in place; every phase of the
        # evolution builds a trainer, so each one starts again from the configured list.
        config = self._get(self.config_init, "trainer", default={})
        if self._base_callbacks is None:
            self._base_callbacks = list(config.get("callbacks") or [])
        kwargs["callbacks"] = [*self._base_callbacks, *kwargs.get("callbacks", [])]
        # A Strategy object serves one trainer only: each phase gets a fresh one.
        spec = self._get(self.config, "trainer", default={}).get("strategy")
        if not isinstance(spec, str) and getattr(spec, "class_path", None):
            kwargs.setdefault("strategy", new_strategy(spec.class_path, spec.get("init_args")))
        return super().instantiate_trainer(**kwargs)

    def fit(self, model: L.LightningModule, datamodule: Any = None, **kwargs: Any) -> None:
        """Run the evolution when configured, else one ``Trainer.fit``."""
        config = self.config_init[self.subcommand]
        evolution = config.get("evolution")
        if evolution is None:
            self.trainer.fit(model, datamodule, **kwargs)
            return
        logger = self.trainer.logger
        if isinstance(logger, TensorBoardLogger) or logger is None:
            logger = TensorBoardLogger(save_dir=evolution.run_dir, name="tensorboard", version="")
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
        folder = os.path.join(self.trainer.default_root_dir, "eval", "test")
        strategy = self.trainer.strategy
        logger = self.trainer.logger
        if isinstance(logger, TensorBoardLogger) and _is_default_logger(logger):
            # The default's save_dir is ./runs: the scores belong beside eval.json instead.
            logger = TensorBoardLogger(save_dir=folder, name="tensorboard", version="")

        def score() -> None:  # on every rank: process group and device first, as fit does
            strategy.setup_environment()
            model.to(strategy.root_device)  # the actor's policy is the model's submodule
            evaluation.run(self.actor, "test", 0, logger, folder)

        if strategy.launcher is not None:  # e.g. `--trainer.devices=2`: starts the other ranks
            strategy.launcher.launch(score, trainer=self.trainer)
        else:
            score()

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


def check_weights_folders(policy: Any) -> None:
    """Each role's ``weights`` folder exists (read only after the base model has loaded)."""
    init = (policy or {}).get("init_args") or {}
    for role, folder in (init.get("weights") or {}).items():
        try:
            found = resolve_weights(folder, role)
        except (OSError, ValueError) as err:
            raise ConfigError(f"actor.policy.weights.{role}: {err}") from None
        if found is not None and not os.path.isdir(found):
            raise ConfigError(f"actor.policy.weights.{role}: no such folder {folder}")


def check_fit(config: Any) -> None:
    """What ``fit`` cannot run, refused in one line before any model loads (each one failed
    with a traceback after the model loaded, or after the baseline)."""
    evolution, model, data = config.get("evolution"), config.get("model"), config.get("data")
    if isinstance(model, ChallengerGRPO):
        raise ConfigError(
            "model: the model is the solver (rzero_pl.grpo.solver.SolverGRPO), not "
            "ChallengerGRPO; the challenger goes under evolution.challenger"
        )
    if evolution is None and hasattr(data, "serve"):  # served by the evolution's curricula
        raise ConfigError(
            f"data: {type(data).__name__} serves the curricula an evolution writes; with "
            "evolution: null give data questions of its own "
            "(rzero_pl.datamodules.LabelledQuestionsDataModule)"
        )
    trainer = config.get("trainer") or {}
    if evolution is not None and trainer.get("fast_dev_run"):
        raise ConfigError(
            "trainer.fast_dev_run: not with an evolution (it turns off the logger and the "
            "checkpoints every phase needs); for a short run set evolution.challenger_steps "
            "and evolution.solver_steps to 1 and a small evolution.curriculum.candidates"
        )
    limit = trainer.get("limit_train_batches")
    if limit is not None and (limit <= 0 or (isinstance(limit, float) and limit > 1)):
        raise ConfigError(
            "trainer.limit_train_batches must be a batch count >= 1 or a share in (0, 1], "
            f"got {limit}; remove it (each rollout step serves all its rollouts)"
        )
    modules = [m for m in (model, getattr(evolution, "challenger", None)) if m is not None]
    _check_accumulation(trainer, [m for m in modules if isinstance(m, GRPOModule)])


def _check_accumulation(trainer: Any, modules: list[GRPOModule]) -> None:
    """``accumulate_grad_batches`` is GRPO's ``minibatch_size / (micro_batch_size x ranks)``
    for every role; another value would be refused only when a phase starts."""
    value = trainer.get("accumulate_grad_batches")
    value = 1 if value is None else value
    if value == 1 or not modules:
        return
    world = _world_size(trainer)
    for ranks in [world] if world else range(1, 4097):
        per_update = [m.micro_batch_size * ranks for m in modules]
        if all(
            m.minibatch_size % n == 0 and m.minibatch_size // n == value
            for m, n in zip(modules, per_update, strict=True)
        ):
            return  # possible (checked again when each phase starts)
    raise ConfigError(
        f"trainer.accumulate_grad_batches ({value}) is set by GRPO: minibatch_size / "
        "(micro_batch_size x ranks) of each role; remove it and set minibatch_size instead"
    )


def _world_size(trainer: Any) -> int | None:
    """Ranks of the configured devices and nodes, when they say it (``auto``: None)."""
    devices, nodes = trainer.get("devices"), trainer.get("num_nodes") or 1
    if isinstance(devices, str) and devices.isdigit():
        devices = int(devices)
    count = len(devices) if isinstance(devices, (list, tuple)) else devices
    if isinstance(count, int) and count > 0 and isinstance(nodes, int):
        return count * nodes
    return None


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


def _config_file_problem(path: str) -> str | None:
    """What makes a ``--config`` file unreadable as YAML, said after its name (``: empty``,
    ``, line 3, column 9: …``); None when nothing (a missing file jsonargparse names)."""
    if not os.path.isfile(path):
        return None
    if os.path.getsize(path) > MAX_YAML_CHARS * 4:  # never read a huge file whole
        return f": {os.path.getsize(path)} bytes; a configuration is a few kilobytes"
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    if not text.strip():
        return ": the file is empty"
    try:
        check_yaml(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return f"{where}: {err.problem or err.context} (YAML syntax)"
    except yaml.YAMLError as err:
        return f": {err}"
    return None


def _config_files(args: Any) -> list[str]:
    """The paths given as ``--config X`` or ``--config=X`` in a command line."""
    args = list(args or []) if isinstance(args, (list, tuple)) else []
    paths = [a.split("=", 1)[1] for a in args if isinstance(a, str) and a.startswith("--config=")]
    paths += [b for a, b in zip(args, args[1:], strict=False) if a == "--config"]
    return [p for p in paths if isinstance(p, str)]


def _report() -> Any:
    from rzero_pl.analysis.report import main as report

    return report


def _analyze() -> Any:
    from rzero_pl.analysis.analyze import main as analyze

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
    ``rzero_pl.analysis.analyze``), ``report RUN_DIR`` (one HTML page,
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
