"""The co-evolution through the CLI: phases, run folder, state, resume."""

from __future__ import annotations

import json
import os
import re

import pytest

from rzero_pl.cli import main
from rzero_pl.run.state import RunState

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOY = os.path.join(ROOT, "cli_configs", "toy.yaml")
MODEL = "--actor.policy.init_args.model"


def _args(run_dir, model_dir, **extra):
    args = [
        "fit",
        "--config",
        TOY,
        f"{MODEL}.class_path=rzero_pl.models.sources.PretrainedModel",
        f"{MODEL}.init_args.name_or_path={model_dir}",
        "--trainer.enable_progress_bar=false",
        "--evolution.curriculum.candidates=8",
        "--evolution.vote.samples=2",
        "--data.init_args.questions_per_step=4",
        "--evolution.curriculum.min_kept=1",
        "--evolution.curriculum.max_rounds=1",
        "--model.init_args.group_size=2",
        "--model.init_args.minibatch_size=8",
        "--model.init_args.micro_batch_size=8",
        "--model.init_args.sampling.max_new_tokens=8",
        "--evolution.iterations=1",
        "--evolution.challenger_steps=2",
        "--evolution.solver_steps=2",
        f"--evolution.run_dir={run_dir}",
        "--evolution.challenger.init_args.group_size=2",
        "--evolution.challenger.init_args.sampling.max_new_tokens=12",
        "--evolution.challenger_data.init_args.slots_per_step=2",
        "--evolution.evaluation.init_args.max_samples=4",
        "--evolution.evaluation.init_args.max_new_tokens=8",
    ]
    return args + [f"--{k}={v}" for k, v in extra.items()]


@pytest.mark.slow  # one in-process toy iteration, run twice
def test_one_iteration_writes_the_run_folder(tiny_model_dir, tmp_path):
    run_dir = tmp_path / "run"
    main(_args(run_dir, tiny_model_dir))
    state = json.loads((run_dir / "state.json").read_text())
    phases = state["phases"]
    assert set(phases) == {
        "baseline",
        "iter1/challenger",
        "iter1/curriculum",
        "iter1/solver",
        "iter1/eval",
    }
    assert phases["iter1/challenger"]["steps"] == 2
    assert (run_dir / "iter1" / "challenger" / "weights" / "config.json").exists()
    questions = (run_dir / "iter1" / "curriculum" / "questions.jsonl").read_text().splitlines()
    assert len(questions) == 8
    assert all(
        {"question", "votes", "label", "share", "kept", "reason"} <= json.loads(q).keys()
        for q in questions
    )
    assert (run_dir / "eval" / "baseline" / "eval.json").exists()
    assert (run_dir / "iter1" / "eval" / "eval.json").exists()
    assert os.listdir(run_dir / "tensorboard")

    # Re-running the finished command does no work and leaves the state as it was.
    before = (run_dir / "state.json").read_text()
    main(_args(run_dir, tiny_model_dir))
    assert (run_dir / "state.json").read_text() == before


def test_a_different_configuration_is_refused(tiny_model_dir, tmp_path):
    run_dir = tmp_path / "run"
    state = RunState(str(run_dir))
    state.check_fingerprint("someone-else", allow_change=False)
    with pytest.raises(ValueError, match="different configuration"):
        main(_args(run_dir, tiny_model_dir))


@pytest.mark.slow  # one in-process toy iteration, then `test`
def test_rzero_pl_test_scores_saved_weights(tiny_model_dir, tmp_path):
    run_dir = tmp_path / "run"
    main(_args(run_dir, tiny_model_dir))
    weights = run_dir / "iter1" / "challenger" / "weights"
    main(
        [
            "test",
            "--config",
            os.path.join(ROOT, "cli_configs", "toy_eval.yaml"),
            f"{MODEL}.class_path=rzero_pl.models.sources.PretrainedModel",
            f"{MODEL}.init_args.name_or_path={tiny_model_dir}",
            f"--actor.policy.init_args.weights={{solver: {weights}}}",
            "--evaluation.init_args.max_samples=5",
            "--evaluation.init_args.max_new_tokens=8",
            f"--trainer.default_root_dir={tmp_path / 'eval'}",
        ]
    )
    summary = json.loads((tmp_path / "eval" / "eval" / "test" / "eval.json").read_text())
    assert summary["benchmarks"]["toy"]["n_problems"] == 5
    samples = (tmp_path / "eval" / "eval" / "test" / "samples" / "toy.jsonl").read_text()
    assert len(samples.splitlines()) == 5
    # TensorBoard beside eval.json, not in ./runs/rzero/version_N of the working directory
    assert list((tmp_path / "eval" / "eval" / "test" / "tensorboard").glob("events.out.*"))


