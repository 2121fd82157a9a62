"""Red team, bounds and late refusals (issue 27 items 6, 9, 10, 12, 13, 14; Deliver 3).

Every CLI case runs in-process as ``tests/test_red_team.py`` does, with the model's loading
replaced by an error (``no_model``): a refusal must come before any weight is read, in one
``rzero-pl: error:`` line naming the key or file, with exit status 2. Those take under a
second each; the walk over every count and file setting of the toy configuration is the
one slow test.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import signal

import pytest
import yaml
from test_red_team import TOY, _cli, _refused
from test_red_team_settings import REQUIRED, _class_params, _nested_class

# ------------------------------------------------------------------ helpers


@pytest.fixture()
def no_model(monkeypatch):
    """Loading the policy fails the test: every refusal below comes before it."""
    from rzero_pl.models.policy import Policy

    @functools.wraps(Policy.__init__)  # the same signature: the parser reads it
    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded before the configuration was checked")

    monkeypatch.setattr(Policy, "__init__", no_loading)


def _fit(tmp_path, *extra: str) -> list[str]:
    return ["fit", "--config", TOY, f"--evolution.run_dir={tmp_path / 'run'}", *extra]


def _yaml_file(tmp_path, text: str, name: str = "extra.yaml") -> list[str]:
    path = tmp_path / name
    path.write_text(text)
    return ["--config", str(path)]


def _labelled(path) -> list[str]:
    return [
        "--evolution.curriculum.labelled=rzero_pl.questions.JsonlQuestions",
        f"--evolution.curriculum.labelled.path={path}",
    ]


# ------------------------------------------------------------------ item 6: non-finite sampling


@pytest.mark.parametrize("key", ["temperature", "top_p"])
@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_non_finite_sampling_is_refused_naming_the_key(key, value):
    from rzero_pl.engines import SamplingParams

    with pytest.raises(ValueError, match=f"sampling.{key} must be a finite number"):
        SamplingParams(**{key: value})


@pytest.mark.parametrize("section", ["model:\n  init_args:", "evolution:\n  vote:"])
@pytest.mark.parametrize("value", [".inf", ".nan"])
def test_non_finite_temperature_in_yaml_is_refused_before_loading(
    tmp_path, no_model, section, value
):
    text = f"{section}\n    sampling: {{temperature: {value}}}\n"
    _refused(_fit(tmp_path, *_yaml_file(tmp_path, text)), "sampling.temperature", "finite")


# ------------------------------------------------------------------ item 9: long questions


def test_a_labelled_question_beyond_the_ceiling_is_refused_before_loading(tmp_path, no_model):
    from rzero_pl.errors import MAX_QUESTION_CHARS

    path = tmp_path / "labelled.jsonl"
    rows = [{"problem": "1+1", "answer": "2"}, {"problem": "7" * (MAX_QUESTION_CHARS + 1)}]
    rows[1]["answer"] = "7"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _refused(_fit(tmp_path, *_labelled(path)), "labelled.jsonl:2", "characters")


def test_the_engine_cuts_completions_at_the_context_and_refuses_a_prompt_that_fills_it(
    tiny_model_dir,
):
    from rzero_pl.engines import HFEngine, SamplingParams
    from rzero_pl.models import PretrainedModel
    from rzero_pl.models.policy import Policy

    policy = Policy(PretrainedModel(tiny_model_dir, dtype="float32"))
    context = policy.module("solver").config.max_position_embeddings
    engine = HFEngine()
    engine.attach(policy)
    params = SamplingParams(temperature=0.0, max_new_tokens=40)
    short = "Solve: What is 1 + 2?\n"
    near = "Solve: " + "1+" * ((context - 30) // 2) + "1\n"  # about 20 tokens of room
    alone = engine.generate([short], role="solver", params=params)[0].completions[0]
    both = engine.generate([short, near], role="solver", params=params)
    assert both[0].completions[0].token_ids == alone.token_ids  # a prompt that fits: as before
    assert len(both[1].prompt_ids) + len(both[1].completions[0].token_ids) <= context
    with pytest.raises(ValueError, match=r"does not fit the model's context of \d+ tokens.*1\+1"):
        engine.generate([short, "Solve: " + "1+" * context], role="solver", params=params)


# ------------------------------------------------------------------ item 10: counts and YAML


def _alias_bomb(levels: int = 8) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for k in range(1, levels):
        lines.append(f"a{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_a_huge_count_is_refused_before_loading(tmp_path, no_model):
    _refused(_fit(tmp_path, f"--evolution.curriculum.candidates={10**30}"), "candidates", "<=")


def test_a_yaml_alias_bomb_is_refused_naming_the_file(tmp_path, no_model):
    args = _yaml_file(tmp_path, _alias_bomb(), "bomb.yaml")
    _refused(_fit(tmp_path, *args), "bomb.yaml", "expands to more than")


def test_yaml_bounds_allow_the_shipped_configs_and_refuse_recursion():
    from rzero_pl.config_yaml import YAMLTooLarge, check_yaml, expanded_size

    folder = os.path.join(os.path.dirname(TOY))
    for name in os.listdir(folder):
        with open(os.path.join(folder, name)) as f:
            check_yaml(f.read())
    node = yaml.compose("a: &x [1, 2]\nb: [*x, *x, *x]\n")
    # the map 1, key a 2, [1, 2] 5, key b 2, [*x, *x, *x] 1 + 3 x 5: 26
    assert expanded_size(node) == 26
    with pytest.raises(YAMLTooLarge, match="recursive alias"):
        check_yaml("a: &x [1, *x]\n")
    with pytest.raises(YAMLTooLarge, match="nested too deeply"):
        check_yaml("[" * 5000 + "]" * 5000)


# ------------------------------------------------------------------ Deliver 3: the walk


def _walk_config() -> tuple[list[tuple[str, str, type]], list[tuple[str, str]]]:
    """(CLI key, parameter, class) of every int count, and (CLI key, parameter) of every file
    setting, that the toy configuration's classes take (their nested setting types too)."""
    import importlib

    import rzero_pl.run.evolution as evolution
    from rzero_pl.models.policy import Policy

    with open(TOY) as f:
        config = yaml.safe_load(f)
    roots = [
        ("model", config["model"]),
        ("data", config["data"]),
        ("actor.engine", config["actor"]["engine"]),
        ("actor.policy.init_args.model", config["actor"]["policy"]["model"]),
        ("evolution.challenger", config["evolution"]["challenger"]),
        ("evolution.challenger_data", config["evolution"]["challenger_data"]),
        ("evolution.evaluation", config["evolution"]["evaluation"]),
    ]
    classes = [("evolution", evolution.Evolution), ("actor.policy.init_args", Policy)]
    for key, node in roots:
        module, _, name = node["class_path"].rpartition(".")
        classes.append((f"{key}.init_args", getattr(importlib.import_module(module), name)))
    counts, files = [], []
    for prefix, cls in classes:  # grows while walked: nested setting types are appended
        for name, p in _class_params(cls).items():
            nested = _nested_class(p.annotation)
            if nested is not None and name not in ("policy", "selection", "analysis"):
                classes.append((f"{prefix}.{name}", nested))
            elif _is_int(p.annotation) and name not in ("seed", "top_k"):
                counts.append((f"{prefix}.{name}", name, cls))
            elif name in ("run_dir", "root", "labelled", "weights"):
                files.append((f"{prefix}.{name}", name))
    return counts, files


