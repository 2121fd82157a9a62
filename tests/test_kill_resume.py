"""Kill and resume: the toy evolution killed at chosen and at random moments, then finished.

One run folder lives through a chain of processes. Each process runs the same
``rzero-pl fit`` command (forked from an interpreter that has imported the CLI once,
tests/preloaded.py; the reference run and the chain's last process are new interpreters,
``python -m rzero_pl``) with ``RZERO_PL_FAULT`` naming the moment it dies at
(``rzero_pl.ground.faults``): SIGKILL mid-batch, mid-checkpoint (the new checkpoint written under its
temporary name), between a phase's weights and its ``state.json`` entry, mid-write of
``questions.jsonl``/``curriculum.jsonl``/the evaluation files, and SIGTERM (what SLURM sends
before pre-emption) in training and in curriculum writing. The named points are the same on
every machine; a second test adds SIGKILLs after seeded random delays, which land wherever
the machine happens to be. After every kill the folder must hold only whole files;
a last clean process must finish the run with every artifact, a consistent ``state.json``,
one continuous TensorBoard step axis, and result files (weights of every phase, curricula,
evaluation samples) byte-identical to an uninterrupted run of the same configuration and seed.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import time

import preloaded
import pytest
from toy_runs import (
    CANDIDATES,
    EVAL_SAMPLES,
    ITERATIONS,
    ROOT,
    fresh_command,
    run_env,
    shrunk_toy_config,
)

from rzero_pl.ground.io import TMP_MARK
from rzero_pl.run.checkpoints import checkpoint_step
from rzero_pl.run.evolution import PREEMPTED_EXIT_CODE

pytestmark = pytest.mark.slow

PHASES = ["baseline"] + [
    f"iter{i}/{p}"
    for i in range(1, ITERATIONS + 1)
    for p in ("challenger", "curriculum", "solver", "eval")
]

# (fault, expected exit status[, phase the next process must resume from its checkpoint]) in
# the order the run reaches them; each process resumes the folder the previous one left.
KILLS = [
    ("write:toy.jsonl@1", -9),  # baseline evaluation, samples half written
    ("train:iter1/challenger:batch@1", -9),  # first challenger update
    ("phase:iter1/challenger:saved@1", -9),  # weights saved, state.json not yet
    ("write:questions.jsonl@1:TERM", PREEMPTED_EXIT_CODE),  # SIGTERM while writing curriculum
    ("train:iter1/solver:batch@5", -9),  # solver, just after the first rollout step's checkpoint
    ("checkpoint:iter1/solver@1", -9, "iter1/solver"),  # written, not yet renamed into place
    ("train:iter1/solver:batch@1:TERM", PREEMPTED_EXIT_CODE, "iter1/solver"),  # mid rollout step
    ("phase:iter1/eval:done@1", -9),  # evaluation written, state.json not yet
    ("phase:iter1/eval:finished@1", -9),  # recorded in state.json: its scalars must be on disk
    ("checkpoint:iter2/challenger@2", -9, "iter2/challenger"),  # iteration 2, not yet renamed
    ("write:curriculum.jsonl@1", -9),  # second curriculum, kept questions half written
    ("phase:iter2/curriculum:finished@1", -9),  # recorded, nothing after it run yet
    ("train:iter2/solver:batch@2", -9),  # mid rollout step, no checkpoint of this phase yet
    ("train:iter2/solver:batch@6", -9, "iter2/solver"),  # mid second rollout step
    ("write:eval.json@1", -9),  # last evaluation, summary half written
]


def _run(config: str, fault: str | None) -> tuple[int, str]:
    """One process of the chain, forked from the preloaded CLI (tests/preloaded.py): (exit
    status, its output). The timeout only catches a hang: on a crowded machine one process
    can take minutes."""
    log = f"{config}.{time.monotonic_ns()}.log"
    return preloaded.run(["fit", "--config", config], run_env(fault), ROOT, log, timeout=900)


def _run_fresh(config: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        fresh_command(config),
        env=run_env(None),
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )


def _check_state(run_dir, complete: bool) -> dict:
    """``state.json`` parses, its phases come in order and tile the step axis."""
    with open(os.path.join(run_dir, "state.json")) as f:
        state = json.load(f)
    phases = state["phases"]
    assert list(phases) == PHASES[: len(phases)]
    step = 0
    for name, entry in phases.items():
        assert entry["step_start"] == step, name
        assert entry["step_end"] == step + entry["steps"], name
        step = entry["step_end"]
    assert state["step"] == step
    if complete:
        assert list(phases) == PHASES
    return state


def _check_files_whole(run_dir) -> None:
    """Every JSON/JSONL file under its final name parses, line by line."""
    for path in glob.glob(os.path.join(run_dir, "**", "*.json*"), recursive=True):
        if TMP_MARK in os.path.basename(path):
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if path.endswith(".jsonl"):
            assert text == "" or text.endswith("\n"), path
            for number, line in enumerate(text.splitlines(), 1):
                json.loads(line), f"{path}:{number}"
        else:
            json.loads(text)
    for path in glob.glob(os.path.join(run_dir, "**", "last.ckpt"), recursive=True):
        assert checkpoint_step(path) is not None, path


def _check_artifacts(run_dir, state: dict) -> None:
    assert not [
        p for p in glob.glob(os.path.join(run_dir, "**", "*"), recursive=True) if TMP_MARK in p
    ]
    for tag in ["eval/baseline"] + [f"iter{i}/eval" for i in range(1, ITERATIONS + 1)]:
        summary = json.load(open(os.path.join(run_dir, tag, "eval.json")))
        assert summary["benchmarks"]["toy"]["n_problems"] == EVAL_SAMPLES
        samples = open(os.path.join(run_dir, tag, "samples", "toy.jsonl")).read().splitlines()
        assert len(samples) == EVAL_SAMPLES
    for i in range(1, ITERATIONS + 1):
        folder = os.path.join(run_dir, f"iter{i}")
        assert os.path.exists(os.path.join(folder, "challenger", "weights", "config.json"))
        report = json.load(open(os.path.join(folder, "curriculum", "curriculum.json")))
        questions = [
            json.loads(x) for x in open(os.path.join(folder, "curriculum", "questions.jsonl"))
        ]
        kept = [json.loads(x) for x in open(os.path.join(folder, "curriculum", "curriculum.jsonl"))]
        assert len(questions) == report["candidates"] == CANDIDATES
        assert len({q["id"] for q in questions}) == CANDIDATES  # no duplicated candidate
        assert len(kept) == report["kept"] == sum(q["kept"] for q in questions)
        assert state["phases"][f"iter{i}/curriculum"]["kept"] == report["kept"]
        solver = state["phases"][f"iter{i}/solver"]
        if report["kept"]:
            assert solver["steps"] > 0
            assert os.path.exists(os.path.join(folder, "solver", "weights", "config.json"))
        else:
            assert solver["skipped"]


RESULTS = [
    "iter*/*/weights/*",
    "iter*/curriculum/questions.jsonl",
    "iter*/curriculum/curriculum.jsonl",
    "eval/baseline/samples/*.jsonl",
    "iter*/eval/samples/*.jsonl",
]


def _check_same_results(run_dir, reference) -> None:
    """Every result file byte-identical to the uninterrupted reference run's, and the same
    accuracies (eval.json also holds timings)."""
    for pattern in RESULTS:
        theirs = sorted(glob.glob(os.path.join(reference, pattern)))
        assert theirs, pattern
        for path in theirs:
            relative = os.path.relpath(path, reference)
            with open(path, "rb") as a, open(os.path.join(run_dir, relative), "rb") as b:
                assert a.read() == b.read(), f"{relative} differs from the uninterrupted run"
    for path in glob.glob(os.path.join(reference, "**", "eval.json"), recursive=True):
        relative = os.path.relpath(path, reference)
        ours = json.load(open(os.path.join(run_dir, relative)))["benchmarks"]
        theirs = json.load(open(path))["benchmarks"]
        for name, entry in theirs.items():
            for key in ("accuracy", "n_problems"):
                assert ours[name][key] == entry[key], (relative, name, key)


def _scalars(run_dir) -> dict[str, list[int]]:
    """Steps of every scalar tag as TensorBoard shows them (restart markers applied)."""
    from builders import tensorboard_scalars

    scalars = tensorboard_scalars(os.path.join(run_dir, "tensorboard"))
    return {tag: [e.step for e in events] for tag, events in scalars.items()}


def _check_step_axis(run_dir, state: dict) -> None:
    """One point per step per tag, and each phase's scalars exactly on its own steps."""
    scalars = _scalars(run_dir)
    for tag, steps in scalars.items():
        assert steps == sorted(set(steps)), f"{tag}: duplicated or out-of-order steps {steps}"
    phases = state["phases"]
    for role in ("challenger", "solver"):
        expected, rollout_steps = [], 0
        for i in range(1, ITERATIONS + 1):
            entry = phases[f"iter{i}/{role}"]
            expected += range(entry["step_start"], entry["step_end"])
            rollout_steps += 2 if entry["steps"] else 0
        assert scalars.get(f"{role}/loss", []) == expected, role
        assert len(scalars.get(f"{role}/reward_mean", [])) == rollout_steps, role
    curricula = [phases[f"iter{i}/curriculum"]["step_start"] for i in range(1, ITERATIONS + 1)]
    assert scalars["curriculum/kept"] == curricula
    evals = [phases[p]["step_start"] for p in PHASES if p.endswith("eval") or p == "baseline"]
    assert scalars["eval/toy/accuracy"] == evals