@pytest.mark.slow  # one in-process toy iteration
def test_a_phase_is_recorded_only_once_its_scalars_are_on_disk(
    tiny_model_dir, tmp_path, monkeypatch
):
    """A finished phase is never redone, so what it logged must be on disk before
    ``state.json`` says it finished, and at the end of the run before the process exits.

    TensorBoard's writer thread is slowed here so that a missing flush shows every time
    instead of in one run out of many (the thread is a daemon: at exit, or at a SIGKILL
    right after the record, what it still holds is lost).
    """
    import threading
    import time

    from builders import tensorboard_scalars
    from tensorboard.summary.writer.record_writer import RecordWriter

    write = RecordWriter.write

    def slow_write(self, data):
        if threading.current_thread() is not threading.main_thread():
            time.sleep(0.02)
        write(self, data)

    monkeypatch.setattr(RecordWriter, "write", slow_write)
    run_dir = tmp_path / "run"
    finish, seen = RunState.finish, []
    tags = {"baseline": "eval/toy/accuracy", "iter1/curriculum": "curriculum/kept"}
    tags["iter1/eval"] = tags["baseline"]

    def checked_finish(self, phase, steps=0, **info):
        if phase in tags:
            scalars = tensorboard_scalars(str(run_dir / "tensorboard"))
            assert self.step in [e.step for e in scalars.get(tags[phase], [])], phase
            seen.append(phase)
        finish(self, phase, steps, **info)

    monkeypatch.setattr(RunState, "finish", checked_finish)
    main(_args(run_dir, tiny_model_dir))
    assert seen == ["baseline", "iter1/curriculum", "iter1/eval"]
    steps = json.loads((run_dir / "state.json").read_text())["step"]
    last = tensorboard_scalars(str(run_dir / "tensorboard"))["eval/toy/accuracy"][-1]
    assert last.step == steps - 1


def _toy_args(run_dir, **extra):
    """A short toy evolution on the shipped toy base (which writes valid questions)."""
    args = [
        "fit",
        "--config",
        TOY,
        "--trainer.enable_progress_bar=false",
        "--evolution.curriculum.candidates=12",
        "--evolution.vote.samples=4",
        "--evolution.vote.band=[0.0, 1.0]",
        "--data.init_args.questions_per_step=4",
        "--evolution.curriculum.min_kept=1",
        "--evolution.curriculum.max_rounds=1",
        "--model.init_args.group_size=2",
        "--model.init_args.minibatch_size=8",
        "--model.init_args.micro_batch_size=4",
        "--evolution.iterations=1",
        "--evolution.challenger_steps=1",
        "--evolution.solver_steps=1",
        f"--evolution.run_dir={run_dir}",
        "--evolution.challenger.init_args.group_size=2",
        "--evolution.challenger.init_args.minibatch_size=8",
        "--evolution.challenger.init_args.micro_batch_size=4",
        "--evolution.challenger_data.init_args.slots_per_step=4",
        "--evolution.evaluation.init_args.max_samples=8",
    ]
    return args + [f"--{k}={v}" for k, v in extra.items()]


@pytest.mark.slow  # one iteration of the shipped toy model
def test_every_scalar_the_readme_lists_is_logged(tmp_path):
    """The README's "Reading the logs" names these tags: each one is in the TensorBoard file.

    Run as a user runs it: none of the warnings every run used to print is left, and what each
    phase printed again is printed once per run (Lightning's model summary and hardware
    lines) or not at all (a bar per save, Lightning's line at each fit's end)."""
    import subprocess
    import sys

    from builders import tensorboard_scalars

    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "rzero_pl", *_toy_args(run_dir)],
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "PYTHONWARNINGS": ""},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    log = done.stderr + done.stdout
    noise = ("module(s) in eval mode", "args parameter is intended", "LeafSpec", "litlogger")
    noise += ("Writing model shards", "`Trainer.fit` stopped", "Warning: ", "is deprecated")
    assert not [n for n in noise if n in log.replace("UserWarning: ", "")]
    once = ("Total params", "GPU available:", "TPU available:")  # 2 training phases: twice
    assert [log.count(line) for line in once] == [1, 1, 1], log
    # One line per phase change, with the ETA once a phase of each kind ahead is timed.
    progress = re.findall(r"^\[(\S+)\] .* · (.*) · elapsed (\S+) · ETA (.*)$", log, re.M)
    phases = [f"iter1/{p}" for p in ("challenger", "curriculum", "solver", "eval")]
    assert [(phase, where) for phase, where, *_ in progress] == [
        ("baseline", "before iteration 1 of 1"),
        *[(phase, "iteration 1 of 1") for phase in phases],
    ], log
    etas = [eta for *_, eta in progress]
    assert etas[:4] == ["?"] * 4 and re.fullmatch(r"\d+s", etas[4]), etas  # as the baseline took
    state = json.loads((run_dir / "state.json").read_text())
    assert state["phases"]["iter1/solver"].get("skipped") is None  # the solver phase trained
    tags = set(tensorboard_scalars(str(run_dir / "tensorboard")))
    per_role = [
        "reward_mean",
        "loss",
        "kl",
        "clip_frac_low",
        "clip_frac_high",
        "clip_frac_dual",
        "response_length_mean",
        "response_length_max",
        "gen_tokens_per_s",
        "rollout_seconds",
    ]
    wanted = {f"{role}/{name}" for role in ("solver", "challenger") for name in per_role}
    wanted |= {"eval/toy/accuracy", "eval/toy/ci95_low", "eval/toy/ci95_high"}
    wanted |= {
        f"curriculum/{name}"
        for name in (
            "candidates",
            "valid",
            "kept",
            "rounds",
            "share_mean",
            "question_words_mean",
            "distinct_fraction",
            "diversity",
            "label_accuracy",
            "kept_label_accuracy",
        )
    }
    wanted |= {f"curriculum/share_hist/{k}of4" for k in range(5)}
    wanted |= {"challenger/vote/in_band", "challenger/valid_fraction"}
    wanted |= {f"challenger/invalid_reason/{r}" for r in ("no_question", "no_answer")}
    assert not wanted - tags, sorted(wanted - tags)


