"""Every YAML under cli_configs/ parses; the CPU ones also instantiate on a tiny model."""

from __future__ import annotations

import glob
import os
import re

import pytest
import yaml

from rzero_pl.cli import RZeroCLI
from rzero_pl.engines.base import SamplingParams
from rzero_pl.label_filters import TextFilters
from rzero_pl.released import RELEASED_COMMIT

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "cli_configs", "*.yaml")))
MODEL = "--actor.policy.init_args.model"


class ParseOnlyCLI(RZeroCLI):
    """Parse and validate a config without building anything."""

    def instantiate_classes(self) -> None:
        self.config_init = None


def test_there_are_configs():
    names = {os.path.basename(c) for c in CONFIGS}
    assert {"toy_solver.yaml"} <= names
    assert set(REAL) <= names


REAL = [
    "octothinker.yaml",
    "qwen3_4b_qlora.yaml",
    "qwen3_4b_fsdp.yaml",
    "qwen3_8b_fsdp.yaml",
    "octothinker_8b_fsdp.yaml",
    "qwen3_8b_fsdp_2x8.yaml",
    "qwen3_4b_released.yaml",
]


@pytest.mark.parametrize("name", REAL)
def test_real_config_batches_split_over_its_ranks(name):
    """Every rank must hold whole groups and equal shares of each update (rzero_pl.scale.distributed)."""
    cfg = ParseOnlyCLI(args=["--config", os.path.join(ROOT, "cli_configs", name)], run=False).config
    world = int(cfg.trainer.devices) * int(cfg.trainer.num_nodes)
    strategy = cfg.trainer.strategy
    if world > 1:
        assert strategy.init_args.data_parallel_size == world
        assert strategy.init_args.tensor_parallel_size == 1
    evolution = cfg.evolution.init_args
    solver, challenger = cfg.model.init_args, evolution.challenger.init_args
    for module, items in (
        (solver, cfg.data.init_args.questions_per_step),
        (challenger, evolution.challenger_data.init_args.slots_per_step),
    ):
        assert module.minibatch_size % (module.micro_batch_size * world) == 0
        assert items % world == 0
    assert cfg.actor.policy.init_args.model.init_args.name_or_path.count("/") == 1


def header_claims(path: str) -> dict:
    """The reward form, m and band a config's header comment states (its "Reward and votes:"
    sentence: ``reward_form X``, ``reward votes m = M``, ``labels m = M, band [a, b]``)."""
    lines = []
    for line in open(path).read().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# "))
    text = " ".join(lines)
    assert "Reward and votes:" in text, f"{path}: the header states no reward form and votes"
    text = text[text.index("Reward and votes:") :]
    form = re.search(r"reward_form (\w+)", text)
    reward = re.search(r"reward votes m = (\d+)", text)
    labels = re.search(r"labels m = (\d+), band \[([\d.]+), ([\d.]+)\]", text)
    assert form and reward and labels, f"{path}: header sentence incomplete: {text[:200]}"
    return {
        "reward_form": form.group(1),
        "reward_votes": int(reward.group(1)),
        "label_votes": int(labels.group(1)),
        "band": (float(labels.group(2)), float(labels.group(3))),
    }


REAL_GPU = [c for c in CONFIGS if "fsdp" in c or "qlora" in c]
REAL_GPU += [c for c in CONFIGS if c.endswith("_released.yaml")]  # FSDP2 too


@pytest.mark.parametrize("path", REAL_GPU, ids=os.path.basename)
def test_real_config_header_states_its_reward_form_and_votes(path):
    cfg = ParseOnlyCLI(args=["--config", path], run=False).config
    evolution = cfg.evolution.init_args
    vote = evolution.vote.init_args
    labels = (evolution.label_vote or evolution.vote).init_args
    parsed = {
        "reward_form": evolution.challenger.init_args.reward_form,
        "reward_votes": vote.samples,
        "label_votes": labels.samples,
        "band": tuple(float(b) for b in labels.band),
    }
    assert header_claims(path) == parsed


