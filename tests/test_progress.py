"""The line each phase change prints (issue 26 item 2): iteration, elapsed and ETA, computed by
hand from state.json's timings. The log of a whole run is read in tests/test_evolution.py
(``test_every_scalar_the_readme_lists_is_logged``)."""

from __future__ import annotations

from rzero_pl.run.progress import duration, eta_seconds, phase_order, progress


def _done(seconds: float, **extra) -> dict:
    return {"steps": 1, "step_start": 0, "step_end": 1, "seconds": seconds, **extra}


def test_the_phases_come_in_the_order_the_run_takes_them():
    assert phase_order(2, evaluated=False) == [
        "iter1/challenger",
        "iter1/curriculum",
        "iter1/solver",
        "iter2/challenger",
        "iter2/curriculum",
        "iter2/solver",
    ]
    assert phase_order(1, evaluated=True) == [
        "baseline",
        "iter1/challenger",
        "iter1/curriculum",
        "iter1/solver",
        "iter1/eval",
    ]


def test_the_eta_gives_each_phase_ahead_its_kinds_mean():
    phases = {
        "baseline": _done(10),
        "iter1/challenger": _done(100),
        "iter1/curriculum": _done(40),
        "iter1/solver": _done(200),
        "iter1/eval": _done(20),
        "iter2/challenger": _done(140),
    }
    # Ahead in 3 iterations: iter2's curriculum, solver, eval; all of iteration 3.
    # challenger mean (100 + 140) / 2 = 120, curriculum 40, solver 200, eval (10 + 20) / 2 = 15
    ahead = ["iter2/curriculum", "iter2/solver", "iter2/eval"]
    ahead += [f"iter3/{k}" for k in ("challenger", "curriculum", "solver", "eval")]
    assert eta_seconds(phases, ahead) == 40 + 200 + 15 + 120 + 40 + 200 + 15
    line = progress(phases, "iter2/curriculum", 3, evaluated=True)
    # elapsed 10 + 100 + 40 + 200 + 20 + 140 = 510 s
    assert line == "iteration 2 of 3 · elapsed 8m 30s · ETA 10m 30s"


def test_the_eta_is_unknown_until_every_kind_ahead_was_timed_once():
    phases = {"baseline": _done(10), "iter1/challenger": _done(100)}
    assert progress(phases, "iter1/curriculum", 2, True).endswith("ETA ?")
    assert progress({}, "baseline", 2, True) == "before iteration 1 of 2 · elapsed 0s · ETA ?"


def test_a_skipped_phase_took_no_time():
    phases = {
        "iter1/challenger": {**_done(0), "skipped": "train_challenger is false"},
        "iter1/curriculum": _done(30),
        "iter1/solver": _done(60),
    }
    del phases["iter1/challenger"]["seconds"]
    assert progress(phases, "iter2/challenger", 2, False) == (
        "iteration 2 of 2 · elapsed 1m 30s · ETA 1m 30s"
    )


def test_durations_read_as_a_person_says_them():
    assert [duration(s) for s in (None, 0, 59.4, 60, 185, 3599, 3600, 7620)] == [
        "?",
        "0s",
        "59s",
        "1m 00s",
        "3m 05s",
        "59m 59s",
        "1h 00m",
        "2h 07m",
    ]