def test_the_base_challenger_ablation_skips_only_the_challengers_training(tmp_path):
    run_dir = tmp_path / "run"
    main(_toy_args(run_dir, **{"evolution.train_challenger": "false"}))
    phases = json.loads((run_dir / "state.json").read_text())["phases"]
    assert phases["iter1/challenger"]["skipped"] == "train_challenger is false"
    assert not (run_dir / "iter1" / "challenger").exists()
    assert phases["iter1/curriculum"]["kept"] > 0  # questions from the untrained challenger
    assert (
        phases["iter1/solver"]["steps"] == 1 and (run_dir / "iter1" / "solver" / "weights").is_dir()
    )
    assert "accuracy" in phases["iter1/eval"]


@pytest.mark.slow  # two iterations of the shipped toy model
@pytest.mark.parametrize("reference", ["start", "base"])
def test_the_kl_reference_of_a_later_iteration(reference, tmp_path):
    """Iteration 2's solver starts from iteration 1's solver: against a ``start`` reference its
    first KL is 0 (the reference is the weights it starts from), against ``base`` it is not."""
    from builders import tensorboard_scalars

    run_dir = tmp_path / "run"
    args = _toy_args(
        run_dir,
        **{
            "evolution.iterations": 2,
            "evolution.solver_steps": 2,
            "model.init_args.loss.kl_coef": 0.01,
            "model.init_args.loss.reference": reference,
            "model.init_args.lr": 1e-3,
            "evolution.evaluation": "null",
        },
    )
    main(args)
    events = tensorboard_scalars(str(run_dir / "tensorboard"))["solver/kl"]
    values = [e.value for e in sorted(events, key=lambda e: e.step)]
    assert len(values) % 2 == 0  # the same number of updates in both iterations
    iteration_two = values[len(values) // 2 :]
    assert values[0] < 1e-6  # iteration 1 starts from the base either way
    if reference == "start":
        assert iteration_two[0] < 1e-6
    else:
        assert iteration_two[0] > 1e-4


def test_label_vote_gives_the_curriculum_its_own_m_and_band(tmp_path):
    """The released labelling: the curriculum votes with its own m and band (here m = 3 and
    [0.6, 1.0]: 2 or 3 of 3) while ``evolution.vote`` (m = 4) stays the challenger's."""
    run_dir = tmp_path / "run"
    extra = {
        "evolution.train_challenger": "false",
        "evolution.label_vote.samples": 3,
        "evolution.label_vote.band": "[0.6, 1.0]",
        "evolution.evaluation": "null",
    }
    main(_toy_args(run_dir, **extra))
    folder = run_dir / "iter1" / "curriculum"
    records = [json.loads(line) for line in (folder / "questions.jsonl").open()]
    voted = [r for r in records if r.get("votes")]
    assert voted and all(len(r["votes"]) == 3 for r in voted)
    for r in voted:
        assert r["kept"] == (r["reason"] == "kept")
        if r["reason"] in ("kept", "below_band"):
            assert r["kept"] == (r["share"] >= 0.6)
    assert len(json.loads((folder / "curriculum.json").read_text())["share_histogram"]) == 4


def test_cumulative_steps_need_the_restart_from_the_base(tmp_path):
    from rzero_pl.errors import ConfigError
    from rzero_pl.run.evolution import Evolution

    with pytest.raises(ConfigError, match="evolution.cumulative_steps: set without"):
        Evolution(None, None, run_dir=str(tmp_path / "run"), cumulative_steps=True)