@pytest.fixture(scope="module")
def reference_run(finished_toy_run):
    """The same configuration and seed, never interrupted (one run for the session, shared
    with tests/test_red_team.py): what every resumed run must equal."""
    _, run_dir, _ = finished_toy_run
    _check_artifacts(run_dir, _check_state(run_dir, complete=True))
    weights = {open(p, "rb").read() for p in glob.glob(os.path.join(run_dir, RESULTS[0]))}
    # Both roles really trained (an untrained run would compare base weights with base weights).
    assert len(weights) >= 3, "the weights of at least three phases should differ"
    return run_dir


def test_killed_at_every_phase_the_run_resumes_to_the_same_files(tmp_path, reference_run):
    """Killed (SIGKILL, SIGTERM) in every phase, mid rollout step, mid checkpoint and just
    after one, and resumed each time: the run ends with the uninterrupted run's files."""
    config = shrunk_toy_config(tmp_path)
    run_dir = str(tmp_path / "run")
    resumes = None
    for fault, status, *then_resumes in KILLS:
        returncode, output = _run(config, fault)
        assert returncode == status, f"{fault}: exit {returncode}\n{output[-3000:]}"
        if resumes:  # the phase went on from its last rollout step, not from the start
            assert f"[{resumes}] 2 rollout steps (resuming)" in output
        resumes = then_resumes[0] if then_resumes else None
        if status == PREEMPTED_EXIT_CODE:  # SIGTERM: a clean stop, with a message, no traceback
            assert "SIGTERM: the run stopped cleanly" in output
            assert "Traceback" not in output
        _check_state(run_dir, complete=False)
        _check_files_whole(run_dir)
    done = _run_fresh(config)  # the last one as users start it, in a new interpreter
    assert done.returncode == 0, done.stderr[-3000:]
    state = _check_state(run_dir, complete=True)
    _check_files_whole(run_dir)
    _check_artifacts(run_dir, state)
    _check_step_axis(run_dir, state)
    _check_same_results(run_dir, reference_run)


