"""Red team: bad configurations and damaged run folders, each a one-line error that changes nothing.

Every case goes through the real CLI in-process (``main`` in command-line mode): exit status
2, exactly one ``rzero-pl: error:`` line holding the expected words, and (for the run folder
cases) every file of the run folder byte-identical before and after. The damaged-folder cases
share one small finished toy run (module fixture), each working on a copy of it.

Every numeric setting is walked in ``tests/test_red_team_settings.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil

import pytest
from toy_runs import EVAL_SAMPLES

from rzero_pl.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOY = os.path.join(ROOT, "cli_configs", "toy.yaml")


def _cli(args: list[str]) -> tuple[int, list[str]]:
    """Run ``rzero-pl`` in-process; (exit status, its ``rzero-pl: error:`` lines)."""
    err = io.StringIO()
    code = 0
    with contextlib.redirect_stderr(err):
        try:
            main(args, one_line_errors=True)
        except SystemExit as stop:
            code = stop.code
    return code, [x for x in err.getvalue().splitlines() if x.startswith("rzero-pl: error:")]


def _refused(args: list[str], *words: str) -> str:
    code, errors = _cli(args)
    assert code == 2, (args, errors)
    assert len(errors) == 1, errors
    for word in words:
        assert word in errors[0], (word, errors[0])
    return errors[0]


def _tree_hash(folder: str) -> dict[str, str]:
    """sha256 of every file under ``folder`` (the lock file holds the last pid: left out)."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            if name == ".lock":
                continue
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return out


# ------------------------------------------------------------------ other bad configurations


def _yaml(tmp_path, text: str) -> list[str]:
    path = tmp_path / "extra.yaml"
    path.write_text(text)
    return ["--config", str(path)]


BAD_CONFIGS = [
    ("run_dir is a file", lambda p: [f"--evolution.run_dir={_file(p)}"], ["run_dir", "a file"]),
    ("unknown key", lambda p: ["--evolution.solver_stepz=3"], ["solver_stepz", "unknown key"]),
    ("band reversed", lambda p: ["--evolution.vote.band=[0.9,0.1]"], ["band"]),
    ("band above 1", lambda p: ["--evolution.vote.band=[0.1,1.5]"], ["band"]),
    (
        "minibatch not a multiple",
        lambda p: ["--model.init_args.micro_batch_size=3"],
        ["micro_batch_size"],
    ),
    ("dual clip <= 1", lambda p: ["--model.init_args.loss.dual_clip=0.5"], ["dual_clip"]),
    ("top_p above 1", lambda p: ["--model.init_args.sampling.top_p=1.5"], ["top_p"]),
    ("steps NaN", lambda p: ["--model.init_args.lr=nan"], ["lr"]),
    ("steps inf", lambda p: ["--model.init_args.lr=inf"], ["lr"]),
    (
        "unknown benchmark",
        lambda p: ["--evolution.evaluation.init_args.benchmarks=[nope]"],
        ["nope"],
    ),
    ("bool as count", lambda p: ["--evolution.solver_steps=true"], ["solver_steps"]),
    ("float as count", lambda p: ["--evolution.solver_steps=1.5"], ["solver_steps"]),
    (
        "empty questions file",
        lambda p: _yaml(p, _questions_yaml(_empty(p, "q.jsonl"))),
        ["q.jsonl", "no questions"],
    ),
    (
        "empty benchmark file",
        lambda p: _benchmark(p, ""),
        ["math500/test.jsonl", "empty benchmark"],
    ),
    (
        "lone surrogate in a benchmark",
        lambda p: _benchmark(p, '{"problem": "x \\ud800", "answer": "1"}\n'),
        ["math500/test.jsonl:1", "lone surrogate"],
    ),
]


def _file(tmp_path) -> str:
    path = tmp_path / "not_a_folder"
    path.write_text("x")
    return str(path)


def _empty(tmp_path, name: str) -> str:
    path = tmp_path / name
    path.write_text("")
    return str(path)


def _questions_yaml(path: str) -> str:
    return (
        "evolution: null\n"
        "data:\n  class_path: rzero_pl.datamodules.LabelledQuestionsDataModule\n"
        f"  init_args:\n    source:\n      class_path: rzero_pl.questions.JsonlQuestions\n"
        f"      init_args: {{path: {path}}}\n    questions_per_step: 2\n"
        "trainer:\n  max_epochs: 1\n  callbacks: []\n"
    )


def _benchmark(tmp_path, text: str) -> list[str]:
    folder = tmp_path / "bench" / "math500"
    folder.mkdir(parents=True)
    (folder / "test.jsonl").write_text(text)
    return [
        "--evolution.evaluation.init_args.benchmarks=[math500]",
        f"--evolution.evaluation.init_args.root={tmp_path / 'bench'}",
    ]


