"""The model card (README.md with YAML metadata) of an exported role, built from the run's files.

The metadata says the base model, the role, the iteration and how it was chosen, the run's
iterations, and every benchmark's accuracy per evaluated iteration with its 95 % Wilson
interval (from ``eval/baseline/eval.json`` and ``iterK/eval/eval.json``); the body shows the
same scores as a table, the prompt the role was trained with, how to load the folder, and the
run's ``config.yaml``.
"""

from __future__ import annotations

import os
import re
from typing import Any

import yaml

from rzero_pl import __version__
from rzero_pl.export.run_files import Choice, Run, model_spec, section
from rzero_pl.ground.io import read_json
from rzero_pl.released import RELEASED_REPOSITORY, SOURCES, ReleasedPrompt

KINDS = {
    "base": "the base model itself, untrained",
    "full": "full fine-tuned weights",
    "merged": "a LoRA adapter merged into the base model",
    "adapter": "a LoRA adapter alone: load it on the base model with PEFT",
}
HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")
RELEASED_PROMPT = f"{ReleasedPrompt.__module__}.{ReleasedPrompt.__name__}"


def eval_scores(run_dir: str) -> dict[int, dict[str, dict[str, Any]]]:
    """``{iteration: {benchmark: {accuracy, ci95, problems}}}`` of every evaluation written
    (iteration 0: the base)."""
    folders = {0: os.path.join(run_dir, "eval", "baseline")}
    for name in os.listdir(run_dir):
        if re.fullmatch(r"iter\d+", name):
            folders[int(name[4:])] = os.path.join(run_dir, name, "eval")
    scores = {}
    for it, folder in sorted(folders.items()):
        summary = read_json(os.path.join(folder, "eval.json"))
        if summary is None:
            continue
        scores[it] = {
            name: {
                "accuracy": row["accuracy"],
                "ci95": [float(x) for x in row["ci95"]],
                "problems": row.get("n_problems"),
            }
            for name, row in sorted(summary["benchmarks"].items())
        }
    return scores


def base_model_id(run: Run) -> str | None:
    """The base's Hub id when the run loaded it from the Hub (the card's ``base_model``)."""
    spec = model_spec(run)
    name = (spec.get("init_args") or {}).get("name_or_path")
    if isinstance(name, str) and HUB_ID.fullmatch(name) and not os.path.exists(name):
        return name
    return None


def metadata(run: Run, choice: Choice, kind: str, generation: dict[str, Any]) -> dict[str, Any]:
    """The card's YAML metadata."""
    scores = eval_scores(run.folder)
    data: dict[str, Any] = {
        "library_name": "peft" if kind == "adapter" else "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["rzero-pl", "r-zero", "grpo", "self-play"],
    }
    if base_model_id(run):
        data["base_model"] = base_model_id(run)
    data["rzero_pl"] = {
        "version": __version__,
        "role": choice.role,
        "iteration": choice.iteration,
        "chosen_by": choice.chosen_by,
        "weights": kind,
        "iterations_finished": run.finished("solver"),
        "iterations_planned": section(run.config, "evolution", "iterations"),
        "base": model_spec(run),
        "config_fingerprint": run.state.get("fingerprint"),
        "generation": generation,
        "scores": {
            bench: [_rounded(it, row[bench]) for it, row in scores.items() if bench in row]
            for bench in sorted({b for row in scores.values() for b in row})
        },
    }
    return data


def _rounded(iteration: int, row: dict[str, Any]) -> dict[str, Any]:
    """A score for the metadata: the interval to 4 decimals (eval.json keeps every digit)."""
    return {"iteration": iteration, **row, "ci95": [round(x, 4) for x in row["ci95"]]}


