"""Red team, settings: every numeric ``__init__`` argument of the shipped toy configuration.

``test_every_numeric_setting_is_checked_before_loading`` walks every typed int/float argument
of the classes that ``cli_configs/toy.yaml`` builds (and of the classes their arguments are
typed with: sampling, loss, LoRA) and feeds it, through the CLI, 0 (or -1 where 0 has a
documented meaning) and a word: exit status 2, one line naming the key, before any weight is
read. ``test_every_numeric_setting_refuses_a_negative_at_construction`` gives every one of
them -1 directly.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import types
import typing

import pytest
import yaml
from test_red_team import TOY, _refused

# ------------------------------------------------------------------ every numeric setting

# Settings whose 0 has a documented meaning (so only negatives and words are refused).
ZERO_MEANS = {
    "min_kept": "no minimum",
    "warmup_steps": "no warm-up",
    "log_rollouts_every": "never",
    "max_bad_updates": "never stop",
    "weight_decay": "none",
    "kl_coef": "no KL term",
    "temperature": "greedy",
    "clip_low": "no lower clip",
    "clip_high": "no upper clip",
    "weight": "no repetition penalty",
    "dropout": "no dropout",
    "replay": "no replay",
    "memory_max": "no memory term",
    "memory_mean": "no memory term",
    "format_weight": "the binary solver reward",
}
# Settings where any integer is meaningful: seeds, and top_k (<= 0 turns the filter off).
ANY_INTEGER = {"seed", "top_k"}
# Types whose numeric arguments are walked too, where a parent argument is typed with them.
NESTED = (
    "SamplingParams",
    "GRPOLoss",
    "LoraSettings",
    "MajorityVote",
    "Curriculum",
    "BestIteration",
    "Analysis",
    "RepetitionPenalty",
)


def _numeric(annotation: typing.Any) -> bool:
    """int, float, or one of them or None (band, a pair, is checked in BAD_CONFIGS)."""
    if annotation in (int, float):
        return True
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return False
    args = set(typing.get_args(annotation)) - {type(None)}
    return bool(args) and args <= {int, float}


def _class_params(cls: type) -> dict[str, inspect.Parameter]:
    """The __init__ parameters of ``cls``, with those its ``**kwargs`` passes to its bases."""
    params: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass.__module__.split(".")[0] not in ("rzero_pl",):
            continue
        hints = typing.get_type_hints(klass.__init__)
        for name, p in inspect.signature(klass.__init__).parameters.items():
            if name != "self" and p.kind is not p.VAR_KEYWORD and name not in params:
                params[name] = p.replace(annotation=hints.get(name, p.annotation))
        if not any(
            p.kind is p.VAR_KEYWORD for p in inspect.signature(klass.__init__).parameters.values()
        ):
            break
    return params


def _nested_class(annotation: typing.Any) -> type | None:
    for arg in (annotation, *typing.get_args(annotation)):
        if getattr(arg, "__name__", None) in NESTED:
            return arg
    return None


def _walk(node: typing.Any, key: str, out: list[tuple[str, str]]) -> None:
    """(CLI key, parameter name) of every numeric argument below a ``class_path`` node."""
    if isinstance(node, list):
        return  # no numeric settings in lists
    if not isinstance(node, dict):
        return
    if "class_path" in node:
        module, _, name = node["class_path"].rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        init = node.get("init_args") or {}
        for pname, p in _class_params(cls).items():
            where = f"{key}.init_args.{pname}"
            if _numeric(p.annotation):
                out.append((where, pname))
            elif (nested := _nested_class(p.annotation)) is not None and pname != "policy":
                for sub, q in _class_params(nested).items():
                    if _numeric(q.annotation):
                        out.append((f"{where}.{sub}", sub))
            elif isinstance(init.get(pname), dict) and pname != "policy":  # walked apart
                _walk(init[pname], where, out)
    else:
        for k, v in node.items():
            _walk(v, f"{key}.{k}" if key else k, out)


def _numeric_classes() -> list[tuple[type, str]]:
    """(class, parameter) of every numeric argument the walk finds, nested types included."""
    import rzero_pl.run.evolution as evolution

    found = []
    with open(TOY) as f:
        config = yaml.safe_load(f)
    paths = [config["model"], config["data"], config["actor"]["policy"]["model"]]
    paths += [config["evolution"][k] for k in ("challenger", "challenger_data", "evaluation")]
    paths += [config["actor"]["engine"]]
    # the evolution's vote, curriculum, selection and analysis, and the challenger's
    # repetition term, are found as nested classes of the classes below
    classes = [evolution.Evolution]
    for node in paths:
        module, _, name = node["class_path"].rpartition(".")
        classes.append(getattr(importlib.import_module(module), name))
    for cls in classes:
        for pname, p in _class_params(cls).items():
            if _numeric(p.annotation) and pname not in ANY_INTEGER:
                found.append((cls, pname))
            elif (nested := _nested_class(p.annotation)) is not None and nested not in classes:
                classes.append(nested)
    return found


REQUIRED = {
    "BenchmarkEvaluation": {"benchmarks": ["toy"]},
    "Evaluation": {"benchmarks": ["toy"]},
    "Evolution": {"challenger": None, "challenger_data": None},
}


def test_every_numeric_setting_refuses_a_negative_at_construction():
    from rzero_pl.errors import ConfigError

    tried = 0
    for cls, param in _numeric_classes():
        kwargs = {**REQUIRED.get(cls.__name__, {}), param: -1}
        with pytest.raises((ConfigError, ValueError)) as refused:
            cls(**kwargs)
        assert param in str(refused.value) and "\n" not in str(refused.value), (cls, param)
        tried += 1
    assert tried >= 40


def _numeric_keys() -> list[tuple[str, str]]:
    with open(TOY) as f:
        config = yaml.safe_load(f)
    out: list[tuple[str, str]] = []
    for section in ("model", "data"):
        _walk(config[section], section, out)
    _walk(config["actor"]["policy"]["model"], "actor.policy.init_args.model", out)
    out.append(("actor.policy.init_args.lora.r", "r"))
    out.append(("actor.policy.init_args.lora.alpha", "alpha"))
    for name in ("iterations", "challenger_steps", "solver_steps"):
        out.append((f"evolution.{name}", name))
    for sub in ("challenger", "challenger_data", "evaluation", "vote", "curriculum"):
        _walk(config["evolution"][sub], f"evolution.{sub}", out)
    return [(k, p) for k, p in out if p not in ANY_INTEGER]


def _bad_values(param: str) -> list[str]:
    """Through the CLI: 0 (or -1 where 0 has a meaning) and a word; the negatives of the
    settings whose 0 is refused are fed to the classes directly (each CLI call costs about a
    second of jsonargparse)."""
    return ["-1" if param in ZERO_MEANS else "0", "x"]


def _vote_cases() -> list[tuple[str, str, str]]:
    """(YAML for evolution.vote with one bad argument, value, parameter name)."""
    from rzero_pl.rewards import MajorityVote

    cases = []
    for pname, p in _class_params(MajorityVote).items():
        if not _numeric(p.annotation) or pname in ANY_INTEGER:
            continue
        for value in _bad_values(pname):
            bad = {pname: value if value == "x" else int(value)}
            cases.append((yaml.safe_dump({"evolution": {"vote": bad}}), value, pname))
    return cases


@pytest.mark.slow  # about 130 CLI calls of a second or two each
def test_every_numeric_setting_is_checked_before_loading(tmp_path, monkeypatch):
    """Each bad value: exit 2, one line naming the key, no weight read, nothing written."""
    from rzero_pl.models.policy import Policy

    @functools.wraps(Policy.__init__)  # the same signature: the parser reads it
    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded before the configuration was checked")

    monkeypatch.setattr(Policy, "__init__", no_loading)
    run_dir = tmp_path / "run"
    base = ["fit", "--config", TOY, f"--evolution.run_dir={run_dir}"]
    keys = _numeric_keys()
    assert len(keys) >= 40, keys  # the walk found the settings
    tried = 0
    for key, param in keys:
        for value in _bad_values(param):
            _refused([*base, f"--{key}={value}"], param)
            tried += 1
    for text, _value, param in _vote_cases():
        path = tmp_path / "vote.yaml"
        path.write_text(text)
        _refused([*base, "--config", str(path)], param)
        tried += 1
    assert tried >= 100
    assert not run_dir.exists()