def _is_int(annotation) -> bool:
    import typing

    args = set(typing.get_args(annotation)) - {type(None)} or {annotation}
    return args == {int}


@pytest.mark.slow  # about 40 CLI calls of half a second each
def test_every_count_and_file_setting_is_checked_before_loading(tmp_path, no_model):
    """Deliver 3: each int count set to 10**30 and each file setting pointed at nothing is
    refused in one line naming it, before any model loads, with nothing written."""
    counts, files = _walk_config()
    assert len(counts) >= 25, counts
    for key, name, _ in counts:
        _refused(_fit(tmp_path, f"--{key}={10**30}"), name)
    missing = tmp_path / "missing" / "nothing.jsonl"
    for key, name in files:
        if name == "labelled":
            _refused(_fit(tmp_path, *_labelled(missing)), str(missing))
        elif name == "root":
            benchmarks = "--evolution.evaluation.init_args.benchmarks=[math500]"
            _refused(_fit(tmp_path, f"--{key}={missing.parent}", benchmarks), str(missing.parent))
        elif name == "run_dir":
            _refused(_fit(tmp_path, f"--{key}={TOY}/run"), name)
        elif name == "weights":
            _refused(_fit(tmp_path, f"--{key}={{solver: {missing.parent}}}"), str(missing.parent))
    assert {name for _, name in files} == {"labelled", "root", "run_dir", "weights"}, files
    assert not (tmp_path / "run").exists()


