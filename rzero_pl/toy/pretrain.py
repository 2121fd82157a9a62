"""Pretrain the toy model from scratch on the synthetic corpus, on CPU, in a few minutes.

A small ``LlamaForCausalLM`` (tied embeddings, context 192) learns from a packed stream of
``<bos> document <eos>`` tokens. The budget is a number of optimizer steps, not wall time, so
that the same settings always give the same model (up to floating-point noise) and the cache
key in ``rzero_pl.toy.model`` means something. The result is a plain Hugging Face folder:
``config.json``, ``model.safetensors``, ``generation_config.json`` and the tokenizer files.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from rzero_pl.progress import Progress
from rzero_pl.toy.arithmetic import DEFAULT_MIX
from rzero_pl.toy.corpus import documents
from rzero_pl.toy.tokenizer import build_tokenizer

CONTEXT = 192
SIZES: dict[str, dict[str, int]] = {
    # about 0.41M parameters: the best accuracy per CPU-minute in TOY-WORLD.md
    "xs": {
        "hidden_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 352,
    },
    # about 1.8M parameters: slower to train, for longer budgets
    "s": {
        "hidden_size": 192,
        "num_hidden_layers": 4,
        "num_attention_heads": 6,
        "intermediate_size": 512,
    },
}


@dataclass(frozen=True)
class Recipe:
    """The optimisation settings; part of the toy model's cache key."""

    batch_size: int = 32
    context: int = CONTEXT
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    betas: tuple[float, float] = (0.9, 0.95)


def model_config(size: str, tokenizer: Any, context: int = CONTEXT) -> Any:
    from transformers import LlamaConfig

    if size not in SIZES:
        raise ValueError(f"size must be one of {list(SIZES)}, got {size!r}")
    return LlamaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=context,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **SIZES[size],
    )


def token_batches(
    tokenizer: Any, docs: Iterator[str], batch_size: int, context: int
) -> Iterator[torch.Tensor]:
    """Windows of ``context + 1`` tokens cut from the packed ``<bos> doc <eos>`` stream.

    The loss covers every token, prompts included: in a 400-step comparison, masking the
    prompts made the held-out solution loss worse (0.64 against 0.53 nats per token on L1),
    as reading the question's digits is part of what the model must learn.
    """
    need, buffer, chunk = batch_size * (context + 1), [], 512
    while True:
        while len(buffer) < need:
            texts = [next(docs) for _ in range(chunk)]
            for ids in tokenizer(texts)["input_ids"]:  # each starts with <bos>
                buffer += ids + [tokenizer.eos_token_id]
        yield torch.tensor(buffer[:need]).view(batch_size, context + 1)
        buffer = buffer[need:]


def lr_at(step: int, steps: int, recipe: Recipe) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio * lr`` at the last step."""
    if step < recipe.warmup_steps:
        return recipe.lr * (step + 1) / recipe.warmup_steps
    progress = (step - recipe.warmup_steps) / max(1, steps - recipe.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return recipe.lr * (recipe.min_lr_ratio + (1 - recipe.min_lr_ratio) * cosine)


def bf16_is_fast() -> bool:
    """bf16 autocast pays off on CPUs with native bf16 (AVX512-BF16, AMX), not on plain AVX2."""
    checker = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(checker()) if checker is not None else False
    except RuntimeError:
        return False


def _optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    groups = [
        {"params": decay, "weight_decay": recipe.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=recipe.lr, betas=recipe.betas)


def pretrain(
    folder: str,
    size: str = "xs",
    steps: int = 1500,
    mix: Sequence[float] = DEFAULT_MIX,
    seed: int = 0,
    recipe: Recipe = Recipe(),
    progress: bool = True,
    bf16: bool | None = None,
) -> dict[str, Any]:
    """Train a toy model for ``steps`` optimizer steps; save it and its tokenizer to ``folder``.

    ``bf16`` autocast defaults to on only where the CPU computes bf16 natively.
    """
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    model = LlamaForCausalLM(model_config(size, tokenizer, recipe.context))
    bf16 = bf16_is_fast() if bf16 is None else bf16
    batches = token_batches(tokenizer, documents(seed, mix), recipe.batch_size, recipe.context)
    start = time.perf_counter()
    losses = _train(model, batches, steps, recipe, bf16, progress)
    stats = {
        "steps": steps,
        "seconds": round(time.perf_counter() - start, 1),
        "final_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4),
        "tokens": steps * recipe.batch_size * recipe.context,
        "parameters": sum(p.numel() for p in model.parameters()),
        "bf16_autocast": bf16,
        "threads": torch.get_num_threads(),
    }
    save(folder, model, tokenizer)
    return stats


def _train(
    model: Any,
    batches: Iterator[torch.Tensor],
    steps: int,
    recipe: Recipe,
    bf16: bool,
    progress: bool,
) -> list[float]:
    """The optimisation loop; returns the loss of every step."""
    model.train()
    optimizer, losses = _optimizer(model, recipe), []
    # a live bar on a terminal, a line every 30 s in a log (rzero_pl.progress); 0: none
    with Progress(steps if progress else 0, "toy base build", "steps") as bar:
        for step in range(steps):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, steps, recipe)
            window = next(batches)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(input_ids=window[:, :-1]).logits
            loss = F.cross_entropy(logits.float().flatten(0, 1), window[:, 1:].flatten())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
            optimizer.step()
            losses.append(loss.item())
            recent = sum(losses[-50:]) / len(losses[-50:])
            bar.advance(1, note=f"loss {recent:.3f}")
    return losses


def save(folder: str, model: Any, tokenizer: Any) -> None:
    """A plain Hugging Face folder that loads without rzero-pl installed."""
    model.eval()
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    # older transformers (4.x) know the wrapper as PreTrainedTokenizerFast, not TokenizersBackend
    config_path = os.path.join(folder, "tokenizer_config.json")
    with open(config_path) as f:
        config = json.load(f)
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    with open(config_path, "w") as f:
        json.dump(config, f, indent=2)
