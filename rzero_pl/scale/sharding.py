"""FSDP2 for the policy: shard each decoder layer, gather for generation, stream full weights.

Lightning's ``ModelParallelStrategy`` sets up the process group and a device mesh, then
calls the module's ``configure_model``; there ``Policy.shard`` applies ``fully_shard`` to
every decoder layer and then to each model's root (the embeddings, final norm and head), so
one layer's parameters are gathered at a time in the forward and backward passes.

Generation is different: ranks generate different numbers of tokens for their own prompts,
and per-layer all-gathers inside ``generate`` would leave the ranks waiting on each other.
``gathered`` therefore all-gathers every layer once, at a point every rank reaches, keeps
the full weights for the whole rollout step (the engine's share of memory), and frees them
afterwards. ``full_weights`` streams a role's full tensors one at a time, for engines that
keep their own copy (vLLM): never a second full model on one rank.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any, Literal

import torch
from torch import nn


class FullyShard:
    """FSDP2 (``fully_shard``) settings, used under ``ModelParallelStrategy``.

    Activation checkpointing is ``policy.gradient_checkpointing`` (non-reentrant, per layer).

    Args:
        mixed_precision: ``bf16``: layers compute in bfloat16 and gradients are reduced in
            float32 (the reference's FSDP setting); ``none``: compute in the weights' dtype;
            ``auto``: ``bf16`` on GPU, ``none`` on CPU.
        cpu_offload: Keep the sharded weights, gradients and optimizer state in CPU memory
            (slower; GPU only).
        reshard_after_forward: Free each gathered layer after its forward (ZeRO-3); False
            keeps it until the backward (less communication, more memory).
    """

    def __init__(
        self,
        mixed_precision: Literal["auto", "bf16", "none"] = "auto",
        cpu_offload: bool = False,
        reshard_after_forward: bool = True,
    ) -> None:
        self.mixed_precision = mixed_precision
        self.cpu_offload = cpu_offload
        self.reshard_after_forward = reshard_after_forward

    def kwargs(self, device_type: str) -> dict[str, Any]:
        """Keyword arguments of ``fully_shard`` on a ``device_type`` mesh."""
        from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, OffloadPolicy

        if self.cpu_offload and device_type == "cpu":
            raise ValueError("policy.fsdp.cpu_offload needs a GPU: on CPU the weights already are")
        bf16 = self.mixed_precision == "bf16" or (
            self.mixed_precision == "auto" and device_type != "cpu"
        )
        mp = (
            MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
            if bf16
            else MixedPrecisionPolicy()
        )
        return {
            "mp_policy": mp,
            "offload_policy": CPUOffloadPolicy() if self.cpu_offload else OffloadPolicy(),
            "reshard_after_forward": self.reshard_after_forward,
        }


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The model's decoder layers: the classes transformers declares in ``_no_split_modules``."""
    names: set[str] = set()
    for module in model.modules():
        names.update(getattr(module, "_no_split_modules", None) or ())
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if not layers:
        raise ValueError(
            f"{type(model).__name__}: no decoder layers found to shard (no _no_split_modules); "
            "FSDP needs a transformers causal LM"
        )
    return layers


def is_sharded(model: nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def apply_fully_shard(model: nn.Module, mesh: Any, settings: FullyShard) -> None:
    """``fully_shard`` every decoder layer of ``model``, then its root (idempotent)."""
    from torch.distributed.fsdp import fully_shard

    if is_sharded(model):
        return
    kwargs = settings.kwargs(mesh.device_type)
    for layer in decoder_layers(model):
        fully_shard(layer, mesh=mesh, **kwargs)
    fully_shard(model, mesh=mesh, **kwargs)


@contextlib.contextmanager
def gathered(models: Iterable[nn.Module]) -> Iterator[None]:
    """Hold every layer of the sharded ``models`` unsharded (collective on entry only).

    Every rank must enter together; inside, forward passes (``generate``, log-probs under
    ``no_grad``) communicate nothing, so ranks may run different amounts of work.
    """
    from torch.distributed.fsdp import FSDPModule

    modules = [m for root in models for m in root.modules()]
    units = [m for m in modules if isinstance(m, FSDPModule)]
    keep = [m._get_fsdp_state()._fsdp_param_group for m in units]
    after = [g.post_forward_mesh_info is not None if g else False for g in keep]
    # transformers' generate turns on ``synced_gpus`` (an all-reduce per token, every rank in
    # step) for modules torch marks as FSDP-managed; here nothing needs syncing, so unmark.
    marked = [m for m in modules if getattr(m, "_is_fsdp_managed_module", False)]
    for unit in units:
        unit.set_reshard_after_forward(False, recurse=False)
        unit.unshard()
    for m in marked:
        m._is_fsdp_managed_module = False
    try:
        yield
    finally:
        for m in marked:
            m._is_fsdp_managed_module = True
        for unit, reshard in zip(units, after, strict=True):
            unit.reshard()
            unit.set_reshard_after_forward(reshard, recurse=False)


def full_weights(named: Iterable[tuple[str, torch.Tensor]]) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield ``(name, full tensor)`` one parameter at a time (a collective per sharded one).

    Every rank must iterate in the same order; the consumer (an engine's weight loader) takes
    each tensor before the next one is gathered.
    """
    from torch.distributed.tensor import DTensor

    for name, tensor in named:
        value = tensor.detach()
        yield name, value.full_tensor() if isinstance(value, DTensor) else value


def new_strategy(class_path: str, init_args: Any = None) -> Any:
    """A new strategy object from its config (``class_path`` and ``init_args``)."""
    import importlib

    module, _, name = class_path.rpartition(".")
    args = init_args.as_dict() if hasattr(init_args, "as_dict") else dict(init_args or {})
    return getattr(importlib.import_module(module), name)(**args)


def check_strategy(strategy: Any, quantization: str | None, device_type: str) -> None:
    """Refuse strategy combinations that cannot work, with the setting to change."""
    kind = type(strategy).__name__
    if kind == "FSDPStrategy":
        if quantization:
            raise ValueError(
                "policy.quantization: nf4 cannot be sharded by FSDPStrategy (FSDP1); run QLoRA "
                "on one GPU (or DDPStrategy), or drop quantization and use ModelParallelStrategy"
            )
        if device_type == "cpu":
            raise ValueError(
                "trainer.strategy: FSDPStrategy (FSDP1) needs GPUs; on CPU use "
                "lightning.pytorch.strategies.ModelParallelStrategy (FSDP2, gloo)"
            )
        raise ValueError(
            "trainer.strategy: FSDPStrategy (FSDP1) wraps the whole LightningModule, but the "
            "two roles share one policy across trainers; use ModelParallelStrategy (FSDP2), "
            "which shards each role's model in configure_model"
        )
    if kind == "ModelParallelStrategy":
        if quantization:
            raise ValueError(
                "policy.quantization: nf4 weights cannot be sharded by FSDP2; run QLoRA on one "
                "GPU (or DDPStrategy), or drop quantization for ModelParallelStrategy"
            )
        mesh = strategy.device_mesh
        if mesh["tensor_parallel"].size() != 1:
            raise ValueError(
                "trainer.strategy: rzero-pl shards with FSDP2 over the data-parallel mesh only; "
                "set ModelParallelStrategy init_args tensor_parallel_size: 1 and "
                f"data_parallel_size: {mesh.size()} (nodes x devices)"
            )


def init_adamw_state(optimizer: torch.optim.AdamW) -> None:
    """Give every parameter the state AdamW would create at its first step (step 0, zeros).

    Why: a sharded (DCP) checkpoint of an optimizer without state makes one up by running
    ``step()`` on zero gradients at lr 0 (``torch.distributed.checkpoint.state_dict``). That
    leaves step 1 and zero moments, so the first real update is bias-corrected as a second
    one (0.74x its size). A checkpoint saved before the first update (one skipped for lack
    of signal, say) would change training. With the state made here, nothing is made up.
    """
    for group in optimizer.param_groups:
        if group["fused"] or group["capturable"] or group["amsgrad"]:
            raise ValueError("init_adamw_state: fused, capturable and amsgrad are not handled")
        for p in group["params"]:
            if p.requires_grad and not optimizer.state[p]:
                optimizer.state[p] = {
                    "step": torch.tensor(0.0),
                    "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
                }
