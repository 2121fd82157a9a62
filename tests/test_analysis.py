"""The paper's self-play analysis: the pure columns by hand, and a toy run analysed in the
loop and again afterwards by ``rzero-pl analyze`` (same seeds, same weights: same rows)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from rzero_pl.analysis.dynamics import (
    Judge,
    markdown_table,
    near_duplicate_fraction,
    recorded_columns,
    scalars,
    solver_columns,
)
from rzero_pl.toy.tasks import ToyTruth


def test_solver_columns_by_hand():
    votes = [SimpleNamespace(share=0.5), SimpleNamespace(share=1.0)]
    answers = [["1", "2"], ["3", "3"]]
    correct = [[True, False], [True, True]]
    cols = solver_columns("fixed", [{}, {}], votes, answers, correct)
    assert cols == {
        "fixed_share_mean": 0.75,
        "fixed_vote_accuracy": 0.75,  # (1/2 + 2/2) / 2
        "fixed_share_histogram": [0, 1, 1],
    }


def test_near_duplicates_by_hand():
    q = "What is 12 + 7 * (5 - 2)?"
    assert near_duplicate_fraction([q, q, "How many primes are there below one hundred?"]) == (
        pytest.approx(2 / 3)
    )
    assert near_duplicate_fraction(["only one"]) == 0.0


def test_the_truth_judges_labels_and_votes():
    judge = Judge("truth", truth=ToyTruth())
    assert judge.judge(["What is 2 + 3?"] * 3, ["5", "6", None], [None] * 3) == [
        True,
        False,
        False,
    ]
    rows = [
        {
            "question": "What is 2 + 3?",
            "label": "5",
            "share": 0.5,
            "kept": True,
            "votes": ["5"] * 2,
        },
        {
            "question": "What is 2 + 3?",
            "label": "4",
            "share": 1.0,
            "kept": False,
            "votes": ["4"] * 2,
        },
    ]
    cols = recorded_columns(rows, judge, [None, None])
    assert (cols["label_accuracy"], cols["kept_in_sample"], cols["kept_label_accuracy"]) == (
        0.5,
        1,
        1.0,
    )
    assert cols["label_share_mean"] == 0.75 and cols["near_duplicates"] == 1.0


def test_table_and_scalars():
    row = {"iteration": 2, "questions": 10, "judge": "truth", "label_accuracy": 0.625}
    table = markdown_table([row])
    assert "| 2 | 10 |" in table and "62.5 %" in table and "Labels judged by: truth" in table
    assert scalars(row) == {"analysis/questions": 10.0, "analysis/label_accuracy": 0.625}


def _run_args(run_dir: str) -> list[str]:
    return [
        "fit",
        "--config=cli_configs/toy.yaml",
        "--trainer.enable_progress_bar=false",
        f"--evolution.run_dir={run_dir}",
        "--evolution.iterations=1",
        "--evolution.challenger_steps=1",
        "--evolution.solver_steps=1",
        "--evolution.curriculum.candidates=24",
        "--evolution.curriculum.max_rounds=1",
        "--evolution.vote.samples=4",
        "--evolution.challenger_data.init_args.slots_per_step=2",
        "--evolution.challenger.init_args.minibatch_size=8",
        "--evolution.challenger.init_args.micro_batch_size=8",
        "--data.init_args.questions_per_step=8",
        "--model.init_args.minibatch_size=64",
        "--model.init_args.micro_batch_size=64",
        "--evolution.evaluation.init_args.max_samples=20",
        "--evolution.analysis.sample=8",
    ]


@pytest.mark.slow
def test_the_loop_and_the_command_give_the_same_rows(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rzero_pl.cli import main

    run = tmp_path / "run"
    main(_run_args(str(run)))
    in_loop = json.loads((run / "analysis" / "iter1.json").read_text())
    assert in_loop["questions"] == 8 and in_loop["judge"] == "truth (ToyTruth)"
    for key in ("fixed_vote_accuracy", "iteration_vote_accuracy", "label_accuracy"):
        assert 0.0 <= in_loop[key] <= 1.0, key
    assert sum(in_loop["fixed_share_histogram"]) == 8
    tags = set()
    for events in (run / "tensorboard").glob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        tags.update(accumulator.Tags()["scalars"])
    assert {"analysis/label_accuracy", "analysis/fixed_share_mean"} <= tags
    # The probe is iteration 1's sample, voted on with the analysis' seed: at iteration 1 its
    # p̂ is the iteration solver's on the same questions, and the base's is the fixed one's.
    assert in_loop["probe_questions"] == 8
    assert in_loop["probe_share_mean"] == pytest.approx(in_loop["iteration_share_mean"])
    base = json.loads((run / "analysis" / "probe_base.json").read_text())
    assert base["share_mean"] == pytest.approx(in_loop["fixed_share_mean"])
    assert "analysis/probe_share_mean" in tags
    # --probe-only recomputes the probe and keeps every other column of the row
    row = {**in_loop, "label_accuracy": -1.0}
    (run / "analysis" / "iter1.json").write_text(json.dumps(row))
    main(["analyze", str(run), "--sample=8", "--probe-only"])
    assert json.loads((run / "analysis" / "iter1.json").read_text()) == row
    (run / "analysis" / "iter1.json").unlink()
    main(["analyze", str(run), "--sample=8"])
    again = json.loads((run / "analysis" / "iter1.json").read_text())
    assert again == in_loop
    assert "| 1 | 8 |" in (run / "analysis" / "analysis.md").read_text()
