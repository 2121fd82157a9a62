"""Any tracker Lightning supports (issue 26 item 4): ``trainer.logger`` as a list or another
logger; every phase logs to one run of each, on the run's one step axis, the same scalars the
run folder's TensorBoard gets."""

from __future__ import annotations

import csv
import glob
import os

import pytest
import yaml
from builders import tensorboard_scalars
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from test_red_team import TOY, _refused
from test_red_team_bounds import no_model  # noqa: F401  (a fixture)
from toy_runs import shrunk_toy_config

from rzero_pl.cli import main
from rzero_pl.run.trackers import Trackers, check_outside, run_logger


def _csv_scalars(folder: str) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of a CSVLogger's metrics.csv: tag -> [(step, value)]."""
    (path,) = glob.glob(os.path.join(folder, "*", "metrics.csv"))  # one version: one run
    scalars: dict[str, list[tuple[int, float]]] = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            for tag, value in row.items():
                if tag != "step" and value != "":
                    scalars.setdefault(tag, []).append((int(row["step"]), float(value)))
    return scalars


def _mlflow_scalars(uri: str) -> dict[str, list[tuple[int, float]]]:
    """Every metric's history in the one (finished) run of the 'toy' experiment."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("toy").experiment_id])
    assert run.info.status == "FINISHED"
    return {
        tag: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, tag)]
        for tag in run.data.metrics
    }


def _same(expected: dict, got: dict) -> None:
    """The same tags, each with the same (step, value) pairs (TensorBoard stores float32)."""
    assert sorted(got) == sorted(expected)
    for tag, events in expected.items():
        want = sorted((e.step, e.value) for e in events)
        have = sorted(got[tag])
        assert [s for s, _ in have] == [s for s, _ in want], tag
        assert [v for _, v in have] == pytest.approx([v for _, v in want], rel=1e-6), tag


def test_csv_and_mlflow_trackers_get_every_scalar_tensorboard_gets(tmp_path, monkeypatch):
    """A list of two trackers, none of them TensorBoard: the run folder's TensorBoard is still
    written (the report reads it), and CSV and MLflow's local store each hold one run with
    the same scalars at the same steps of the run's axis, every phase included."""
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3: file store opt-in
    path = shrunk_toy_config(tmp_path)
    with open(path) as f:
        config = yaml.safe_load(f)
    config["evolution"]["iterations"] = 1
    uri = f"file:{tmp_path / 'mlruns'}"
    csv_dir, uri = tmp_path / "csv", f"file:{tmp_path / 'mlruns'}"
    config["trainer"]["logger"] = yaml.safe_load(f"""
        - class_path: lightning.pytorch.loggers.CSVLogger
          init_args: {{save_dir: {csv_dir}, name: toy}}
        - class_path: lightning.pytorch.loggers.MLFlowLogger
          init_args: {{experiment_name: toy, tracking_uri: "{uri}"}}
    """)
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    main(["fit", "--config", path])
    run_dir = tmp_path / "run"
    expected = tensorboard_scalars(str(run_dir / "tensorboard"))
    prefixes = {tag.split("/")[0] for tag in expected}
    assert {"eval", "challenger", "curriculum", "solver"} <= prefixes  # every phase logged
    _same(expected, _csv_scalars(str(csv_dir / "toy")))
    _same(expected, _mlflow_scalars(uri))
    assert sorted(os.listdir(run_dir)) == sorted(
        ["best.json", "config.yaml", "eval", "iter1", "state.json", "tensorboard", ".lock"]
    )


def test_a_configured_tensorboard_is_the_run_folders_and_others_are_added(tmp_path):
    run_dir = str(tmp_path / "run")
    alone = run_logger([TensorBoardLogger(save_dir="runs")], run_dir)
    assert isinstance(alone, TensorBoardLogger)
    assert os.path.normpath(alone.log_dir) == os.path.join(run_dir, "tensorboard")
    assert isinstance(run_logger([], run_dir), TensorBoardLogger)  # logger: false
    trackers = run_logger([TensorBoardLogger("runs"), CSVLogger(str(tmp_path / "csv"))], run_dir)
    assert isinstance(trackers, Trackers)
    assert [type(t).__name__ for t in trackers.loggers] == ["TensorBoardLogger", "CSVLogger"]
    assert trackers.save_dir == run_dir  # Lightning's trainer.log_dir: the run folder's


def test_a_tracker_writing_into_the_run_folder_is_one_line(tmp_path):
    run_dir = str(tmp_path / "run")
    inside = CSVLogger(save_dir=os.path.join(run_dir, "csv"))
    with pytest.raises(ValueError, match=r"^trainer.logger: CSVLogger writes to .*save_dir"):
        check_outside(inside, run_dir)
    check_outside(CSVLogger(save_dir=str(tmp_path / "csv")), run_dir)  # beside it: fine


