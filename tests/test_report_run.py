"""``rzero-pl report`` on the page of a real toy run, checked against the run's own files:
finished, with an analysis, in progress, and resumed. The pure parts: tests/test_report.py."""

from __future__ import annotations

import base64
import io
import json
import math
import os
import re
import shutil
from html.parser import HTMLParser

import pytest

from rzero_pl.analysis.report import main
from rzero_pl.analysis.report_data import read_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOY = os.path.join(ROOT, "cli_configs", "toy.yaml")


def _fit(run_dir: str) -> None:
    from rzero_pl.cli import main as cli

    cli(
        [
            "fit",
            "--config",
            TOY,
            "--trainer.enable_progress_bar=false",
            "--evolution.iterations=2",
            "--evolution.challenger_steps=2",
            "--evolution.solver_steps=1",
            "--evolution.curriculum.candidates=16",
            "--evolution.vote.samples=4",
            "--data.init_args.questions_per_step=4",
            "--evolution.curriculum.min_kept=1",
            "--evolution.curriculum.max_rounds=1",
            "--model.init_args.group_size=2",
            "--model.init_args.minibatch_size=8",
            "--model.init_args.micro_batch_size=8",
            "--evolution.challenger.init_args.group_size=2",
            "--evolution.challenger_data.init_args.slots_per_step=2",
            "--evolution.evaluation.init_args.max_samples=8",
            f"--evolution.run_dir={run_dir}",
        ]
    )


@pytest.fixture(scope="session")
def toy_run(tmp_path_factory) -> str:
    """A finished 2-iteration toy run with every file (about 10 s on an idle 2-core machine)."""
    run_dir = str(tmp_path_factory.mktemp("report") / "run")
    _fit(run_dir)
    return run_dir


def _copy(run_dir: str, to) -> str:
    target = str(to / "run")
    shutil.copytree(run_dir, target, ignore=shutil.ignore_patterns("checkpoints", ".lock"))
    return target


class _Page(HTMLParser):
    """Table rows (cells: attributes and text) and embedded plots of a report page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.rows: list[list[tuple[dict, str]]] = []
        self.plots: dict[str, bytes] = {}
        self._cell: dict | None = None
        self._text = ""
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell, self._text = attrs, ""
        elif tag == "img":
            prefix = "data:image/png;base64,"
            assert attrs["src"].startswith(prefix)
            self.plots[attrs["data-plot"]] = base64.b64decode(attrs["src"][len(prefix) :])

    def handle_data(self, data):
        if self._cell is not None:
            self._text += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append((self._cell, self._text))
            self._cell = None

    def numbers(self) -> dict[str, tuple[float, str]]:
        return {
            a["data-key"]: (float(a["data-value"]), t)
            for row in self.rows
            for a, t in row
            if "data-key" in a
        }


def _report(run_dir: str, tmp_path) -> _Page:
    out = tmp_path / "report.html"
    assert main([run_dir, "--out", str(out)]) == 0
    return _Page(out.read_text(encoding="utf-8"))


def _load(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _expected(run_dir: str) -> dict[str, float]:
    """Every number the page may show, read straight from the run's files."""
    out: dict[str, float] = {}
    state = _load(os.path.join(run_dir, "state.json"))
    for name, phase in state["phases"].items():
        out[f"phase/{name}/steps"] = phase["steps"]
        if "seconds" in phase:
            out[f"phase/{name}/seconds"] = phase["seconds"]
    for name in sorted(os.listdir(run_dir)):
        folder = os.path.join(run_dir, name)
        evaluation = os.path.join(run_dir, "eval", "baseline") if name == "eval" else None
        if name.startswith("iter"):
            evaluation = os.path.join(folder, "eval")
            curriculum = os.path.join(folder, "curriculum")
            if os.path.exists(os.path.join(curriculum, "curriculum.json")):
                report = _load(os.path.join(curriculum, "curriculum.json"))
                for key, value in report.items():
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        out[f"curriculum/{name}/{key}"] = value
                with open(os.path.join(curriculum, "questions.jsonl"), encoding="utf-8") as f:
                    for row in map(json.loads, f):
                        out[f"sample/{name}/{row['id']}/share"] = row["share"]
        if evaluation and os.path.exists(os.path.join(evaluation, "eval.json")):
            tag = "baseline" if name == "eval" else name
            for bench, entry in _load(os.path.join(evaluation, "eval.json"))["benchmarks"].items():
                key = f"eval/{tag}/{bench}"
                out[f"{key}/accuracy"], out[f"{key}/n_problems"] = (
                    entry["accuracy"],
                    entry["n_problems"],
                )
                out[f"{key}/ci95_low"], out[f"{key}/ci95_high"] = entry["ci95"]
        if name == "analysis":
            for file in os.listdir(folder):
                for key, value in _load(os.path.join(folder, file)).items():
                    if isinstance(value, float):
                        out[f"difficulty/{file[:-5]}/{key}"] = value
    return out


