"""Faults that must not lose work: bad configuration and input, damaged files, unsafe code.

Configuration and input faults go through the real CLI (``main`` in command-line mode): each
must end in exactly one ``rzero-pl: error:`` line naming the key or file:line, exit status 2.
Damaged state files and checkpoints are named, not read; a torn write leaves the old file; a
second process on a run folder is refused. No code runs from model output or checkpoints.
Faults inside training (bad numbers, bad generations): tests/test_faults_training.py.
"""

from __future__ import annotations

import json
import os
import signal

import lightning as L
import pytest
import torch

from rzero_pl.cli import main
from rzero_pl.errors import one_line
from rzero_pl.ground.faults import parse_fault
from rzero_pl.ground.io import read_json, remove_stale_temps, write_text_atomic
from rzero_pl.models import PretrainedModel
from rzero_pl.run.checkpoints import checkpoint_step
from rzero_pl.run.state import RunFolderBusy, RunLock, RunState

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOY = os.path.join(ROOT, "cli_configs", "toy.yaml")
MODEL = "--actor.policy.init_args.model"

# ---------------------------------------------------------------------- configuration and input


def _fit(tmp_path, model_dir, *extra):
    return [
        "fit",
        "--config",
        TOY,
        f"{MODEL}.class_path=rzero_pl.models.sources.PretrainedModel",
        f"{MODEL}.init_args.name_or_path={model_dir}",
        "--trainer.enable_progress_bar=false",
        f"--evolution.run_dir={tmp_path / 'run'}",
        "--evolution.evaluation.init_args.max_samples=2",
        "--evolution.evaluation.init_args.max_new_tokens=4",
        *extra,
    ]