@pytest.mark.usefixtures("no_model")
@pytest.mark.parametrize("as_list", [False, True], ids=["one logger", "a list"])
def test_a_tracker_inside_the_run_folder_is_refused_before_the_model_loads(tmp_path, as_list):
    """``rzero-pl fit`` refuses it in one line while checking the settings (``check_fit``),
    not once the model has loaded (``no_model``: loading the policy fails the test)."""
    run_dir = tmp_path / "run"
    csv_logger = {
        "class_path": "lightning.pytorch.loggers.CSVLogger",
        "init_args": {"save_dir": str(run_dir / "csv")},
    }
    tensorboard = {"class_path": "lightning.pytorch.loggers.TensorBoardLogger"}
    extra = tmp_path / "logger.yaml"
    logger = [tensorboard, csv_logger] if as_list else csv_logger
    extra.write_text(yaml.safe_dump({"trainer": {"logger": logger}}))
    args = ["fit", "--config", TOY, "--config", str(extra), f"--evolution.run_dir={run_dir}"]
    _refused(args, "trainer.logger: CSVLogger writes to", str(run_dir / "csv"), "save_dir")
    assert not run_dir.exists()


def test_rzero_pl_test_scores_go_to_every_configured_tracker(tmp_path, monkeypatch):
    """``rzero-pl test`` with a list of trackers: each one gets the benchmark's scalars (the
    list's first one alone got them before), and MLflow's run ends finished."""
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3: file store opt-in
    uri = f"file:{tmp_path / 'mlruns'}"
    extra = tmp_path / "logger.yaml"
    extra.write_text(
        yaml.safe_dump(
            {
                "trainer": {
                    "logger": [
                        {
                            "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                            "init_args": {
                                "save_dir": str(tmp_path / "tb"),
                                "name": "eval",
                                "version": "",
                            },
                        },
                        {
                            "class_path": "lightning.pytorch.loggers.CSVLogger",
                            "init_args": {"save_dir": str(tmp_path / "csv"), "name": "eval"},
                        },
                        {
                            "class_path": "lightning.pytorch.loggers.MLFlowLogger",
                            "init_args": {"experiment_name": "toy", "tracking_uri": uri},
                        },
                    ]
                }
            }
        )
    )
    config = os.path.join(os.path.dirname(TOY), "toy_eval.yaml")
    main(
        [
            "test",
            "--config",
            config,
            "--config",
            str(extra),
            f"--trainer.default_root_dir={tmp_path}",
            "--evaluation.init_args.max_samples=8",
            "--evaluation.init_args.max_new_tokens=16",
        ]
    )
    expected = tensorboard_scalars(str(tmp_path / "tb" / "eval"))
    assert "eval/toy/accuracy" in expected
    _same(expected, _csv_scalars(str(tmp_path / "csv" / "eval")))
    _same(expected, _mlflow_scalars(uri))  # and its one run is FINISHED


@pytest.mark.slow  # two processes of a one-iteration toy run (about 30 s)
def test_a_resumed_run_logs_to_the_mlflow_run_it_is_pinned_to(tmp_path, monkeypatch):
    """The README's recipe: the run killed in its solver phase, then re-run with MLflow's
    ``run_id`` of the first process: one finished MLflow run, each step's last value is
    TensorBoard's (the re-logged steps come twice in MLflow; TensorBoard hides the first)."""
    pytest.importorskip("mlflow")
    import subprocess
    import sys

    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # here and in the subprocesses
    uri = f"file:{tmp_path / 'mlruns'}"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}

    def run(fault: str, run_id: str | None) -> int:
        path = shrunk_toy_config(tmp_path)
        with open(path) as f:
            config = yaml.safe_load(f)
        config["evolution"]["iterations"] = 1
        init = {"experiment_name": "toy", "tracking_uri": uri, "run_id": run_id}
        config["trainer"]["logger"] = {"class_path": "lightning.pytorch.loggers.MLFlowLogger"}
        config["trainer"]["logger"]["init_args"] = init
        with open(path, "w") as f:
            yaml.safe_dump(config, f)
        command = [sys.executable, "-m", "rzero_pl", "fit", "--config", path]
        return subprocess.run(command, env={**env, "RZERO_PL_FAULT": fault}, timeout=900).returncode

    assert run("train:iter1/solver:batch@3", None) == -9
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("toy").experiment_id
    (first,) = client.search_runs([experiment])
    assert run("", first.info.run_id) == 0
    (resumed,) = client.search_runs([experiment])
    assert resumed.info.run_id == first.info.run_id and resumed.info.status == "FINISHED"
    expected = tensorboard_scalars(str(tmp_path / "run" / "tensorboard"))
    assert sorted(resumed.data.metrics) == sorted(expected)
    for tag, events in expected.items():
        history = client.get_metric_history(first.info.run_id, tag)
        last = {m.step: m.value for m in sorted(history, key=lambda m: m.timestamp)}
        assert sorted(last) == [e.step for e in events], tag
        assert [last[e.step] for e in events] == pytest.approx([e.value for e in events]), tag
