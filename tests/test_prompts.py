"""Prompts as settings: each text read from a file, refused in one line when it cannot serve."""

from __future__ import annotations

import contextlib
import io
import os

import pytest
from builders import RecordingEngine

from rzero_pl.cli import main
from rzero_pl.prompts import RolePrompt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOY_SOLVER = os.path.join(ROOT, "cli_configs", "toy_solver.yaml")
PROMPT = "--model.init_args.prompt.init_args"


def test_texts_are_read_from_files(tmp_path):
    (tmp_path / "system.txt").write_text("Be brief {and} exact.\n")  # braces stay as written
    (tmp_path / "user.txt").write_text("Q: {problem}\n\n")
    prompt = RolePrompt(
        system_file=str(tmp_path / "system.txt"),
        user_file=str(tmp_path / "user.txt"),
        use_chat_template=False,
    )
    assert prompt.system == "Be brief {and} exact."  # one final newline dropped
    assert prompt.user == "Q: {problem}\n"
    assert (
        prompt.render(None, "1+1?") == "system: Be brief {and} exact.\nuser: Q: 1+1?\n\nassistant: "
    )
    prompt.check_problem_slot("SolverGRPO.prompt")  # has the slot: no error


def test_a_file_that_cannot_serve_is_one_line_naming_key_and_file(tmp_path):
    missing = tmp_path / "missing.txt"
    with pytest.raises(ValueError, match=rf"^RolePrompt.system_file: cannot read {missing} "):
        RolePrompt(system_file=str(missing))
    with pytest.raises(ValueError, match=rf"^RolePrompt.user_file: cannot read {tmp_path} "):
        RolePrompt(user_file=str(tmp_path))  # a folder
    binary = tmp_path / "weights.bin"
    binary.write_bytes(b"\x00\xff\xfe" * 10)
    with pytest.raises(ValueError, match=rf"^RolePrompt.user_file: {binary} is not UTF-8 text"):
        RolePrompt(user_file=str(binary))
    huge = tmp_path / "huge.txt"
    huge.write_text("x" * (65_536 * 4 + 1))
    with pytest.raises(ValueError, match=rf"^RolePrompt.system_file: {huge} holds over"):
        RolePrompt(system_file=str(huge))


def test_a_user_text_without_the_problem_slot_is_refused(tmp_path):
    (tmp_path / "user.txt").write_text("Solve the problem.")
    prompt = RolePrompt(user_file=str(tmp_path / "user.txt"))
    with pytest.raises(ValueError) as refused:
        prompt.check_problem_slot("SolverGRPO.prompt")
    line = str(refused.value)
    assert line.startswith("SolverGRPO.prompt: RolePrompt.user_file (")
    assert str(tmp_path / "user.txt") in line and "{problem}" in line and "\n" not in line
    with pytest.raises(ValueError, match=r"^Evaluation.prompt: RolePrompt.user has no"):
        RolePrompt(user="Solve.").check_problem_slot("Evaluation.prompt")


def test_a_fallback_with_another_field_is_refused():
    with pytest.raises(ValueError, match=r"^RolePrompt.fallback: .*\{question\}"):
        RolePrompt(fallback="{system} {question}")
    RolePrompt(fallback="{user}\n")  # the toy configs' fallback


def _cli(args: list[str]) -> tuple[int, list[str]]:
    err = io.StringIO()
    code = 0
    with contextlib.redirect_stderr(err):
        try:
            main(args, one_line_errors=True)
        except SystemExit as stop:
            code = stop.code
    return code, [x for x in err.getvalue().splitlines() if x.startswith("rzero-pl: error:")]


@pytest.mark.parametrize("problem", ["missing file", "no slot"])
def test_fit_refuses_a_bad_prompt_file_in_one_line_before_any_model_loads(
    problem, tmp_path, monkeypatch
):
    from rzero_pl.toy import ToyModel

    def load(*args, **kwargs):
        raise AssertionError("the model loaded before the prompt was checked")

    monkeypatch.setattr(ToyModel, "load", load)
    path = tmp_path / "user.txt"
    if problem == "no slot":
        path.write_text("Solve it.")
    args = ["fit", "--config", TOY_SOLVER, f"{PROMPT}.user_file={path}"]
    args.append(f"--trainer.default_root_dir={tmp_path}")
    code, errors = _cli(args)
    assert code == 2 and len(errors) == 1, errors
    assert str(path) in errors[0]
    key = "RolePrompt.user_file" if problem == "missing file" else "SolverGRPO.prompt"
    assert key in errors[0]


def test_math_prompt_wraps_only_the_math_benchmarks(tmp_path):
    import json

    from rzero_pl.benchmarks.evaluation import Evaluation, evaluate
    from rzero_pl.engines.base import SamplingParams

    rows = {
        "gsm8k": {"problem": "MATH Q", "answer": "1"},
        "mmlu_pro": {"problem": "CHOICE Q", "answer": "A", "options": ["x", "y"]},
    }
    for name, row in rows.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "test.jsonl").write_text(json.dumps(row) + "\n")
    plain = dict(use_chat_template=False, fallback="[{system}] {user}")
    math = RolePrompt(system="MATH SYSTEM", user="{problem}", **plain)
    engine = RecordingEngine("\\boxed{A}")
    greedy = SamplingParams(temperature=0.0, max_new_tokens=4)
    evaluate(engine, None, list(rows), sampling=greedy, root=str(tmp_path), math_prompt=math)
    assert engine.prompts[0] == "[MATH SYSTEM] MATH Q"
    assert engine.prompts[1].startswith("system: \nuser: CHOICE Q")  # its own, unchanged
    with pytest.raises(ValueError, match=r"^Evaluation.math_prompt: prompt already wraps"):
        Evaluation(["gsm8k"], prompt=math, math_prompt=math)
    with pytest.raises(ValueError, match=r"^Evaluation.math_prompt: RolePrompt.user has no"):
        Evaluation(["gsm8k"], math_prompt=RolePrompt(user="Solve."))