def _check_numbers(page: _Page, run_dir: str) -> dict[str, tuple[float, str]]:
    """Every number shown equals the run's files, and its text is that number rounded."""
    shown, expected = page.numbers(), _expected(run_dir)
    for key, (value, text) in shown.items():
        assert key in expected, key
        assert value == expected[key], key
        digits = re.match(r"-?\d+(?:\.(\d+))?", text)
        scale = 100 if text.endswith("%") else 1
        decimals = len(digits.group(1) or "")
        assert abs(float(digits.group(0)) - scale * value) <= 0.5 * 10**-decimals + 1e-9, key
    wanted = {k for k in expected if k.startswith(("eval/", "phase/", "difficulty/"))}
    wanted |= {
        k
        for k in expected
        if re.fullmatch(
            r"curriculum/iter\d+/(kept|candidates|valid|"
            r"label_accuracy|kept_label_accuracy)",
            k,
        )
    }
    assert wanted <= set(shown), sorted(wanted - set(shown))
    return shown


def _check_plots(page: _Page, names: set[str]) -> None:
    from matplotlib.image import imread

    assert set(page.plots) == names
    for name, png in page.plots.items():
        pixels = imread(io.BytesIO(png), format="png")
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100, name
        assert pixels.std() > 0, f"{name} is blank"


def _check_samples(page: _Page, run_dir: str) -> int:
    rows = {}
    for it in ("iter1", "iter2"):
        path = os.path.join(run_dir, it, "curriculum", "questions.jsonl")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                rows |= {f"{it}/{r['id']}": r for r in map(json.loads, f)}
    seen = 0
    for cells in page.rows:
        if cells and "data-sample" in cells[0][0]:
            row = rows[cells[0][0]["data-sample"]]
            assert cells[1][1] == row["question"]
            assert cells[2][1] == ", ".join("∅" if v is None else v for v in row["votes"])
            assert cells[3][1] == ("∅" if row["label"] is None else row["label"])
            seen += 1
    return seen


@pytest.mark.slow
def test_a_finished_run(toy_run, tmp_path):
    page = _report(toy_run, tmp_path)
    _check_plots(page, {"accuracy", "rollouts", "share_histograms"})
    shown = _check_numbers(page, toy_run)
    assert {"eval/baseline/toy/accuracy", "eval/iter2/toy/ci95_high"} <= set(shown)
    assert _check_samples(page, toy_run) > 0
    html = (tmp_path / "report.html").read_text()
    assert "The analysis has not been run" in html and f"rzero-pl analyze {toy_run}" in html
    assert "Not yet" not in html and "not yet" not in html
    # the rollout plot's points: one per challenger rollout step of each iteration
    scalars = read_run(toy_run).scalars
    steps = [s for s, _ in scalars["challenger/reward_mean"]]
    state = _load(os.path.join(toy_run, "state.json"))["phases"]
    assert len(steps) == 4 and all(
        any(
            state[f"iter{i}/challenger"]["step_start"]
            <= s
            < state[f"iter{i}/challenger"]["step_end"]
            for i in (1, 2)
        )
        for s in steps
    )


