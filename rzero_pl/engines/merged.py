"""A LoRA role's merged weights, named as the base model names them: what an engine that
serves full weights (``VLLMEngine(lora_serving="merged")``) loads in place of an adapter.

Each LoRA layer's weight is its base weight (dequantized first when the base is bitsandbytes
4-bit, QLoRA) plus the role's delta (``alpha / r * B @ A``, PEFT's ``get_delta_weight``); every
other parameter is the base's own. The policy is never modified.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from rzero_pl.scale.sharding import full_weights

PEFT_PREFIX = "base_model.model."  # PeftModel wraps the base model under this name
BASE_LAYER = ".base_layer"  # a LoRA layer keeps the wrapped layer under this name


def base_name(peft_name: str) -> str:
    """The base model's name of a PEFT model's parameter (``base_model.model.x.base_layer.w``
    -> ``x.w``)."""
    name = peft_name.removeprefix(PEFT_PREFIX)
    return name.replace(BASE_LAYER + ".", ".")


def is_adapter_parameter(peft_name: str) -> bool:
    """True for LoRA's own parameters (``lora_A``, ``lora_B``, ``lora_embedding_*``, ...)."""
    return any(part.startswith("lora_") for part in peft_name.split("."))


@torch.no_grad()
def merged_weights(policy: Any, role: str) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield ``(base model name, tensor)`` for every parameter of ``role``'s merged model,
    tied ones under each of their names, one tensor at a time (nothing is kept)."""
    if not policy.is_lora:
        raise ValueError("merged_weights needs a LoRA policy; full weights are served as they are")
    model = policy.module(role)
    modules = dict(model.named_modules(remove_duplicate=False))
    named = model.named_parameters(remove_duplicate=False)
    for name, tensor in full_weights((n, t) for n, t in named if not is_adapter_parameter(n)):
        owner_name, _, leaf = name.rpartition(".")
        owner = modules[owner_name]
        value = _dequantized(owner) if _is_4bit(owner, leaf) else tensor
        if leaf == "weight" and owner_name.endswith(BASE_LAYER):
            layer = modules[owner_name.removesuffix(BASE_LAYER)]
            if role in getattr(layer, "lora_A", {}) or role in getattr(
                layer, "lora_embedding_A", {}
            ):
                delta = _full(layer.get_delta_weight(role))  # sharded A, B: a sharded delta
                value = value.to(delta.dtype) + delta
        yield base_name(name), value


def _full(tensor: torch.Tensor) -> torch.Tensor:
    """The whole tensor of an FSDP2-sharded ``DTensor`` (a collective); others as they are."""
    return next(full_weights([("", tensor)]))[1]


def _is_4bit(module: torch.nn.Module, leaf: str) -> bool:
    """True for a bitsandbytes-quantized weight (QLoRA's nf4 base; 8-bit unpacks the same)."""
    return leaf == "weight" and type(module.weight).__name__ in ("Params4bit", "Int8Params")


def _dequantized(module: torch.nn.Module) -> torch.Tensor:
    """A bitsandbytes module's weight, unpacked to its compute dtype."""
    from peft.utils.integrations import dequantize_module_weight

    return dequantize_module_weight(module).detach()