def test_every_count_has_a_ceiling_at_construction():
    """The classes refuse 10**30 themselves too (``rzero-pl test``, Python users)."""
    from rzero_pl.errors import ConfigError

    counts, _ = _walk_config()
    tried = 0
    for cls, name in dict.fromkeys((cls, name) for _, name, cls in counts):
        with pytest.raises((ConfigError, ValueError)) as refused:
            cls(**{**REQUIRED.get(cls.__name__, {}), name: 10**30})
        assert name in str(refused.value) and "\n" not in str(refused.value), (cls, name)
        tried += 1
    assert tried >= 20


# ------------------------------------------------------------------ item 12: refused late


def test_a_missing_or_folder_labelled_file_is_refused_before_loading(tmp_path, no_model):
    _refused(_fit(tmp_path, *_labelled(tmp_path / "nope.jsonl")), "nope.jsonl", "no such file")
    _refused(_fit(tmp_path, *_labelled(tmp_path)), "is a folder")


def test_a_labelled_file_over_a_mebibyte_is_checked_whole_before_loading(tmp_path, no_model):
    path = tmp_path / "big.jsonl"
    row = json.dumps({"problem": "What is 1 + 1? " + "x" * 200, "answer": "2"}) + "\n"
    lines = (2 << 20) // len(row)
    path.write_text(row * lines + '{"problem": "no answer"}\n')
    _refused(_fit(tmp_path, *_labelled(path)), f"big.jsonl:{lines + 1}", "answer")


def test_accumulate_grad_batches_is_refused_before_loading(tmp_path, no_model):
    _refused(_fit(tmp_path, "--trainer.accumulate_grad_batches=3"), "accumulate_grad_batches")


def test_an_explicit_benchmark_root_without_the_file_is_refused_naming_it(tmp_path, no_model):
    root = tmp_path / "benchmarks"
    args = [
        f"--evolution.evaluation.init_args.root={root}",
        "--evolution.evaluation.init_args.benchmarks=[toy, math500]",
    ]
    _refused(_fit(tmp_path, *args), "root", str(root / "math500" / "test.jsonl"))


# ------------------------------------------------------------------ item 13: tracebacks


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--evolution=null"], ["data", "CurriculumDataModule", "LabelledQuestionsDataModule"]),
        (["--model=rzero_pl.grpo.challenger.ChallengerGRPO"], ["model", "SolverGRPO"]),
        (["--trainer.fast_dev_run=true"], ["trainer.fast_dev_run"]),
        (["--trainer.limit_train_batches=0"], ["trainer.limit_train_batches"]),
        (["--trainer.limit_train_batches=-1"], ["trainer.limit_train_batches"]),
        (["--trainer.accumulate_grad_batches=0"], ["trainer.accumulate_grad_batches"]),
        (["--actor.policy.init_args.weights={solver: /nonexistent/w}"], ["weights.solver"]),
    ],
    ids=[
        "evolution null",
        "challenger as model",
        "fast_dev_run",
        "limit_train_batches 0",
        "limit_train_batches -1",
        "accumulate_grad_batches 0",
        "weights folder missing",
    ],
)
def test_a_setting_that_failed_after_loading_is_refused_before(tmp_path, no_model, extra, words):
    _refused(_fit(tmp_path, *extra), *words)


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda r: {**r, "extra": 1}, "unknown key 'extra'"),
        (lambda r: {k: v for k, v in r.items() if k != "kept"}, "missing 'kept'"),
        (lambda r: [r], "missing 'candidates'"),
    ],
    ids=["extra key", "missing key", "not an object"],
)
def test_a_curriculum_report_that_is_not_one_is_one_line_naming_it(tmp_path, change, words):
    from rzero_pl.curriculum import Curriculum

    record = {"candidates": 8, "valid": 8, "kept": 3, "rounds": 1, "seconds": 1.0}
    (tmp_path / "curriculum.json").write_text(json.dumps(change(record)))
    (tmp_path / "curriculum.jsonl").write_text("")
    with pytest.raises(ValueError) as refused:
        Curriculum().build(None, None, str(tmp_path))  # a finished folder: read, never built
    message = str(refused.value)
    assert "curriculum.json" in message and words in message and "\n" not in message