def score_table(run_dir: str, exported: int) -> str:
    """Markdown: one row per evaluated iteration, one column per benchmark."""
    scores = eval_scores(run_dir)
    if not scores:
        return "The run evaluated no benchmark.\n"
    names = sorted({b for row in scores.values() for b in row})
    lines = ["| iteration | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for it, row in scores.items():
        label = "0 (base)" if it == 0 else str(it)
        label = f"**{label}, this model**" if it == exported else label
        cells = [_cell(row.get(name)) for name in names]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "n/a"
    low, high = row["ci95"]
    return (
        f"{100 * row['accuracy']:.1f} % [{100 * low:.1f}, {100 * high:.1f}] (n={row['problems']})"
    )


def sampling_text(generation: dict[str, Any]) -> str:
    """``greedy, max_new_tokens 96`` or ``temperature 1.0, top_p 0.95, max_new_tokens 64``."""
    words = [] if generation.get("do_sample") else ["greedy"]
    words += [f"{k} {v}" for k, v in generation.items() if k != "do_sample" and v is not None]
    return ", ".join(words)


def prompt_text(run: Run, role: str) -> str:
    """How the run prompted ``role`` (its ``RolePrompt``), for the card: the wording, or where
    it was read from (a prompt file, or the released repository's clone, whose wording the
    card does not copy: that repository has no licence file)."""
    keys = ("model", "prompt") if role == "solver" else ("evolution", "challenger", "prompt")
    prompt = section(run.config, *keys) or {}
    lines = []
    if prompt.get("class_path") == RELEASED_PROMPT:
        clone, name = prompt.get("clone_dir"), prompt.get("prompt")
        file = SOURCES[name].file if name in SOURCES else "?"
        lines.append(
            f"- released prompt {name!r} read from `{clone}/{file}` at commit "
            f"`{prompt.get('commit')}` ({RELEASED_REPOSITORY}; its wording is not copied here, "
            "as that repository has no licence file)"
        )
    for text in ("system", "user"):
        path = prompt.get(f"{text}_file")
        if path:
            lines.append(f"- `{text}`: read from the file `{path}`")
        elif prompt.get(text) is not None:
            lines.append(f"- `{text}`: {prompt[text]!r}")
    fields = {k: prompt.get(k) for k in ("use_chat_template", "fallback")}
    lines += [f"- `{k}`: {v!r}" for k, v in fields.items() if v is not None]
    return "\n".join(lines)


def model_card(run: Run, choice: Choice, kind: str, generation: dict[str, Any]) -> str:
    """README.md of the exported folder."""
    meta = yaml.safe_dump(metadata(run, choice, kind, generation), sort_keys=False)
    what = "the base model" if choice.iteration == 0 else f"iteration {choice.iteration}"
    base = model_spec(run)
    model_class = "AutoPeftModelForCausalLM" if kind == "adapter" else "AutoModelForCausalLM"
    load = (
        f"from {'peft' if kind == 'adapter' else 'transformers'} import {model_class}\n"
        "from transformers import AutoTokenizer\n"
        f"model = {model_class}.from_pretrained(FOLDER)\n"
        "tokenizer = AutoTokenizer.from_pretrained(FOLDER)\n"
        "inputs = tokenizer(PROMPT, return_tensors='pt')  # PROMPT: the run's prompt, below\n"
        "answer = model.generate(**inputs)  # generation_config.json: the run's sampling"
    )
    return f"""---
{meta}---

# R-Zero {choice.role}: {what} of {os.path.basename(os.path.normpath(run.folder))}

The {choice.role} of {what} of an [R-Zero](https://arxiv.org/abs/2508.05004) run trained with
rzero-pl {__version__} from `{base["class_path"]}` ({KINDS[kind]}), chosen by
{choice.chosen_by}. R-Zero trains one base model in two roles, a challenger that writes
questions and a solver that answers them, with no labelled data.

## Benchmarks

The run's solver after each iteration: accuracy with its 95 % Wilson interval.

{score_table(run.folder, choice.iteration if choice.role == "solver" else -1)}
## Use

```python
{load}
```

`generation_config.json` holds the sampling the run used for this role ({sampling_text(generation)}).
The run prompted it with:

{prompt_text(run, choice.role)}

## Training configuration

The run's `config.yaml` (also in this folder as `rzero_pl_config.yaml`):

```yaml
{run.config_text.strip()}
```
"""
