"""Every YAML under cli_configs/ parses; the CPU ones also instantiate on a tiny model."""

from __future__ import annotations

import glob
import os

import pytest
import yaml

from rzero_pl.cli import RZeroCLI

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "cli_configs", "*.yaml")))
MODEL = "--actor.policy.init_args.model"


class ParseOnlyCLI(RZeroCLI):
    """Parse and validate a config without building anything."""

    def instantiate_classes(self) -> None:
        self.config_init = None


def test_there_are_configs():
    names = {os.path.basename(c) for c in CONFIGS}
    assert {"toy_solver.yaml"} <= names
    assert set(REAL) <= names


REAL = [
    "octothinker.yaml",
    "qwen3_4b_qlora.yaml",
    "qwen3_4b_fsdp.yaml",
    "qwen3_8b_fsdp.yaml",
    "octothinker_8b_fsdp.yaml",
    "qwen3_8b_fsdp_2x8.yaml",
]


@pytest.mark.parametrize("name", REAL)
def test_real_config_batches_split_over_its_ranks(name):
    """Every rank must hold whole groups and equal shares of each update (rzero_pl.scale.distributed)."""
    cfg = ParseOnlyCLI(args=["--config", os.path.join(ROOT, "cli_configs", name)], run=False).config
    world = int(cfg.trainer.devices) * int(cfg.trainer.num_nodes)
    strategy = cfg.trainer.strategy
    if world > 1:
        assert strategy.init_args.data_parallel_size == world
        assert strategy.init_args.tensor_parallel_size == 1
    evolution = cfg.evolution.init_args
    solver, challenger = cfg.model.init_args, evolution.challenger.init_args
    for module, items in (
        (solver, cfg.data.init_args.questions_per_step),
        (challenger, evolution.challenger_data.init_args.slots_per_step),
    ):
        assert module.minibatch_size % (module.micro_batch_size * world) == 0
        assert items % world == 0
    assert cfg.actor.policy.init_args.model.init_args.name_or_path.count("/") == 1


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_config_parses(path):
    cli = ParseOnlyCLI(args=["--config", path], run=False)
    assert cli.config["model"]["class_path"].startswith("rzero_pl.")


@pytest.mark.parametrize(
    "path", [c for c in CONFIGS if "toy" in c or "cpu" in c], ids=os.path.basename
)
def test_cpu_config_instantiates_on_a_tiny_model(path, tiny_model_dir, tmp_path):
    args = [
        "--config",
        path,
        f"{MODEL}.class_path=rzero_pl.models.sources.PretrainedModel",
        f"{MODEL}.init_args.name_or_path={tiny_model_dir}",
        f"--trainer.default_root_dir={tmp_path}",
    ]
    cli = RZeroCLI(args=args, run=False)
    assert cli.model.policy is not None
    # What Lightning hands a module's save_hyperparameters: the same as its own dump, which
    # validates the configuration again first (RZeroCLI skips that second check).
    checked = cli.parser.dump(cli.config, skip_link_targets=False, skip_none=False, format="yaml")
    assert cli.config_dump == yaml.safe_load(checked)


def test_unknown_key_names_the_key(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "model:\n  class_path: rzero_pl.grpo.solver.SolverGRPO\n  init_args:\n    group_sise: 4\n"
    )
    with pytest.raises(SystemExit):
        ParseOnlyCLI(args=["--config", str(path)], run=False)
    assert "group_sise" in capsys.readouterr().err


def test_empty_config_file_names_the_file(tmp_path, capsys):
    path = tmp_path / "empty.yaml"
    path.write_text("\n")
    with pytest.raises(SystemExit):
        ParseOnlyCLI(args=["--config", str(path)], run=False)
    assert (
        f"--config {path}: the file is empty" in capsys.readouterr().err
    )  # not "Unexpected config:"
