"""The collapse guard: best iteration, noise-aware patience, the ``best`` weights entry."""

from __future__ import annotations

import json
import os

import pytest

from rzero_pl.ground.weights import resolve_weights
from rzero_pl.run.selection import BestIteration, Score, decide, score_of


def _summary(**accuracies: tuple[float, float, float]) -> dict:
    return {
        "benchmarks": {
            name: {"accuracy": a, "ci95": [low, high], "n_problems": 500}
            for name, (a, low, high) in accuracies.items()
        }
    }


def test_score_of_one_benchmark_or_the_mean_of_all():
    summary = _summary(toy=(0.4, 0.3, 0.5), gsm8k=(0.2, 0.1, 0.3))
    assert score_of(summary, "toy") == Score(0.4, 0.3, 0.5)
    mean = score_of(summary, None)
    assert mean.value == pytest.approx(0.3)
    assert (mean.low, mean.high) == (pytest.approx(0.2), pytest.approx(0.4))
    with pytest.raises(ValueError, match="'math500' was not evaluated"):
        score_of(summary, "math500")


def test_decide_by_hand():
    base = Score(0.322, 0.283, 0.364)  # the toy base: 32.2 %, Wilson interval on 500
    up = Score(0.390, 0.348, 0.433)  # lower bound 34.8 > 32.2: beats the base
    flat = Score(0.384, 0.342, 0.427)  # below 39.0: not the best, does not beat it
    noise = Score(0.395, 0.353, 0.438)  # above 39.0 but its lower bound is below: noise
    assert decide([base], None) == decide([base], 3)
    d = decide([base, up], 1)
    assert (d.best, d.stale, d.stop) == (1, 0, False)
    d = decide([base, up, flat], None)
    assert (d.best, d.stale, d.stop) == (1, 1, False)  # never stops without patience
    d = decide([base, up, flat], 1)
    assert (d.best, d.stale, d.stop) == (1, 1, True)
    d = decide([base, up, noise, flat], 2)  # the best moves to the noisy 39.5 %, not beaten
    assert (d.best, d.best_score, d.stale, d.stop) == (2, noise, 2, True)
    d = decide([base, Score(0.1, 0.08, 0.13)], 1)  # a fall: the base stays the best
    assert (d.best, d.stale, d.stop) == (0, 1, True)


def test_patience_is_checked():
    with pytest.raises(ValueError, match="selection.patience"):
        BestIteration(patience=0)


def test_best_resolves_to_the_best_iterations_weights(tmp_path):
    run = tmp_path / "run"
    (run / "iter2" / "solver" / "weights").mkdir(parents=True)
    record = BestIteration("toy").record(str(run), decide([Score(0.3, 0.2, 0.4)] * 3, None))
    assert record["iteration"] == 0 and record["weights"]["solver"] is None
    assert resolve_weights(str(run / "best"), "solver") is None  # the base: nothing to load
    decision = decide([Score(0.3, 0.25, 0.35), Score(0.3, 0.2, 0.4), Score(0.5, 0.45, 0.55)], 1)
    BestIteration("toy").record(str(run), decision)
    saved = json.loads((run / "best.json").read_text())
    assert saved["iteration"] == 2 and saved["score"]["value"] == 0.5
    resolved = resolve_weights(str(run / "best"), "solver")
    assert os.path.samefile(resolved, run / "iter2" / "solver" / "weights")
    assert resolve_weights(str(run / "iter2"), "solver") == str(run / "iter2")  # a plain folder
    with pytest.raises(FileNotFoundError, match="best.json"):
        resolve_weights(str(tmp_path / "elsewhere" / "best"), "solver")


def _falling_run(run_dir: str, patience: int) -> list[str]:
    """The shipped toy base with a solver learning rate that wrecks it in two updates."""
    return [
        "fit",
        "--config=cli_configs/toy.yaml",
        "--trainer.enable_progress_bar=false",
        f"--evolution.run_dir={run_dir}",
        "--evolution.iterations=3",
        "--evolution.challenger_steps=1",
        "--evolution.solver_steps=2",
        "--evolution.curriculum.candidates=8",
        "--evolution.curriculum.min_kept=1",
        "--evolution.curriculum.max_rounds=1",
        "--evolution.curriculum.labelled=rzero_pl.toy.tasks.ToyQuestions",  # kept > 0 always
        "--evolution.curriculum.labelled.init_args.n=16",
        "--evolution.vote.samples=2",
        "--evolution.challenger_data.init_args.slots_per_step=2",
        "--evolution.challenger.init_args.minibatch_size=8",
        "--evolution.challenger.init_args.micro_batch_size=8",
        "--data.init_args.questions_per_step=16",
        "--model.init_args.minibatch_size=128",
        "--model.init_args.lr=0.5",
        "--evolution.evaluation.init_args.max_samples=100",
        f"--evolution.selection.patience={patience}",
    ]


@pytest.mark.slow
def test_a_falling_run_stops_and_keeps_the_base(tmp_path):
    from rzero_pl.cli import main
    from rzero_pl.run.state import RunState

    run = tmp_path / "run"
    main(_falling_run(str(run), patience=1))
    state = RunState(str(run)).data
    assert (
        state["phases"]["iter1/eval"]["accuracy"]["toy"]
        < state["phases"]["baseline"]["accuracy"]["toy"]
    )
    assert state["best"]["iteration"] == 0 and state["stopped"]["after"] == "iter1"
    assert "iter2/challenger" not in state["phases"] and not (run / "iter2").exists()
    assert json.loads((run / "best.json").read_text())["iteration"] == 0
    main(_falling_run(str(run), patience=1))  # resumed: decides the same, trains nothing
    assert RunState(str(run)).data["phases"] == state["phases"]
    # `rzero-pl test` on RUN/best scores the base again (best is iteration 0: no weights)
    main(
        [
            "test",
            "--config=cli_configs/toy_eval.yaml",
            f"--trainer.default_root_dir={tmp_path / 'scored'}",
            f"--actor.policy.init_args.weights={{solver: {run / 'best'}}}",
            "--evaluation.init_args.max_samples=100",
        ]
    )
    scored = json.loads((tmp_path / "scored" / "eval" / "test" / "eval.json").read_text())
    baseline = json.loads((run / "eval" / "baseline" / "eval.json").read_text())
    assert scored["benchmarks"]["toy"]["accuracy"] == baseline["benchmarks"]["toy"]["accuracy"]
    # more patience is a resumable change: the run goes on and stops again one iteration later
    main(_falling_run(str(run), patience=2))
    again = RunState(str(run)).data
    assert "iter2/eval" in again["phases"] and "iter3/challenger" not in again["phases"]
    assert again["stopped"]["after"] == "iter2" and again["best"]["iteration"] == 0