@pytest.mark.parametrize(
    "make, words", [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS]
)
def test_bad_configuration_is_one_line(tmp_path, make, words):
    run_dir = tmp_path / "run"
    args = ["fit", "--config", TOY, f"--evolution.run_dir={run_dir}", *make(tmp_path)]
    _refused(args, *words)


# ------------------------------------------------------------------ damaged run folders


@pytest.fixture(scope="module")
def finished_run(finished_toy_run):
    """One small toy run, finished (tests/test_kill_resume.py's reference, shared for the
    session): the original every damaged-folder case copies."""
    config, run_dir, _ = finished_toy_run
    return config, run_dir


def _copy(finished_run, tmp_path) -> tuple[list[str], str]:
    config, original = finished_run
    run_dir = str(tmp_path / "run")
    shutil.copytree(original, run_dir)
    return ["fit", "--config", config, f"--evolution.run_dir={run_dir}"], run_dir


def _edit_state(run_dir: str, change) -> None:
    path = os.path.join(run_dir, "state.json")
    with open(path) as f:
        state = json.load(f)
    state = change(state)
    with open(path, "w") as f:
        f.write(state if isinstance(state, str) else json.dumps(state))


def _cut(path: str, keep: float) -> None:
    data = open(path, "rb").read()
    open(path, "wb").write(data[: int(len(data) * keep)])


