"""bench/phase_shares.py's attribution of timed calls to categories, on hand-made calls."""

from __future__ import annotations

import os
import sys
import threading

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

from phase_shares import GROUPS, TARGETS, Call, Recorder, exclusive, share_table  # noqa: E402


def call(category, w0, w1, c0=None, c1=None):
    return Call(category, (w0, w1), (w0 if c0 is None else c0, w1 if c1 is None else c1))


def test_a_call_is_charged_only_its_own_time():
    # optimizer step 0-10 holds training_step 1-4 and backward 4-9; the step itself did 0-1, 9-10
    calls = [
        call("training.optimizer", 0, 10),
        call("training.forward_loss", 1, 4),
        call("training.backward", 4, 9),
    ]
    assert exclusive(calls) == {
        "training.optimizer": (2, 2),
        "training.forward_loss": (3, 3),
        "training.backward": (5, 5),
    }


def test_nesting_two_deep_and_calls_in_sequence():
    # generate 0-10 starts the engine 0-3 and streams weights 3-4; later a vote 10-12 whose
    # matches 10.5-11 hold another matches 10.6-10.8 (a grader calling the grader)
    calls = [
        call("generation", 0, 10),
        call("startup.engine", 0, 3),
        call("io.weights_to_engine", 3, 4),
        call("grading.votes", 10, 12),
        call("grading.matches", 10.5, 11),
        call("grading.matches", 10.6, 10.8),
    ]
    got = exclusive(calls)
    assert got["generation"] == pytest.approx((6, 6))
    assert got["startup.engine"] == pytest.approx((3, 3))
    assert got["io.weights_to_engine"] == pytest.approx((1, 1))
    assert got["grading.votes"] == pytest.approx((1.5, 1.5))
    assert got["grading.matches"] == pytest.approx((0.5, 0.5))  # 0.3 own + 0.2 nested
    assert sum(w for w, _ in got.values()) == pytest.approx(12)  # the outermost calls' total


def test_cpu_time_is_charged_like_wall_time():
    # a 10 s generate that used 4 s of CPU holds a 2 s grading wait that used 0.5 s
    got = exclusive([call("generation", 0, 10, 0, 4), call("grading.votes", 2, 4, 1, 1.5)])
    assert got == {"generation": (8, 3.5), "grading.votes": (2, 0.5)}


def test_share_table_groups_categories_and_rest_takes_the_uncovered_time():
    totals = {"generation": (50.0, 40.0), "grading.votes": (5.0, 1.0), "io.files": (5.0, 4.0)}
    rows = {name: rest for name, *rest in share_table(totals, wall=100.0, cpu=50.0)}
    assert rows["generation"] == [50.0, 0.5, 40.0, 0.8]
    assert rows["**grading**"] == [5.0, 0.05, 1.0, 0.02]
    assert rows["**rest**"] == [40.0, 0.4, 5.0, 0.1]
    assert rows["**training**"] == [0.0, 0.0, 0.0, 0.0]
    groups = [name for name in rows if name.startswith("**")]
    assert groups == [f"**{g}**" for g in GROUPS]
    assert sum(rows[g][0] for g in groups) == pytest.approx(100.0)


def test_every_target_names_a_known_group():
    assert {category.split(".")[0] for category in TARGETS.values()} <= set(GROUPS)


def test_the_recorder_times_main_thread_calls_only():
    recorder = Recorder()
    timed = recorder.wrap("grading.votes", "majority_votes", lambda x: x + 1)
    assert timed(1) == 2
    worker = threading.Thread(target=timed, args=(2,))
    worker.start()
    worker.join()
    assert [c.category for c in recorder.calls] == ["grading.votes"]
    assert recorder.counts == {"majority_votes": 1}