def _bad_benchmark(tmp_path):
    folder = tmp_path / "bench" / "math500"
    folder.mkdir(parents=True)
    good = [{"id": f"m{i}", "problem": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(3)]
    lines = [json.dumps(row) + "\n" for row in good]  # then line 4 is cut short
    (folder / "test.jsonl").write_text("".join(lines) + '{"problem": "x", "answer": \n')
    return [
        "--evolution.evaluation.init_args.benchmarks=[math500]",
        f"--evolution.evaluation.init_args.root={tmp_path / 'bench'}",
    ]


def _other_run(tmp_path):
    RunState(str(tmp_path / "run")).check_fingerprint("someone-else", allow_change=False)
    return []


def _yaml(tmp_path, text):
    path = tmp_path / "extra.yaml"
    path.write_text(text)
    return ["--config", str(path)]


_VOTES_1 = "evolution:\n  vote:\n    samples: 1\n"


# (id, extra arguments or a function making them, text the one error line must contain)
CONFIG_FAULTS = [
    ("unknown key", ["--evolution.iterationz=2"], ["evolution.iterationz", "unknown key"]),
    (
        "unknown key in YAML",
        lambda p: _yaml(p, "evolution:\n  solver_stepz: 3\n"),
        ["evolution.solver_stepz", "unknown key"],
    ),
    ("wrong type", ["--evolution.iterations=two"], ["evolution.iterations", "int", "two"]),
    ("band min > max", ["--evolution.vote.band=[0.8,0.2]"], ["MajorityVote.band", "(0.8, 0.2)"]),
    ("m < 2", ["--evolution.vote.samples=1"], ["MajorityVote.samples (m)", ">= 2"]),
    ("m < 2 in YAML", lambda p: _yaml(p, _VOTES_1), ["MajorityVote.samples (m)", ">= 2"]),
    ("G < 2", ["--model.init_args.group_size=1"], ["model", "group_size (G)", ">= 2"]),
    (
        "model path",
        [f"{MODEL}.init_args.name_or_path=/nonexistent/model"],
        ["name_or_path", "/nonexistent/model"],
    ),
    (
        "nf4 without LoRA",
        ["--actor.policy.init_args.quantization=nf4"],
        ["policy.quantization", "LoRA"],
    ),
    ("strategy on CPU", ["--trainer.strategy=fsdp"], ["trainer", "fsdp", "GPU accelerator"]),
    ("accelerator", ["--trainer.accelerator=gpu"], ["trainer", "gpu"]),
    ("benchmark bad line", _bad_benchmark, ["math500/test.jsonl:4", "bad JSON"]),
    ("incompatible run folder", _other_run, ["state.json", "allow_config_change"]),
]


@pytest.mark.slow  # each case builds the CLI (a few seconds of jsonargparse)
@pytest.mark.parametrize(
    "extra, expected", [c[1:] for c in CONFIG_FAULTS], ids=[c[0] for c in CONFIG_FAULTS]
)
def test_config_fault_is_one_line_naming_the_key(tiny_model_dir, tmp_path, capsys, extra, expected):
    args = _fit(tmp_path, tiny_model_dir, *(extra(tmp_path) if callable(extra) else extra))
    with pytest.raises(SystemExit) as stop:
        main(args, one_line_errors=True)
    assert stop.value.code == 2
    errors = [x for x in capsys.readouterr().err.splitlines() if x.startswith("rzero-pl: error:")]
    assert len(errors) == 1, errors
    for text in expected:
        assert text in errors[0], errors[0]


def test_one_line_reads_jsonargparse_trees():
    nested = (
        "Does not validate against any of the Union subtypes\n"
        "Subtypes: [<class 'lightning.pytorch.core.datamodule.LightningDataModule'>, <class "
        "'NoneType'>]\nErrors:\n  - curriculum band must satisfy 0 <= min <= max <= 1\n"
        "  - Expected a <class 'NoneType'>\nGiven value type: <class 'Namespace'>"
    )
    assert one_line(nested) == "data: curriculum band must satisfy 0 <= min <= max <= 1"
    assert one_line("plain", "trainer") == "trainer: plain"


# ---------------------------------------------------------------------- files


def test_a_damaged_state_file_is_named_not_read(tmp_path):
    (tmp_path / "state.json").write_text('{"version": 2, "step": ')
    with pytest.raises(ValueError, match="state.json: damaged JSON"):
        RunState(str(tmp_path))


def test_a_torn_write_leaves_the_old_file_and_a_temp_that_is_cleaned(tmp_path, monkeypatch):
    path = tmp_path / "a.jsonl"
    write_text_atomic(str(path), '{"a": 1}\n')

    def crash(name):
        raise KeyboardInterrupt  # dies mid-write, as a kill would

    monkeypatch.setattr("rzero_pl.ground.io.fault_point", crash)
    with pytest.raises(KeyboardInterrupt):
        write_text_atomic(str(path), '{"a": 2}\n' * 1000)
    assert path.read_text() == '{"a": 1}\n'
    assert os.listdir(tmp_path) == ["a.jsonl"]  # the writer removed its temporary file
    (tmp_path / ".a.jsonl.tmp-left").write_text('{"a": ')  # one a SIGKILL would leave
    (tmp_path / ".tmp-weights").mkdir()
    assert len(remove_stale_temps(str(tmp_path), below=[])) == 2
    assert os.listdir(tmp_path) == ["a.jsonl"]
    assert read_json(str(tmp_path / "missing.json"), default=7) == 7


def test_a_second_process_on_a_run_folder_is_refused(tmp_path):
    with RunLock(str(tmp_path)):
        with pytest.raises(RunFolderBusy, match=r"another process \(pid \d+\)"):
            RunLock(str(tmp_path)).__enter__()
    with RunLock(str(tmp_path)):  # released: the next run takes it
        pass


def test_a_damaged_checkpoint_is_not_trained_from(tmp_path):
    path = tmp_path / "last.ckpt"
    torch.save({"global_step": 7, "state_dict": {}}, path)
    assert checkpoint_step(str(path)) == 7
    path.write_bytes(path.read_bytes()[:100])  # torn
    assert checkpoint_step(str(path)) is None


def test_checkpoints_are_not_written_through_the_system_temp_folder(tmp_path, monkeypatch):
    """A /tmp without room must not fail a save: fsspec's temporary file is in the run folder."""
    import tempfile

    from builders import quiet_trainer

    from rzero_pl.run.checkpoints import AtomicCheckpoint

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, _):
            return self.layer(batch[0]).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def train_dataloader(self):
            return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(2, 2)))

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no_such_temp_folder"))
    folder = tmp_path / "checkpoints"
    checkpoint = AtomicCheckpoint(dirpath=str(folder), save_last=True, save_top_k=0)
    trainer = quiet_trainer(tmp_path, callbacks=[checkpoint], enable_checkpointing=True)
    trainer.fit(Tiny())
    assert checkpoint_step(str(folder / "last.ckpt")) == 2
    assert sorted(os.listdir(folder)) == ["last.ckpt"]  # no temporary file left behind


def test_fault_specs():
    assert parse_fault("write:*.jsonl@3") == ("write:*.jsonl", 3, signal.SIGKILL)
    assert parse_fault("train:iter1/solver:batch@1:TERM")[2] == signal.SIGTERM
    for bad in ("nothing", "x@0", "@1"):
        with pytest.raises(ValueError, match="RZERO_PL_FAULT"):
            parse_fault(bad)


# ---------------------------------------------------------------------- safety


def _sources():
    for top in ("rzero_pl", "callbacks", "datamodules"):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    yield os.path.relpath(path, ROOT), open(path, encoding="utf-8").read()


def test_no_code_runs_from_model_output_or_checkpoints():
    import inspect
    import re

    for path, text in _sources():
        for number, line in enumerate(text.splitlines(), 1):
            code = line.split("#")[0]
            where = f"{path}:{number}: {line.strip()}"
            assert not re.search(r"(?<![\w.])(eval|exec)\(", code), where  # builtins, not .eval()
            assert "pickle.load" not in code and "marshal.load" not in code, where
            assert "trust_remote_code=True" not in code, where
            if "torch.load(" in code:
                assert "weights_only=True" in code, where
    default = inspect.signature(PretrainedModel).parameters["trust_remote_code"].default
    assert default is False
