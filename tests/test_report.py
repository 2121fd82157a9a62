"""``rzero-pl report``: the pure parts by hand (scores, steps, samples, the status line, the
plan, escaping). The page of a real toy run is checked in tests/test_report_run.py."""

from __future__ import annotations

import json

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
