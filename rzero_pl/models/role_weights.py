"""Saving and loading a role's weights in Hugging Face form (a PEFT adapter or a model folder).

``Policy.save_role`` and ``Policy.load_role`` call these; they hold the file-level rules: a
folder is written next to its destination and renamed into place, tied weights are written
once, and saved weights that do not fit the model are refused.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
from torch import nn

from rzero_pl.ground.io import fsync_dir, fsync_tree, remove_path
from rzero_pl.scale import sharding
from rzero_pl.scale.distributed import is_rank_zero

if TYPE_CHECKING:
    from rzero_pl.models.policy import Policy


def save_role(policy: Policy, role: str, folder: str) -> str:
    """Write ``role``'s weights; every rank calls it (under FSDP the weights are gathered),
    only rank 0 writes."""
    state = None
    if policy.is_sharded:  # every rank gathers tensor by tensor; rank 0 keeps them on CPU
        items = sharding.full_weights(unique_tensors(policy.module(role)))
        state = {name: t.cpu() for name, t in items if is_rank_zero()}
    return _write_role(policy, role, folder, state) if is_rank_zero() else folder


def _write_role(policy: Policy, role: str, folder: str, state: dict | None) -> str:
    module = policy.module(role)
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
    if policy.is_lora:
        with no_progress_bars():
            module.save_pretrained(tmp, selected_adapters=[role], state_dict=state)
        written = os.path.join(tmp, role) if role != "default" else tmp
        os.replace(written, tmp + "-adapter")
        shutil.rmtree(tmp)
        tmp = tmp + "-adapter"
    else:
        with no_progress_bars():
            module.save_pretrained(tmp, state_dict=state)
    policy.tokenizer.save_pretrained(tmp)
    fsync_tree(tmp)
    # The old folder is moved aside (a temp name: cleaned up if we crash) before the new
    # one takes its place, so the final name never holds a half-written or missing copy.
    old = tmp + "-old"
    if os.path.exists(folder):
        os.replace(folder, old)
    os.replace(tmp, folder)
    fsync_dir(parent)
    remove_path(old)
    return folder


@contextlib.contextmanager
def no_progress_bars() -> Iterator[None]:
    """transformers' and huggingface_hub's progress bars off for the block, then as they were.

    Why: ``save_pretrained`` draws a "Writing model shards" bar, a line in a log file at every
    phase's save; a save takes seconds and the phase's own line already says it happened.
    """
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def load_role(policy: Policy, role: str, folder: str) -> None:
    """Load weights written by ``save_role`` into ``role``; refuse weights that do not fit."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"no saved weights for role {role!r} at {folder!r}")
    if policy.is_sharded:
        raise RuntimeError(
            f"load_role({role!r}): load saved weights before the policy is sharded "
            "(at construction, or before the first fit)"
        )
    from safetensors.torch import load_file

    adapter = os.path.join(folder, "adapter_model.safetensors")
    if policy.is_lora != os.path.isfile(adapter):
        saved, wanted = (
            ("a LoRA adapter", "full weights")
            if not policy.is_lora
            else ("full weights", "a LoRA adapter")
        )
        raise ValueError(
            f"policy.weights.{role}: {folder!r} holds {saved} but this policy trains "
            f"{wanted}; set policy.lora to match how the weights were trained"
        )
    if policy.is_lora:
        from peft import set_peft_model_state_dict

        result = set_peft_model_state_dict(
            policy.models["shared"], load_file(adapter), adapter_name=role
        )
        check_loaded(role, folder, result.unexpected_keys, [])
        return
    files = sorted(f for f in os.listdir(folder) if f.endswith(".safetensors"))
    if not files:
        raise FileNotFoundError(f"no .safetensors weights in {folder!r}")
    state: dict[str, torch.Tensor] = {}
    for name in files:
        state.update(load_file(os.path.join(folder, name)))
    model = policy.models[role]
    result = model.load_state_dict(state, strict=False)
    # A tied weight (lm_head = embeddings) is saved once: missing under its second name.
    own = model.state_dict(keep_vars=True)
    loaded = {id(t) for k, t in own.items() if k in state}
    missing = [k for k in result.missing_keys if id(own[k]) not in loaded]
    check_loaded(role, folder, result.unexpected_keys, missing)


def check_loaded(role: str, folder: str, unexpected: list[str], missing: list[str]) -> None:
    """Refuse saved weights that do not fit the model: loading them would score another model."""
    if unexpected or missing:
        names = ", ".join((unexpected or missing)[:3])
        raise ValueError(
            f"policy.weights.{role}: {folder!r} does not fit this model ({len(unexpected)} "
            f"unexpected and {len(missing)} missing tensors, e.g. {names}); was it saved from "
            "another base model or LoRA shape?"
        )


def unique_tensors(module: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """``module``'s state-dict entries, each tensor under its first name only.

    Tied weights (``lm_head`` sharing the embeddings) are one parameter under two names;
    once gathered they are two separate tensors, which ``save_pretrained`` would write
    twice. An unsharded save writes them once, under the first name: so does this.
    """
    seen: set[int] = set()
    for name, tensor in module.state_dict(keep_vars=True).items():
        if id(tensor) not in seen:
            seen.add(id(tensor))
            yield name, tensor