@pytest.mark.slow
def test_a_run_with_its_difficulty_analysis(toy_run, tmp_path):
    run_dir = _copy(toy_run, tmp_path)
    os.makedirs(os.path.join(run_dir, "analysis"))
    analysis = {  # the row `rzero-pl analyze` writes holds more keys than the report shows
        "iter1": {
            "iteration": 1,
            "fixed_share_mean": 0.625,
            "iteration_share_mean": 0.4375,
            "label_accuracy": 0.5,
            "fixed_vote_accuracy": 0.75,
            "fixed_share_histogram": [1, 2, 3],
        },
        "iter2": {"fixed_share_mean": 0.5},  # a partial file is shown as it is
    }
    for it, values in analysis.items():
        with open(os.path.join(run_dir, "analysis", f"{it}.json"), "w") as f:
            json.dump(values, f)
    page = _report(run_dir, tmp_path)
    _check_plots(page, {"accuracy", "rollouts", "share_histograms", "difficulty"})
    shown = _check_numbers(page, run_dir)
    assert shown["difficulty/iter1/iteration_share_mean"][0] == 0.4375
    assert shown["difficulty/iter1/fixed_vote_accuracy"][0] == 0.75
    assert "difficulty/iter2/label_accuracy" not in shown
    assert not any(key.endswith("iteration_vote_accuracy") for key in shown)  # in no file
    html = (tmp_path / "report.html").read_text()
    assert "iteration_vote_accuracy" not in html and "histogram</th>" not in html


@pytest.mark.slow
def test_a_run_in_progress(toy_run, tmp_path):
    run_dir = _copy(toy_run, tmp_path)
    state_path = os.path.join(run_dir, "state.json")
    state = _load(state_path)
    state["phases"] = {k: v for k, v in state["phases"].items() if not k.startswith("iter2/")}
    with open(state_path, "w") as f:
        json.dump(state, f)
    shutil.rmtree(os.path.join(run_dir, "iter2", "eval"))
    shutil.rmtree(os.path.join(run_dir, "iter2", "curriculum"))
    page = _report(run_dir, tmp_path)
    html = (tmp_path / "report.html").read_text()
    assert "next phase iter2/challenger" in html
    _check_plots(page, {"accuracy", "rollouts", "share_histograms"})
    _check_numbers(page, run_dir)
    not_yet = {cells[0][1] for cells in page.rows if cells and cells[-1][1] == "not yet"}
    assert {
        "iter2",
        "iter2/challenger",
        "iter2/curriculum",
        "iter2/solver",
        "iter2/eval",
    } <= not_yet

    # Earlier still: only the baseline, no TensorBoard events yet.
    for name in ("iter1", "iter2", "tensorboard"):
        shutil.rmtree(os.path.join(run_dir, name))
    state["phases"] = {"baseline": state["phases"]["baseline"]}
    with open(state_path, "w") as f:
        json.dump(state, f)
    page = _report(run_dir, tmp_path)
    _check_plots(page, {"accuracy"})
    _check_numbers(page, run_dir)
    html = (tmp_path / "report.html").read_text()
    assert "next phase iter1/challenger" in html
    assert html.count("Not yet:") == 3  # rollouts, curricula, samples


@pytest.mark.slow
def test_a_resumed_run(toy_run, tmp_path):
    """Iteration 2 is redone by a second process: state.json records it again and
    TensorBoard holds its steps twice; the page shows each step once."""
    run_dir = _copy(toy_run, tmp_path)
    state_path = os.path.join(run_dir, "state.json")
    state = _load(state_path)
    state["phases"] = {k: v for k, v in state["phases"].items() if not k.startswith("iter2/")}
    state["step"] = state["phases"]["iter1/eval"]["step_end"]
    with open(state_path, "w") as f:
        json.dump(state, f)
    shutil.rmtree(os.path.join(run_dir, "iter2"))
    _fit(run_dir)
    assert len(os.listdir(os.path.join(run_dir, "tensorboard"))) >= 3  # two event files
    page = _report(run_dir, tmp_path)
    _check_plots(page, {"accuracy", "rollouts", "share_histograms"})
    _check_numbers(page, run_dir)
    assert _check_samples(page, run_dir) > 0
    for points in read_run(run_dir).scalars.values():
        steps = [s for s, _ in points]
        assert steps == sorted(set(steps))
    assert len(read_run(run_dir).scalars["challenger/reward_mean"]) == 4
    assert not math.isnan(sum(v for _, v in read_run(run_dir).scalars["challenger/reward_mean"]))