def test_header_claims_are_read_from_the_header(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text(
        "# Reward and votes: reward_form gated (why); reward votes\n# m = 10; labels m = 9, band"
        " [0.3, 0.8] (the release).\nevolution: {} # labels m = 1, band [0, 1]\n"
    )
    claims = header_claims(str(path))
    assert claims == {
        "reward_form": "gated",
        "reward_votes": 10,
        "label_votes": 9,
        "band": (0.3, 0.8),
    }
    path.write_text("# no sentence\nevolution: {}\n")
    with pytest.raises(AssertionError, match="states no reward form"):
        header_claims(str(path))


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_config_parses(path):
    cli = ParseOnlyCLI(args=["--config", path], run=False)
    assert cli.config["model"]["class_path"].startswith("rzero_pl.")


@pytest.mark.parametrize(
    "path", [c for c in CONFIGS if "toy" in c or "cpu" in c], ids=os.path.basename
)
def test_cpu_config_instantiates_on_a_tiny_model(path, tiny_model_dir, tmp_path):
    args = [
        "--config",
        path,
        f"{MODEL}.class_path=rzero_pl.models.sources.PretrainedModel",
        f"{MODEL}.init_args.name_or_path={tiny_model_dir}",
        f"--trainer.default_root_dir={tmp_path}",
    ]
    cli = RZeroCLI(args=args, run=False)
    assert cli.model.policy is not None
    # What Lightning hands a module's save_hyperparameters: the same as its own dump, which
    # validates the configuration again first (RZeroCLI skips that second check).
    checked = cli.parser.dump(cli.config, skip_link_targets=False, skip_none=False, format="yaml")
    assert cli.config_dump == yaml.safe_load(checked)


def test_unknown_key_names_the_key(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "model:\n  class_path: rzero_pl.grpo.solver.SolverGRPO\n  init_args:\n    group_sise: 4\n"
    )
    with pytest.raises(SystemExit):
        ParseOnlyCLI(args=["--config", str(path)], run=False)
    assert "group_sise" in capsys.readouterr().err


def test_empty_config_file_names_the_file(tmp_path, capsys):
    path = tmp_path / "empty.yaml"
    path.write_text("\n")
    with pytest.raises(SystemExit):
        ParseOnlyCLI(args=["--config", str(path)], run=False)
    assert (
        f"--config {path}: the file is empty" in capsys.readouterr().err
    )  # not "Unexpected config:"


def test_released_preset_sets_the_released_choices():
    """cli_configs/qwen3_4b_released.yaml: the settings its header promises, parsed."""
    path = os.path.join(ROOT, "cli_configs", "qwen3_4b_released.yaml")
    cfg = ParseOnlyCLI(args=["--config", path], run=False).config
    evolution = cfg.evolution.init_args
    solver, challenger = cfg.model.init_args, evolution.challenger.init_args
    evaluation = evolution.evaluation.init_args
    prompts = {
        "solver": solver.prompt,
        "challenger": challenger.prompt,
        "evaluation": evaluation.math_prompt,
    }
    for name, prompt in prompts.items():
        assert prompt.class_path == "rzero_pl.released.ReleasedPrompt"
        assert (prompt.init_args.prompt, prompt.init_args.clone_dir) == (name, "../R-Zero")
    assert challenger.reward_form == "reference"
    assert (solver.format_weight, solver.loss.init_args.aggregation) == (0.1, "seq_mean_token_mean")
    assert (
        evolution.vote.init_args.missing_cluster and evolution.label_vote.init_args.missing_cluster
    )
    filters = evolution.curriculum.init_args.text_filters
    assert (filters.proof, filters.text_label) == ("release", "release")
    math = ["math500", "gsm8k", "amc23", "minerva_math", "olympiadbench", "aime2024", "aime2025"]
    assert evaluation.answer_rules == {name: "first_box" for name in math}
    assert set(math) < set(evaluation.benchmarks) and evaluation.reference_compat
    text = open(path).read()
    assert "# reward_form: gated" in text and "git -C ../R-Zero checkout " + RELEASED_COMMIT in text


TOY_SOLVER_PROMPT = ("", "Solve: {problem}", False, "{user}\n")
TOY_CHALLENGER_PROMPT = ("", "Write a question.", False, "{user}\n")


def _prompt(prompt) -> tuple:
    return (prompt.system, prompt.user, prompt.use_chat_template, prompt.fallback)


@pytest.mark.parametrize("name", ["toy.yaml", "toy_plus.yaml"])
def test_toy_config_samples_prompts_and_grades_as_it_always_did(name, tmp_path):
    """The settings behind toy.yaml's 32.2 -> 39.0 -> 38.4 %, as the run binds them: the toy
    model's own prompts, each role's budget once (the votes', the evaluation's and the
    curriculum's taken from their role), one grading timeout, the default text filters."""
    path = os.path.join(ROOT, "cli_configs", name)
    cli = RZeroCLI(args=["--config", path, f"--evolution.run_dir={tmp_path}/run"], run=False)
    solver, evolution = cli.model, cli.config_init["evolution"]
    bound = evolution.bind(cli.actor, solver)
    challenger, vote, curriculum = evolution.challenger, bound.vote, bound.curriculum
    assert bound.labels is vote
    assert _prompt(solver.prompt) == _prompt(vote.reading.prompt) == TOY_SOLVER_PROMPT
    assert _prompt(challenger.prompt) == _prompt(curriculum.writing.prompt)
    assert _prompt(challenger.prompt) == TOY_CHALLENGER_PROMPT
    assert solver.prompt.render(cli.actor.tokenizer, problem="2+3") == "Solve: 2+3\n"
    assert solver.sampling == SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=96)
    assert challenger.sampling == SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=64)
    assert vote.sampling == SamplingParams(n=10, top_p=1.0, top_k=40, max_new_tokens=96)
    assert curriculum.challenger_sampling == SamplingParams(top_p=0.95, max_new_tokens=64)
    assert bound.evaluation.sampling == SamplingParams(temperature=0.0, max_new_tokens=96)
    assert (vote.samples, vote.band, vote.missing_cluster) == (10, (0.3, 0.7), False)
    assert solver.answer_timeout == vote.timeout == bound.evaluation.timeout == 5.0
    assert curriculum.text_filters == TextFilters(proof="words", text_label="latex_text")
    assert curriculum.label_filters == [] and vote.reading.answer_rule == "boxed"
    # Every field: SamplingParams' own defaults are part of what these compare.
    assert SamplingParams() == SamplingParams(1, 1.0, 1.0, -1, 256, (), None, ())