@pytest.mark.parametrize(
    "text, words",
    [
        (None, "missing; restore it, or delete its phase's entry"),
        ('{"benchmarks": ', "damaged JSON"),
        ('{"phase": "iter1/eval"}', "no 'benchmarks' object"),
        ("[]", "no 'benchmarks' object"),
    ],
    ids=["deleted", "damaged", "no benchmarks", "a list"],
)
def test_an_eval_summary_that_is_not_one_is_one_line_naming_it(tmp_path, text, words):
    from rzero_pl.run.selection import read_summary

    if text is not None:
        (tmp_path / "eval.json").write_text(text)
    with pytest.raises((ValueError, OSError)) as refused:
        read_summary(str(tmp_path))
    message = str(refused.value)
    assert str(tmp_path / "eval.json") in message and words in message, message
    assert "state.json" in message and "\n" not in message


def _evolution(tmp_path):
    from rzero_pl.run.evolution import Evolution

    return Evolution(challenger=None, challenger_data=None, run_dir=str(tmp_path / "run"))


def test_ctrl_c_between_rollout_steps_stops_cleanly_with_status_130(tmp_path, capsys):
    from rzero_pl.run.evolution import Preempted

    evolution = _evolution(tmp_path)
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(Preempted) as stopped, evolution._sigterm_stops_the_run():
        os.kill(os.getpid(), signal.SIGINT)
    assert stopped.value.code == 130
    assert (
        "Ctrl-C (SIGINT): the run stopped cleanly (between rollout steps)" in stopped.value.message
    )
    assert "Re-run the same command to resume" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is before


def _interrupting(signum: int, at: int):
    from lightning.pytorch.callbacks import Callback

    class SendAt(Callback):
        batches = 0

        def on_train_batch_end(self, *args) -> None:
            SendAt.batches += 1
            if SendAt.batches == at:
                os.kill(os.getpid(), signum)

    return SendAt()


def _boring_trainer(tmp_path, callback, epochs: int = 3):
    """Lightning's boring model's fits here: ``epochs`` of 4 batches on the CPU."""
    from builders import quiet_trainer

    return quiet_trainer(
        tmp_path, epochs, callbacks=[callback], limit_train_batches=4, accelerator="cpu"
    )


def test_ctrl_c_inside_training_stops_at_the_next_batch_like_sigterm(tmp_path, capsys):
    """Before: Lightning caught the KeyboardInterrupt and exited 1 with no word on resuming."""
    from lightning.pytorch.demos.boring_classes import BoringModel

    from rzero_pl.run.evolution import Preempted

    evolution = _evolution(tmp_path)
    trainer = _boring_trainer(tmp_path, _interrupting(signal.SIGINT, at=2))
    with pytest.raises(Preempted) as stopped, evolution._sigterm_stops_the_run():
        evolution._fit(trainer, BoringModel(), None, None, "iter1/solver", 3)
    assert stopped.value.code == 130
    assert trainer.global_step == 2  # the batch in progress finished, no later one ran
    err = capsys.readouterr().err
    assert "Ctrl-C (SIGINT): the run stopped cleanly (iter1/solver, rollout step 0/3)" in err
    assert "Re-run the same command to resume" in err


def test_a_fit_ended_early_by_a_callback_is_one_line_not_a_keyboard_interrupt(tmp_path):
    from lightning.pytorch.callbacks import Callback
    from lightning.pytorch.demos.boring_classes import BoringModel

    from rzero_pl.errors import ConfigError

    class Stop(Callback):
        def on_train_epoch_end(self, trainer, *args) -> None:
            trainer.should_stop = True

    evolution = _evolution(tmp_path)
    trainer = _boring_trainer(tmp_path, Stop())
    with pytest.raises(ConfigError, match=r"iter1/solver stopped at rollout step 1/3: a trainer"):
        evolution._fit(trainer, BoringModel(), None, None, "iter1/solver", 3)


