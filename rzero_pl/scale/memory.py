"""Back-of-the-envelope GPU memory per rank, printed when a phase starts.

An estimate, not a measurement: it counts the big tensors a GRPO phase holds and ignores the
allocator's fragmentation, CUDA context (~0.5 GiB) and temporary buffers. The terms:

- weights: the base once with LoRA (nf4: ~0.5625 bytes per parameter, 4 bits plus the
  quantisation constants); with full fine-tuning one model per role, sharded over the ranks;
- reference: the frozen KL copy of full fine-tuning (LoRA reuses the base);
- adapters, gradients, optimizer: trainable weights, their fp32 gradients and AdamW's two
  fp32 moments, all sharded over the ranks with FSDP;
- activations: with checkpointing, each layer's input is kept (2 bytes per value) and one
  layer at a time is recomputed (~34 bytes per token and hidden unit, Korthikanti et al.
  2022, flash attention), plus the logits (bf16 logits, an fp32 copy and its log-softmax);
- engine: what generation adds, the gathered full weights of every model under FSDP (the
  HF engine generates on them) plus the KV cache of one batch of ``engine_tokens`` tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

GIB = 1024**3
NF4_BYTES = 0.5625  # 4-bit weights, one fp8 scale per 64 and an fp32 scale per 256 of those
ACTIVATION_BYTES = 34  # per token and hidden unit for one transformer layer (bf16)
LOGIT_BYTES = 10  # bf16 logits + fp32 copy + fp32 log-softmax, per token and vocab entry


@dataclass
class ModelShape:
    """What the estimate needs to know about a causal LM."""

    params: int
    layers: int
    hidden: int
    vocab: int
    kv_dim: int  # key/value heads x head dim

    @classmethod
    def of(cls, model: Any) -> ModelShape:
        """Read a transformers model (counts 4-bit parameters as parameters)."""
        c = model.config
        text = getattr(c, "get_text_config", lambda: c)()
        heads = text.num_attention_heads
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
        kv_heads = getattr(text, "num_key_value_heads", None) or heads
        return cls(
            params=model.num_parameters(),
            layers=text.num_hidden_layers,
            hidden=text.hidden_size,
            vocab=text.vocab_size,
            kv_dim=kv_heads * head_dim,
        )


@dataclass
class MemoryEstimate:
    """Estimated bytes per rank, by term."""

    weights: float
    reference: float
    adapters: float
    gradients: float
    optimizer: float
    activations: float
    engine: float

    @property
    def total(self) -> float:
        return sum(getattr(self, f.name) for f in fields(self))

    def describe(self) -> str:
        parts = ", ".join(f"{f.name} {getattr(self, f.name) / GIB:.2f}" for f in fields(self))
        return f"estimated peak memory per rank: {self.total / GIB:.2f} GiB ({parts} GiB)"


def estimate_memory(
    shape: ModelShape,
    *,
    lora_params: int = 0,
    quantization: str | None = None,
    roles: int = 2,
    reference: bool = False,
    weight_bytes: int = 2,
    world_size: int = 1,
    sharded: bool = False,
    micro_batch: int = 1,
    seq_len: int = 4096,
    checkpointing: bool = True,
    engine_tokens: int = 65536,
    engine_share: float | None = None,
) -> MemoryEstimate:
    """Estimated bytes per rank of one GRPO phase (see the module docstring for each term).

    ``lora_params`` is the trainable adapter size of one role (0: full fine-tuning); the
    optimizer holds one role's trainable weights. ``sharded`` divides the weights, gradients
    and optimizer state by ``world_size`` (FSDP); otherwise every rank holds them whole.
    ``engine_share`` is the bytes an engine with its own memory pool reserves (vLLM:
    ``gpu_memory_utilization`` x the GPU's memory); it replaces the HF engine's term.
    """
    n, share = shape.params, world_size if sharded else 1
    lora = lora_params > 0
    base_bytes = NF4_BYTES if quantization == "nf4" else weight_bytes
    weights = n * base_bytes / share * (1 if lora else roles)
    ref = n * weight_bytes / share if reference and not lora else 0.0
    trainable = lora_params if lora else n
    adapters = roles * lora_params * 4 / share
    gradients = trainable * 4 / share
    optimizer = trainable * 8 / share
    tokens = micro_batch * seq_len
    per_layer = tokens * shape.hidden * ACTIVATION_BYTES
    kept = tokens * shape.hidden * 2 * shape.layers if checkpointing else per_layer * shape.layers
    activations = kept + (per_layer if checkpointing else 0) + tokens * shape.vocab * LOGIT_BYTES
    copies = (1 if lora else roles) + (1 if ref else 0)
    gathered = n * copies * 2 if sharded else 0.0  # bf16 full weights, beside the shards
    kv_cache = engine_tokens * shape.layers * 2 * shape.kv_dim * 2
    engine = gathered + kv_cache if engine_share is None else engine_share
    return MemoryEstimate(weights, ref, adapters, gradients, optimizer, activations, engine)


def recomputes_activations(model: Any) -> bool:
    """Whether ``model`` checkpoints its activations: ``is_activation_checkpointing`` where
    transformers has it (the newer releases, where the old ``is_gradient_checkpointing`` is
    deprecated: a FutureWarning per run), else the old name (the only one before)."""
    found = getattr(model, "is_activation_checkpointing", None)
    if found is None:
        found = getattr(model, "is_gradient_checkpointing", False)
    return bool(found)


def estimate_for(module: Any, trainer: Any) -> MemoryEstimate:
    """The estimate for a GRPO module about to be fitted by ``trainer``."""
    policy = module.policy
    base = next(iter(policy.models.values()))
    shape = ModelShape.of(base.get_base_model() if policy.is_lora else base)
    lora = sum(p.numel() for p in policy.trainable_parameters(module.role)) if policy.is_lora else 0
    dtype = next(p for p in base.parameters() if p.is_floating_point()).dtype
    engine_tokens, engine_share = module.actor.engine_memory(shape.params * dtype.itemsize)
    return estimate_memory(
        shape,
        lora_params=lora,
        quantization=policy.quantization,
        roles=len(policy.roles),
        reference=module.loss_settings.kl_coef > 0,
        weight_bytes=dtype.itemsize,
        world_size=trainer.world_size,
        sharded=type(trainer.strategy).__name__ == "ModelParallelStrategy",
        micro_batch=module.micro_batch_size,
        seq_len=module.sampling.max_new_tokens + 512,  # + a typical prompt
        checkpointing=recomputes_activations(base),
        engine_tokens=engine_tokens,
        engine_share=engine_share,
    )