def _poke(path: str, at: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(at)
        f.write(data)


def _weights(run_dir: str, it: int, role: str) -> str:
    return os.path.join(run_dir, f"iter{it}", role, "weights", "model.safetensors")


def _kept(run_dir: str, it: int) -> str:
    return os.path.join(run_dir, f"iter{it}", "curriculum", "curriculum.jsonl")


def _swap_in(source: str, target: str) -> None:
    """Copy ``source`` over ``target``: another role's weights of the same shapes."""
    with open(source, "rb") as a, open(target, "rb") as b:
        assert a.read() != b.read(), "the fixture's roles should have trained apart"
    shutil.copyfile(source, target)


def _set_phases_list(s):
    s["phases"] = list(s["phases"])
    return s


def _drop_field(s):
    del s["phases"]["iter1/solver"]["step_end"]
    return s


def _old_version(s):
    s["version"] = 1
    return s


def _truncate_lines(path: str, keep: int) -> None:
    lines = open(path).read().splitlines(keepends=True)
    open(path, "w").write("".join(lines[:keep]))


DAMAGE = [
    ("state {}", lambda d: _edit_state(d, lambda s: "{}"), ["state.json", "not a valid run state"]),
    ("state null", lambda d: _edit_state(d, lambda s: "null"), ["state.json", "JSON object"]),
    (
        "state version only",
        lambda d: _edit_state(d, lambda s: '{"version": 2}'),
        ["state.json", "'step'"],
    ),
    ("phases a list", lambda d: _edit_state(d, _set_phases_list), ["state.json", "'phases'"]),
    ("phase field missing", lambda d: _edit_state(d, _drop_field), ["state.json", "step_end"]),
    (
        "state another version",
        lambda d: _edit_state(d, _old_version),
        ["state.json", "another version"],
    ),
    (
        "state cut",
        lambda d: _cut(os.path.join(d, "state.json"), 0.5),
        ["state.json", "damaged JSON"],
    ),
    (
        "state deleted",
        lambda d: os.remove(os.path.join(d, "state.json")),
        ["state.json", "missing"],
    ),
    (
        "weights header",
        lambda d: _poke(_weights(d, 1, "solver"), 8, b"{{{{"),
        ["iter1/solver/weights", "sha256"],
    ),
    (
        "weights cut",
        lambda d: _cut(_weights(d, 1, "solver"), 0.5),
        ["iter1/solver/weights", "bytes"],
    ),
    (
        "challenger weights as solver",
        lambda d: _swap_in(_weights(d, 1, "challenger"), _weights(d, 1, "solver")),
        ["iter1/solver/weights", "not the weights of finished phase iter1/solver"],
    ),
    (
        "weights deleted",
        lambda d: shutil.rmtree(os.path.dirname(_weights(d, 2, "challenger"))),
        ["iter2/challenger/weights", "missing"],
    ),
    ("curriculum cut", lambda d: _truncate_lines(_kept(d, 1), 1), ["curriculum.jsonl", "differs"]),
    (
        "curriculum emptied",
        lambda d: _truncate_lines(_kept(d, 2), 0),
        ["iter2/curriculum", "differs"],
    ),
]


@pytest.mark.slow  # the module fixture runs one small toy evolution (about a minute)
@pytest.mark.parametrize("damage, words", [c[1:] for c in DAMAGE], ids=[c[0] for c in DAMAGE])
def test_damaged_run_folder_is_one_line_and_untouched(finished_run, tmp_path, damage, words):
    args, run_dir = _copy(finished_run, tmp_path)
    damage(run_dir)
    before = _tree_hash(run_dir)
    _refused(args, *words)
    assert _tree_hash(run_dir) == before


CHANGED = [
    ("another lr", ["--model.init_args.lr=3e-4"]),
    ("another seed", ["--seed_everything=1"]),
    (
        "another challenger reward (repetition weight)",
        ["--evolution.challenger.init_args.repetition.weight=0.5"],
    ),
    (  # issue 27 item 8: later iterations would be scored on other problems than the baseline
        "another evaluation (max_samples)",
        [f"--evolution.evaluation.init_args.max_samples={EVAL_SAMPLES + 1}"],
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("extra", [c[1] for c in CHANGED], ids=[c[0] for c in CHANGED])
def test_a_changed_configuration_is_refused(finished_run, tmp_path, extra):
    args, run_dir = _copy(finished_run, tmp_path)
    before = _tree_hash(run_dir)
    _refused([*args, *extra], "state.json", "different configuration")
    assert _tree_hash(run_dir) == before


@pytest.mark.slow
def test_a_moved_run_folder_given_by_a_relative_path_resumes(finished_run, tmp_path, monkeypatch):
    args, run_dir = _copy(finished_run, tmp_path)
    before = {k: v for k, v in _tree_hash(run_dir).items() if not k.startswith("tensorboard")}
    monkeypatch.chdir(tmp_path)
    code, errors = _cli([*args[:-1], "--evolution.run_dir=run"])
    assert code == 0 and not errors, errors
    after = {k: v for k, v in _tree_hash(run_dir).items() if not k.startswith("tensorboard")}
    assert after == before


# ------------------------------------------------------------------ the checks themselves (fast)


@pytest.mark.parametrize(
    "text, words",
    [
        ("{}", "'version'"),
        ("null", "JSON object"),
        ('{"version": 2}', "'step'"),
        ('{"version": 2, "step": 0, "fingerprint": null, "phases": []}', "'phases'"),
        ('{"version": 2, "step": 0, "fingerprint": 3, "phases": {}}', "'fingerprint'"),
        ('{"version": 2, "step": 1, "fingerprint": null, "phases": {"a": {"steps": 1}}}', "a"),
        ('{"version": 2, "step": -1, "fingerprint": null, "phases": {}}', "'step'"),
    ],
)
def test_state_schema_refuses_what_it_cannot_trust(tmp_path, text, words):
    from rzero_pl.run.state import RunState

    (tmp_path / "state.json").write_text(text)
    with pytest.raises(ValueError) as refused:
        RunState(str(tmp_path))
    message = str(refused.value)
    assert "state.json" in message and words in message and "\n" not in message


def test_a_missing_state_next_to_phase_folders_is_not_a_fresh_start(tmp_path):
    from rzero_pl.run.state import RunState

    assert RunState(str(tmp_path)).data["phases"] == {}  # an empty folder: a fresh start
    (tmp_path / "iter1").mkdir()
    with pytest.raises(ValueError, match=r"state.json: missing, but .* \(iter1\)"):
        RunState(str(tmp_path))


def test_recorded_weights_are_checked_by_size_and_content(tmp_path):
    from rzero_pl.run.checkpoints import check_weights, weights_digest

    (tmp_path / "model.safetensors").write_bytes(b"a" * 100)
    recorded = weights_digest(str(tmp_path))
    check_weights(str(tmp_path), recorded, "iter1/solver")
    check_weights(str(tmp_path), None, "iter1/solver")  # a state from before checksums
    (tmp_path / "model.safetensors").write_bytes(b"b" * 100)
    with pytest.raises(ValueError, match="not the weights of finished phase iter1/solver"):
        check_weights(str(tmp_path), recorded, "iter1/solver")
    (tmp_path / "model.safetensors").write_bytes(b"a" * 50)
    with pytest.raises(ValueError, match="50 bytes, 100 were recorded"):
        check_weights(str(tmp_path), recorded, "iter1/solver")


def test_an_invisible_question_is_not_a_question():
    from rzero_pl.rewards import QuestionFormat

    for blank in ("\u200b", " \u200b\ufeff ", "\u2060", "\u00a0"):
        text = f"<question>{blank}</question> \\boxed{{1}}"
        assert QuestionFormat().parse(text)[0] is None, repr(blank)


def test_a_benchmark_that_changed_during_the_run_is_refused():
    from rzero_pl.run.state import check_problem_counts

    phases = {"baseline": {"problems": {"math500": 500, "toy": 40}}, "iter1/eval": {}}
    check_problem_counts(phases, "iter2/eval", {"math500": 500, "gsm8k": 10}, "state.json")
    with pytest.raises(ValueError, match=r"'math500' has 499 problems in iter2/eval, 500 in"):
        check_problem_counts(phases, "iter2/eval", {"math500": 499}, "state.json")