def test_general_prompts_take_only_general_benchmarks_with_a_problem_slot():
    from rzero_pl.benchmarks.evaluation import Evaluation
    from rzero_pl.benchmarks.general_prompt import BenchmarkPrompt

    mine = BenchmarkPrompt(user="{problem}\nAnswer with a letter.")
    Evaluation(["mmlu_pro"], general_prompts={"mmlu_pro": mine, "bbeh": mine})  # bbeh unscored
    refusals = {
        "gpqa": r"'gpqa' is not a general benchmark; use one of \['bbeh', 'mmlu_pro', 'supergpqa'",
        "gsm8k": r"'gsm8k' is not a general benchmark; .*the math benchmarks take math_prompt",
    }
    for name, message in refusals.items():
        with pytest.raises(ValueError, match=rf"^Evaluation.general_prompts: {message}"):
            Evaluation(["mmlu_pro"], general_prompts={name: mine})
    with pytest.raises(ValueError, match=r"^Evaluation.general_prompts.bbeh: BenchmarkPrompt.user"):
        Evaluation(["bbeh"], general_prompts={"bbeh": BenchmarkPrompt(user="Answer.")})
    with pytest.raises(ValueError, match=r"^Evaluation.general_prompts: prompt already wraps"):
        Evaluation(["bbeh"], prompt=RolePrompt(), general_prompts={"bbeh": mine})


def test_a_benchmark_prompt_lays_out_the_options_its_own_way():
    from rzero_pl.benchmarks import BenchmarkRow
    from rzero_pl.benchmarks.general_prompt import BenchmarkPrompt, OptionLayout
    from rzero_pl.benchmarks.registry import with_options

    row = BenchmarkRow("m0", with_options("Colour? ", ["red", "blue"]), "A", ["red", "blue"])
    assert BenchmarkPrompt().question(row) == row.problem  # the default: rzero-pl's layout
    layout = OptionLayout(before=" | ", line="[{letter}] {option}", separator=", ", letters="wxyz")
    ours = BenchmarkPrompt(user="{problem}?", options=layout, fallback="{user}", fallback_user="P")
    assert ours.question(row) == "Colour? | [w] red, [x] blue"
    assert ours.render(None, "Q") == "P" and BenchmarkPrompt(fallback="{user}").render(None, "Q")
    with pytest.raises(ValueError, match=r"^OptionLayout.line: '{n}\. {option}' is not a format"):
        OptionLayout(line="{n}. {option}")
    with pytest.raises(ValueError, match=r"^OptionLayout.letters: empty"):
        OptionLayout(letters="")


def _actor_of(source):
    """An actor as far as a role's ``bind`` reads it: the policy and its model source."""
    from types import SimpleNamespace

    policy = SimpleNamespace(source=source, enable_reference=lambda reference: None)
    return SimpleNamespace(policy=policy)


def test_a_role_without_a_prompt_takes_its_model_sources():
    """prompt: null is the model source's prompt for the role: the toy model's own (what it was
    pretrained on), rzero-pl's for a Hugging Face model; a configured prompt wins."""
    from rzero_pl.grpo.challenger import ChallengerGRPO
    from rzero_pl.grpo.solver import SolverGRPO
    from rzero_pl.models.sources import PretrainedModel
    from rzero_pl.prompts import CHALLENGER_SYSTEM, SOLVER_SYSTEM
    from rzero_pl.toy import TOY_CHALLENGER, TOY_SOLVER, ToyModel

    toy, hub = _actor_of(ToyModel()), _actor_of(PretrainedModel("some/model"))
    assert (SolverGRPO(toy).prompt, ChallengerGRPO(toy).prompt) == (TOY_SOLVER, TOY_CHALLENGER)
    solver, challenger = SolverGRPO(hub).prompt, ChallengerGRPO(hub).prompt
    assert (solver.system, solver.user, solver.use_chat_template) == (
        SOLVER_SYSTEM,
        "{problem}",
        True,
    )
    assert (challenger.system, challenger.use_chat_template) == (CHALLENGER_SYSTEM, True)
    own = RolePrompt(system="", user="Q: {problem}")
    assert SolverGRPO(toy, prompt=own).prompt is own
    unbound = SolverGRPO()
    assert unbound.prompt is None  # taken when the actor is bound, never guessed before
    unbound.bind(toy)
    assert unbound.reading().prompt is TOY_SOLVER


def test_default_prompt_names_the_roles():
    from rzero_pl.prompts import CHALLENGER_USER, default_prompt

    assert default_prompt("solver").user == "{problem}"
    assert default_prompt("challenger").user == CHALLENGER_USER
    with pytest.raises(ValueError, match="unknown role 'judge'"):
        default_prompt("judge")