@pytest.mark.parametrize(
    ("arg", "old", "new"),
    [
        ("--evolution.vote.votes=4", "evolution.vote.votes", "evolution.vote.samples"),
        (
            "--evolution.label_vote.init_args.votes=4",
            "evolution.label_vote.votes",
            "evolution.label_vote.samples",
        ),
        (
            "--evolution.curriculum={filters: false}",
            "evolution.curriculum.filters",
            "evolution.curriculum.text_filters",
        ),
    ],
)
def test_an_old_key_on_the_command_line_names_the_new_one(arg, old, new, capsys):
    path = os.path.join(ROOT, "cli_configs", "toy.yaml")
    with pytest.raises(SystemExit) as stop:
        ParseOnlyCLI(args=["--config", path, arg], run=False)
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"rzero-pl: error: {old} is an old key; write {new}")


def test_an_old_key_in_a_config_file_names_the_new_one(tmp_path, capsys):
    text = open(os.path.join(ROOT, "cli_configs", "toy.yaml")).read()
    path = tmp_path / "old.yaml"
    path.write_text(text.replace("    samples: 10\n", "    votes: 10\n"))
    with pytest.raises(SystemExit):
        ParseOnlyCLI(args=["--config", str(path)], run=False)
    assert capsys.readouterr().err.strip() == (
        "rzero-pl: error: evolution.vote.votes is an old key; write evolution.vote.samples (m) "
        "instead"
    )


def test_a_run_saved_before_the_renames_is_read_with_todays_keys():
    """analyze and report rebuild a run from its saved config.yaml: one written before
    vote.votes became vote.samples and curriculum.filters became text_filters still reads."""
    import copy

    from rzero_pl.config_yaml import dotted_keys, renamed_key_problem, upgraded

    with open(os.path.join(ROOT, "cli_configs", "toy.yaml")) as f:
        today = yaml.safe_load(f)
    old = copy.deepcopy(today)
    old["evolution"]["vote"]["votes"] = old["evolution"]["vote"].pop("samples")
    old["evolution"]["curriculum"]["filters"] = True
    assert renamed_key_problem(dotted_keys(old)) is not None  # as a user's file: refused
    assert upgraded(old) == today
    old["evolution"]["curriculum"]["filters"] = False  # no text filters then, none now
    assert upgraded(old)["evolution"]["curriculum"]["text_filters"] is None
    assert old["evolution"]["curriculum"]["filters"] is False  # the saved settings untouched


def option_block(path: str) -> list[str]:
    """The overrides a config's trailing "Self-play options" comment offers (``#   --...``
    lines, read as a shell would split them, their own comments dropped)."""
    import shlex

    args = []
    for line in open(path).read().splitlines():
        if line.startswith("#   --"):
            args += [a for a in shlex.split(line[1:], comments=True)]
    return args


@pytest.mark.parametrize("path", [c for c in CONFIGS if option_block(c)], ids=os.path.basename)
def test_every_commented_option_parses(path):
    """The option block a config offers is one a user can paste: every override parses
    (all at once: one parse per config)."""
    options = option_block(path)
    assert any(o.startswith("--evolution.selection.signal=") for o in options)
    ParseOnlyCLI(args=["--config", path, *options], run=False)