def test_ctrl_c_outside_a_run_is_one_line_with_status_130(monkeypatch, capsys):
    import rzero_pl.cli as cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # as Ctrl-C during parsing or model loading

    monkeypatch.setattr(cli, "RZeroCLI", interrupted)
    with pytest.raises(SystemExit) as stopped:
        cli.main(["fit", "--config", TOY], one_line_errors=True)
    assert stopped.value.code == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["rzero-pl: stopped by Ctrl-C; re-run the same command to resume"]


# ------------------------------------------------------------------ item 14: unclear lines


def test_an_empty_run_dir_is_refused_naming_the_setting(tmp_path, no_model):
    _refused(_fit(tmp_path, "--evolution.run_dir="), "evolution.run_dir is empty")


def test_a_run_dir_below_a_file_is_refused_naming_the_setting(tmp_path, no_model):
    _refused(_fit(tmp_path, f"--evolution.run_dir={TOY}/run"), "evolution.run_dir", "a file")


def test_a_read_only_run_dir_is_refused_naming_the_setting(tmp_path, no_model, monkeypatch):
    real_access = os.access
    parent = tmp_path / "read_only"
    parent.mkdir()

    def access(path, mode, **kwargs):  # root may write anywhere: a read-only mount, simulated
        if os.path.abspath(path) == str(parent) and mode & os.W_OK:
            return False
        return real_access(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)
    args = ["fit", "--config", TOY, f"--evolution.run_dir={parent / 'run'}"]
    _refused(args, "evolution.run_dir", str(parent), "not writable")


def test_a_full_disk_names_the_phase_the_run_folder_and_the_fix(tmp_path, monkeypatch):
    """Before: ``rzero-pl: error: [Errno 28] No space left on device`` and nothing else."""
    from rzero_pl.run.evolution import Evolution

    def full(self, *args, **kwargs):
        os.makedirs(self.run_dir, exist_ok=True)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Evolution, "run", full)
    line = _refused(_fit(tmp_path), "no space left on device", "phase baseline", "resume")
    assert str(tmp_path / "run") in line


def test_os_errors_are_described_with_file_and_fix():
    from rzero_pl.errors import describe_os_error

    err = PermissionError(errno.EACCES, "Permission denied", "/x/state.json")
    assert describe_os_error(err, "phase iter1/solver") == (
        "permission denied (/x/state.json) in phase iter1/solver; fix its permissions or "
        "give another folder, then re-run the same command"
    )
    assert describe_os_error(FileNotFoundError("no such file x")) == "no such file x"


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path, no_model):
    args = _yaml_file(tmp_path, "model:\n  init_args:\n    lr: [1, 2\n  x: 3\n", "typo.yaml")
    _refused(_fit(tmp_path, *args), "typo.yaml, line 4, column 4", "YAML syntax")


def test_a_cli_without_errors_still_parses(tmp_path, no_model):
    code, errors = _cli([*_fit(tmp_path), "--print_config"])
    assert code == 0 and not errors


@pytest.mark.slow  # two processes of the shrunk toy evolution (about a minute)
def test_ctrl_c_in_training_and_in_curriculum_writing_stops_cleanly_and_resumes(tmp_path):
    """Through the real command: SIGINT mid rollout step, then mid ``questions.jsonl``; each
    process exits 130 with the resume line and no traceback, and the next one goes on."""
    import subprocess

    from toy_runs import ROOT, fresh_command, run_env, shrunk_toy_config

    config = shrunk_toy_config(tmp_path)
    state = tmp_path / "run" / "state.json"
    for fault, finished in [
        ("train:iter1/challenger:batch@1:INT", "baseline"),
        ("write:questions.jsonl@1:INT", "iter1/challenger"),
    ]:
        done = subprocess.run(
            fresh_command(config),
            env=run_env(fault),
            capture_output=True,
            text=True,
            timeout=900,
            cwd=ROOT,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 130, f"{fault}: exit {done.returncode}\n{output[-3000:]}"
        assert "Ctrl-C (SIGINT): the run stopped cleanly" in output
        assert "Re-run the same command to resume" in output and "Traceback" not in output
        assert list(json.loads(state.read_text())["phases"])[-1] == finished
