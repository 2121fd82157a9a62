"""Write a role's weights as a standalone Hugging Face model folder.

Full fine-tuning saved a whole model folder: its files are copied as they are. A LoRA adapter
is merged into the run's base model (``merge_and_unload``; a QLoRA run's base is loaded
unquantised, so the merged weights are in the base's own dtype), or with ``adapter`` copied
alone with its ``adapter_config.json`` pointing at the base. The generation config holds the
settings the role was used with in the run (the solver: the evaluation's, so that the card's
scores are reproduced; the challenger: the curriculum's).
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from rzero_pl.export.run_files import Choice, Run, model_source, section
from rzero_pl.ground.io import read_json, write_json_atomic

ADAPTER_CONFIG = "adapter_config.json"


def is_adapter(folder: str | None) -> bool:
    return folder is not None and os.path.isfile(os.path.join(folder, ADAPTER_CONFIG))


def weights_kind(choice: Choice, adapter: bool) -> str:
    """``base``, ``full``, ``merged`` (LoRA merged into the base) or ``adapter``."""
    if choice.weights is None:
        if adapter:
            raise ValueError(
                f"--adapter: the chosen {choice.role} is the base model (iteration 0), which "
                "has no adapter; leave out --adapter to export the base"
            )
        return "base"
    if not is_adapter(choice.weights):
        if adapter:
            raise ValueError(
                f"--adapter: {choice.weights} holds full weights (the run trained without "
                "LoRA); leave out --adapter"
            )
        return "full"
    return "adapter" if adapter else "merged"


def write_weights(run: Run, choice: Choice, kind: str, out: str) -> str | None:
    """Write the model (or adapter) and tokenizer into ``out``; return the base's hub id or
    path that an adapter needs (None for a standalone model)."""
    if kind == "full":
        _copy_files(choice.weights, out)
        return None
    source = model_source(run)
    if kind == "adapter":
        _copy_files(choice.weights, out)
        config = read_json(os.path.join(out, ADAPTER_CONFIG))
        config["base_model_name_or_path"] = source.path  # the run's base, not a temp folder
        write_json_atomic(os.path.join(out, ADAPTER_CONFIG), config)
        return source.path
    model, tokenizer = source.load()
    if kind == "merged":
        from peft import PeftModel
        from transformers import AutoTokenizer

        model = PeftModel.from_pretrained(model, choice.weights).merge_and_unload()
        tokenizer = AutoTokenizer.from_pretrained(choice.weights)  # as the run saved it
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return None


def _copy_files(folder: str, out: str) -> None:
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            shutil.copyfile(path, os.path.join(out, name))


def generation_settings(config: dict[str, Any], role: str) -> dict[str, Any]:
    """The sampling the run used for ``role``, as ``GenerationConfig`` fields."""
    if role == "solver":
        evaluation = section(config, "evolution", "evaluation") or section(config, "evaluation")
        own = section(config, "model", "sampling") or {}
        sampling = evaluation or own
    else:
        sampling = section(config, "evolution", "curriculum", "challenger_sampling") or {}
        own = section(config, "evolution", "challenger", "sampling") or {}
    if sampling.get("max_new_tokens") is None:  # left out: the role's own budget
        sampling = {**sampling, "max_new_tokens": own.get("max_new_tokens")}
    temperature = float(sampling.get("temperature", 1.0))
    settings: dict[str, Any] = {"do_sample": temperature > 0}
    if temperature > 0:
        settings.update(temperature=temperature, top_p=float(sampling.get("top_p", 1.0)))
        top_k = sampling.get("top_k")
        settings["top_k"] = int(top_k) if isinstance(top_k, int) and top_k > 0 else None
    if isinstance(sampling.get("max_new_tokens"), int):
        settings["max_new_tokens"] = sampling["max_new_tokens"]
    return settings


def write_generation_config(out: str, settings: dict[str, Any], model: str | None = None) -> None:
    """Write ``out/generation_config.json``: the one of ``model`` (default: ``out``'s own;
    an adapter's: its base's) updated with ``settings``."""
    from transformers import AutoConfig, GenerationConfig

    model = model or out
    try:
        config = GenerationConfig.from_pretrained(model)
    except OSError:  # none saved: start from the model's own config
        config = GenerationConfig.from_model_config(AutoConfig.from_pretrained(model))
    if not settings.get("do_sample"):  # greedy: sampling fields would only draw warnings
        for key in ("temperature", "top_p", "top_k"):
            setattr(config, key, None)
    config.update(**settings)
    config.save_pretrained(out)
