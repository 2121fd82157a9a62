"""``rzero-pl report``: the pure parts by hand, then the page of a real toy run, checked
against the run's own files: finished, with an analysis, in progress, and resumed."""

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

from rzero_pl.analysis.report import fmt, main, missing_phases, render, run_status
from rzero_pl.analysis.report_data import (
    Phase,
    RunData,
    difficulty_of,
    iteration_of_step,
    last_per_step,
    pick_samples,
    read_run,
    score_of,
    wilson_interval,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOY = os.path.join(ROOT, "cli_configs", "toy.yaml")


# ----------------------------------------------------------------------------- pure parts


def test_wilson_interval_by_hand():
    # 5 of 10: p = 0.5, z² = 3.8415; centre 0.5; half = 1.96·√(0.025 + 0.0096) / 1.3841
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    # 0 of 8: low 0; high = z²/n / (1 + z²/n) = 0.48020 / 1.48020 (eval.json's stored figure)
    assert wilson_interval(0, 8) == pytest.approx((0.0, 0.32440756488388023))
    # 8 of 8 mirrors 0 of 8
    assert wilson_interval(8, 8) == pytest.approx((1 - 0.32440756488388023, 1.0))
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_score_keeps_a_stored_interval_and_computes_a_missing_one():
    stored = score_of("toy", {"accuracy": 0.25, "ci95": [0.1, 0.5], "n_problems": 8})
    assert (stored.low, stored.high, stored.interval) == (0.1, 0.5, "stored")
    computed = score_of("toy", {"accuracy": 0.5, "n_problems": 10})
    assert computed.interval == "wilson"
    assert (computed.low, computed.high) == pytest.approx((0.2366, 0.7634), abs=1e-4)


def test_last_value_per_step_wins_and_steps_are_sorted():
    events = [(1, 0.1), (2, 0.2), (3, 0.3), (2, 0.25), (3, 0.35), (0, 0.0)]
    assert last_per_step(events) == [(0, 0.0), (1, 0.1), (2, 0.25), (3, 0.35)]


def test_a_step_belongs_to_the_iteration_whose_phase_owns_it():
    phases = [
        Phase("baseline", 1, 0, 1, 0.1, {}),
        Phase("iter1/challenger", 4, 1, 5, 1.0, {}),
        Phase("iter1/curriculum", 1, 5, 6, 1.0, {}),
        Phase("iter2/challenger", 4, 6, 10, 1.0, {}),
    ]
    assert [iteration_of_step(s, phases) for s in (0, 1, 4, 5, 6, 9, 10)] == [
        None,
        1,
        1,
        1,
        2,
        2,
        None,  # past every recorded phase: the phase in progress
    ]


def test_samples_are_the_first_kept_and_the_first_dropped_well_formed_questions():
    def row(i, kept, question="q"):
        return {
            "id": i,
            "question": question,
            "votes": ["1", None],
            "label": "1",
            "share": 0.5,
            "kept": kept,
            "reason": "kept" if kept else "below_band",
        }

    rows = [
        row(0, False, None),
        row(1, False),
        row(2, True),
        row(3, True),
        row(4, False),
        row(5, True),
    ]
    picked = pick_samples(rows, per_kind=2)
    assert [s.id for s in picked] == [2, 3, 1, 4]
    assert picked[0].votes == ["1", None] and picked[0].label_correct is None
    assert pick_samples(rows, per_kind=0) == []


def test_the_analysis_file_is_read_defensively():
    assert difficulty_of(None) is None
    assert difficulty_of([0.5]) is None
    assert difficulty_of({"other": 1}) is None
    assert difficulty_of({"fixed_share_mean": 0.25, "label_accuracy": True}) == {
        "fixed_share_mean": 0.25,
        "iteration_share_mean": None,
        "label_accuracy": None,  # a bool is not a number here
        "fixed_vote_accuracy": None,
        "iteration_vote_accuracy": None,
    }


def test_missing_phases_in_order():
    recorded = ["baseline", "iter1/challenger"]
    assert missing_phases(recorded, 1) == ["iter1/curriculum", "iter1/solver", "iter1/eval"]
    assert missing_phases(recorded, None) == []
    # a run without evaluation expects no evaluation phase
    assert missing_phases(["iter1/challenger"], 1) == ["iter1/curriculum", "iter1/solver"]
    assert missing_phases([], 1)[0] == "baseline"


def test_the_status_line_says_where_the_run_stands():
    def run(names, planned, stopped=None):
        phases = [Phase(n, 1, i, i + 1, 1.0, {}) for i, n in enumerate(names)]
        return RunData(".", phases, planned, None, None, [], None, stopped=stopped)

    one = ["baseline", "iter1/challenger", "iter1/curriculum", "iter1/solver", "iter1/eval"]
    assert run_status(run(one, 1)) == ("Finished: 1 iteration(s).", [])
    status, missing = run_status(run(one, 2))
    assert status == "Not finished (or still running): next phase iter2/challenger."
    assert missing == ["iter2/challenger", "iter2/curriculum", "iter2/solver", "iter2/eval"]
    stopped = {"after": "iter1", "reason": "2 iteration(s) without beating iteration 0"}
    assert run_status(run(one, 3, stopped)) == (
        "Stopped by the collapse guard after iter1: 2 iteration(s) without beating iteration 0.",
        [],
    )


def test_shown_numbers():
    assert [fmt(0.25, "pct"), fmt(1 / 3, "float"), fmt(12.345, "s"), fmt(8, "int")] == [
        "25.0 %",
        "0.333",
        "12.3 s",
        "8",
    ]
    assert fmt(None, "pct") == "n/a"


def test_text_from_the_run_is_escaped(tmp_path):
    folder = tmp_path / "iter1" / "curriculum"
    folder.mkdir(parents=True)
    (folder / "curriculum.json").write_text(json.dumps({"candidates": 1, "kept": 1}))
    row = {
        "id": 0,
        "question": "<script>alert(1)</script> & 1<2?",
        "votes": ["<b>"],
        "label": "<i>",
        "share": 1.0,
        "kept": True,
        "reason": "kept",
    }
    (folder / "questions.jsonl").write_text(json.dumps(row) + "\n")
    page = render(read_run(str(tmp_path)))
    assert "<script>" not in page and "<b>" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; 1&lt;2?" in page


@pytest.mark.parametrize(
    "config",
    [
        "evolution:\n  init_args:\n    iterations: 3\n    vote: {votes: 10, band: [0.3, 0.7]}\n",
        "data:\n  init_args: {band: [0.3, 0.7]}\nevolution:\n  init_args: {iterations: 3}\n",
    ],
    ids=["band-in-evolution-vote", "band-in-data"],
)
def test_the_plan_comes_from_the_saved_config(tmp_path, config):
    (tmp_path / "config.yaml").write_text(config)
    run = read_run(str(tmp_path))
    assert (run.planned_iterations, run.band) == (3, (0.3, 0.7))
    assert [it.number for it in run.iterations] == [1, 2, 3]
    assert run.notes == []


def test_an_empty_folder_renders_and_a_missing_one_is_refused(tmp_path, capsys):
    assert main([str(tmp_path), "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert page.count("Not yet") >= 4 and "has not been run" in page
    assert main([str(tmp_path / "absent")]) == 2
    assert "no such run folder" in capsys.readouterr().err


# ----------------------------------------------------------------------------- a real run


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
            "--evolution.vote.votes=4",
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
