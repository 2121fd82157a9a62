"""Building a run from its configuration: the one place where settings become objects.

``RunBuilder`` is LightningCLI with R-Zero's schema (``actor``, ``evolution``, ``evaluation``,
``threads``), defaults and checks: a bad setting anywhere is one line before any model loads,
and every component is built with the actor bound to the model. ``rzero-pl fit``/``test``
(``rzero_pl.cli.RZeroCLI``, a ``RunBuilder``) build through it, and so does ``rzero-pl
analyze`` (``build_run`` on the run's ``config.yaml``, ``rzero_pl.run.posthoc``), so that an
analysis never imports the command line.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from dataclasses import dataclass
from typing import Any

import lightning as L
import yaml
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from rzero_pl.benchmarks.evaluation import Evaluation
from rzero_pl.config_yaml import (
    MAX_YAML_CHARS,
    argument_keys,
    check_yaml,
    dotted_keys,
    renamed_key_problem,
    upgraded,
    use_bounded_yaml,
)
from rzero_pl.errors import ConfigError, one_line
from rzero_pl.ground.weights import resolve_weights
from rzero_pl.grpo.challenger import ChallengerGRPO
from rzero_pl.grpo.module import GRPOModule
from rzero_pl.models.actor import Actor
from rzero_pl.progress import INTERVAL, set_interval
from rzero_pl.run.evolution import Evolution
from rzero_pl.run.trackers import check_outside, configured_loggers
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

FIT_OPTIONS = ("ckpt_path", "weights_only")  # `fit`'s own options, saved with a run's settings


class RunBuilder(LightningCLI):
    """LightningCLI whose model and datamodule are chosen by ``class_path``, with the actor,
    the evolution, the evaluation and the threads of an R-Zero run."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("subclass_mode_model", True)
        kwargs.setdefault("subclass_mode_data", True)
        kwargs.setdefault("trainer_defaults", TRAINER_DEFAULTS)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("auto_configure_optimizers", False)
        self._base_callbacks: list | None = None
        use_bounded_yaml()  # before any configuration text is read
        super().__init__(L.LightningModule, None, *args, **kwargs)  # data: optional

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
        parser.add_argument(
            "--progress_interval",
            type=float,
            default=INTERVAL,
            help="Seconds between two progress lines of a long step (generation, votes, "
            "scoring) in a log that is not a terminal (a terminal gets a live bar); 0: a line "
            "at every finished batch.",
        )

    def before_instantiate_classes(self) -> None:
        """Threads before any model loads: each CPU rank on its own share of the cores; the
        progress lines' interval."""
        import torch

        from rzero_pl.scale.threads import configure_threads

        config = self.config[self.subcommand] if self.subcommand else self.config
        accelerator = str(config.get("trainer", {}).get("accelerator", "auto"))
        on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
        local = (int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
        configure_threads(config.get("threads"), *(local if on_cpu else (0, 1)))
        set_interval(config.get("progress_interval", INTERVAL))  # before the toy base builds

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse; a bad key or value is reported as one line naming the key (exit status 2)."""
        given = sys.argv[1:] if args is None else args  # None: LightningCLI reads sys.argv
        for path in _config_files(given):
            problem = _config_file_problem(path)
            if problem:  # jsonargparse said "Unexpected config:", or lost the file and line
                print(f"rzero-pl: error: --config {path}{problem}", file=sys.stderr)
                raise SystemExit(2)
        old = renamed_key_problem(_config_keys(given) + argument_keys(list(given or [])))
        if old:  # jsonargparse would only say that the key is unexpected
            print(f"rzero-pl: error: {old}", file=sys.stderr)
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
    if evolution is not None:  # the run's own TensorBoard goes there; another tracker never
        for logger in configured_loggers(trainer.get("logger")):
            if not isinstance(logger, TensorBoardLogger):
                check_outside(logger, evolution.run_dir)


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


def _config_keys(args: Any) -> list[str]:
    """The dotted keys of every ``--config`` (a file, or YAML text as ``build_run`` passes)."""
    keys = []
    for given in _config_files(args):
        text = given
        if os.path.isfile(given):
            with open(given, encoding="utf-8", errors="replace") as f:
                text = f.read()
        try:
            check_yaml(text)  # bounded before it is loaded
            keys += dotted_keys(yaml.safe_load(text))
        except yaml.YAMLError:
            pass  # jsonargparse reports the file itself
    return keys


def _config_files(args: Any) -> list[str]:
    """The paths given as ``--config X`` or ``--config=X`` in a command line."""
    args = list(args or []) if isinstance(args, (list, tuple)) else []
    paths = [a.split("=", 1)[1] for a in args if isinstance(a, str) and a.startswith("--config=")]
    paths += [b for a, b in zip(args, args[1:], strict=False) if a == "--config"]
    return [p for p in paths if isinstance(p, str)]


@dataclass(frozen=True)
class BuiltRun:
    """A configuration's run, built and not started: what ``fit`` would run."""

    actor: Actor
    model: L.LightningModule
    evolution: Evolution | None


def build_run(settings: dict[str, Any], threads: int | None = None) -> BuiltRun:
    """The run ``settings`` (a run's ``config.yaml``, read) describe, built as ``fit`` builds
    it (threads first, every check before loading, the actor bound to the model), not run."""
    settings = {key: value for key, value in upgraded(settings).items() if key not in FIT_OPTIONS}
    args = ["--config", yaml.safe_dump(settings)]
    args += ["--threads", str(threads)] if threads else []
    built = RunBuilder(args=args, run=False)
    return BuiltRun(built.actor, built.model, built.config_init["evolution"])