def test_killed_at_random_moments_the_run_resumes_and_finishes(tmp_path, finished_toy_run):
    """Five runs, each SIGKILLed at a random moment of its work, then re-run to the end.

    The clock starts when a run takes its folder's lock (imports and model loading done) and
    the delays are stratified over the work's measured length, so the kills land across every
    phase wherever the machine happens to be: mid-generation, mid-write, in the verifier,
    between two files. They complement the named points above; the same invariants must hold
    after each kill and after each finished re-run.
    """
    import random

    _, reference, work = finished_toy_run  # the uninterrupted run, timed from its lock
    rng = random.Random(0)
    kills, trials = 0, 5
    for trial in range(trials):
        folder = tmp_path / f"trial{trial}"
        folder.mkdir()
        config = shrunk_toy_config(folder)
        run_dir, log = str(folder / "run"), str(folder / "output.txt")
        process = preloaded.Run(["fit", "--config", config], run_env(None), ROOT, log)
        preloaded.wait_for(os.path.join(run_dir, ".lock"), process, timeout=600)
        try:
            process.wait(timeout=(trial + rng.random()) / trials * work)
        except subprocess.TimeoutExpired:
            process.kill()  # SIGKILL
            process.wait()
            kills += 1
        assert process.returncode in (0, -9), open(log).read()[-3000:]
        if os.path.exists(os.path.join(run_dir, "state.json")):
            _check_state(run_dir, complete=False)
        _check_files_whole(run_dir)
        returncode, output = _run(config, None)
        assert returncode == 0, f"trial {trial}: {output[-3000:]}"
        state = _check_state(run_dir, complete=True)
        _check_files_whole(run_dir)
        _check_artifacts(run_dir, state)
        _check_step_axis(run_dir, state)
        _check_same_results(run_dir, reference)
    # A run may outpace its calibration on a busy machine (the delays are timing): what is
    # asserted above holds whether or not a run was killed; one kill at least must have landed.
    assert kills >= 1, f"none of {trials} runs was killed before it ended"
