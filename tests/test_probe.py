"""The label-free probe (rzero_pl.analysis.probe) and the collapse guard reading it
(selection.signal: probe_confidence), on hand-computed values."""

from __future__ import annotations

import json
import math

import pytest

from rzero_pl.analysis.probe import agreement, mean_interval, probe_columns
from rzero_pl.errors import ConfigError
from rzero_pl.run.selection import BestIteration, probe_scores


def test_mean_interval_by_hand():
    # mean 0.75, sample sd sqrt(1/12) = 0.288675, half width 1.959964 * 0.288675 / 2 = 0.282896
    mean, low, high = mean_interval([0.5, 1.0, 0.5, 1.0])
    assert mean == 0.75
    assert low == pytest.approx(0.75 - 0.282896, abs=1e-6)
    assert high == pytest.approx(0.75 + 0.282896, abs=1e-6)
    assert mean_interval([0.4]) == (0.4, 0.4, 0.4)


def test_agreement_with_the_base_by_hand():
    # same answer (graded: 1/2 is 0.5); different; no answer on either side agrees with nothing
    labels = ["0.5", "3", None, "4", None]
    base = ["1/2", "4", "1", None, None]
    assert agreement(labels, base) == pytest.approx(1 / 5)
    assert agreement([], []) == 0.0


def test_probe_columns():
    row = probe_columns([0.5, 1.0, 0.5, 1.0], ["2", "2", "3", "4"], ["2", "5", "3", None])
    assert row["probe_questions"] == 4 and row["probe_share_mean"] == 0.75
    assert row["probe_base_agreement"] == 0.5
    assert math.isclose(sum(row["probe_share_ci95"]) / 2, 0.75)


def _write_probe_run(run, base_share: float, shares: list[float]) -> None:
    folder = run / "analysis"
    folder.mkdir(parents=True)
    (folder / "probe_base.json").write_text(
        json.dumps({"share_mean": base_share, "share_ci95": [base_share - 0.05, base_share + 0.05]})
    )
    for k, share in enumerate(shares, start=1):
        row = {
            "iteration": k,
            "probe_share_mean": share,
            "probe_share_ci95": [share - 0.05, share + 0.05],
        }
        (folder / f"iter{k}.json").write_text(json.dumps(row))


def test_the_guard_reads_the_probe(tmp_path):
    run = tmp_path / "run"
    # base 0.50; iteration 1 0.60 (its interval [0.55, 0.65] lies above 0.50: beaten),
    # iteration 2 0.58 (not above 0.60), iteration 3 0.62 (best, but [0.57, 0.67] not above 0.60)
    _write_probe_run(run, 0.50, [0.60, 0.58, 0.62])
    got = [(s.value, s.low, s.high) for s in probe_scores(str(run), 2)]
    assert got == [
        pytest.approx(v) for v in ((0.50, 0.45, 0.55), (0.60, 0.55, 0.65), (0.58, 0.53, 0.63))
    ]
    # Lower is better and the base is no candidate: iteration 1 (0.60) is the first best;
    # iteration 2 (0.58) is lower, so the best, but [0.53, 0.63] is not wholly below 0.60
    # (stale 1); iteration 3 (0.62) is higher (stale 2): patience 2 stops the run.
    guard = BestIteration(patience=2, signal="probe_confidence")
    decision = guard.decide_run(str(run), 3, eval_folders=[])
    assert (decision.best, decision.stale, decision.stop) == (2, 2, True)
    assert decision.best_score.value == pytest.approx(0.58)
    assert guard.record(str(run), decision)["metric"] == "probe p̂ (label-free, lowest)"


def test_a_probe_wholly_below_the_best_beats_it(tmp_path):
    run = tmp_path / "run"
    _write_probe_run(run, 0.40, [0.70, 0.60])  # [0.55, 0.65] lies below 0.70
    decision = BestIteration(patience=1, signal="probe_confidence").decide_run(str(run), 2, [])
    assert (decision.best, decision.stale, decision.stop) == (2, 0, False)
    decision = BestIteration(signal="probe_confidence").decide_run(str(run), 1, [])
    assert (decision.best, decision.stale, decision.stop) == (1, 0, False)  # not the base


def test_a_missing_probe_is_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="probe_base.json: missing"):
        probe_scores(str(tmp_path), 1)
    _write_probe_run(tmp_path / "run", 0.5, [])
    (tmp_path / "run" / "analysis" / "iter1.json").write_text(json.dumps({"iteration": 1}))
    with pytest.raises(ValueError, match="iter1.json: no probe_share_mean"):
        probe_scores(str(tmp_path / "run"), 1)


def test_the_signal_is_checked():
    with pytest.raises(ConfigError, match="selection.signal"):
        BestIteration(signal="vibes")
    with pytest.raises(ConfigError, match="selection.benchmark"):
        BestIteration(benchmark="toy", signal="probe_confidence")
    # the old signal kept the highest p̂, the worst iteration of a decaying run: refused
    with pytest.raises(ConfigError, match="use probe_confidence"):
        BestIteration(signal="probe_share")


def test_the_probe_signal_needs_the_analysis(tmp_path):
    from rzero_pl.run.evolution import Evolution

    with pytest.raises(ConfigError, match="evolution.analysis"):
        Evolution(
            None,
            None,
            run_dir=str(tmp_path / "run"),
            selection=BestIteration(signal="probe_confidence"),
        )
