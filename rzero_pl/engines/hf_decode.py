"""A sampling loop that gives ``generate``'s tokens while dropping finished rows from the batch.

``transformers``' ``generate`` keeps every row of a batch in every forward pass until the
last row stops: a row that wrote EOS at step 5 of 96 still runs 91 more steps whose tokens
are thrown away. On the toy world that was 46 % of the vote batches' rows (bench/RESULTS.md,
"Toy iteration speed"). ``sample`` runs the same forward passes, logits processors and
sampling draws as ``generate``, but takes finished rows out of the batch and its KV cache.

Why the tokens stay the same, bit for bit:

- Each row's forward pass does not depend on the other rows of the batch (on CPU, checked
  for the toy model's shapes from 4 rows up; below ``MIN_ROWS`` rows the matrix products
  take another path, so a batch is never cut below it).
- ``torch.multinomial(probs, 1)`` is ``argmax(probs / q)`` with ``q ~ Exp(1)`` drawn for the
  whole ``[rows, vocab]`` matrix; ``sample_rows`` draws ``q`` for every row of the original
  batch, so the random stream and every row's draw are the ones ``generate`` makes.
- The model's inputs are built by the model's own ``prepare_inputs_for_generation``, with the
  same cache class, attention mask, ``logits_to_keep`` and finished-row padding as
  ``generate``; the forward pass is the one ``generate`` calls (a peft model's base model).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

MIN_ROWS = 8  # never cut a batch below this (small matrix products round differently)
DROP_SHARE = 16  # drop finished rows once they are at least 1/16 of the batch

# Fields of a checkpoint's generation config that add no logits processor: anything else
# (e.g. a repetition penalty) sends the batch to ``generate``, which applies it.
PLAIN_CONFIG_KEYS = {
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "use_cache",
    "output_attentions",
    "output_hidden_states",
    "transformers_version",
    "do_sample",
    "temperature",
    "top_p",
    "top_k",
    "max_length",
    "max_new_tokens",
    "_from_model_config",
}


def supports(model: Any) -> bool:
    """True when the model's own generation config adds nothing to the sampling knobs."""
    config = getattr(model, "generation_config", None)
    if config is None:
        return True
    return set(config.to_diff_dict()) <= PLAIN_CONFIG_KEYS


def forward_model(model: Any) -> Any:
    """The transformers model whose forward ``generate`` calls: a peft model's base model
    (its LoRA layers are inside it; the peft wrapper only prepares the inputs)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def model_kwargs(net: Any, attention_mask: torch.Tensor) -> dict[str, Any]:
    """The keyword arguments ``generate`` starts its loop with for a left-padded batch.

    Position ids count only the real tokens (when the forward takes them), the mask is
    dropped when nothing is padded, and only the last position's logits are asked for when
    the forward can (``logits_to_keep=1``: the head's matrix product has other shapes then,
    and rounds differently).
    """
    takes = inspect.signature(net.forward).parameters
    kwargs: dict[str, Any] = {"use_cache": True}
    if "position_ids" in takes:
        positions = attention_mask.long().cumsum(-1) - 1
        kwargs["position_ids"] = positions.masked_fill(attention_mask == 0, 0)
    kwargs["attention_mask"] = None if bool((attention_mask == 1).all()) else attention_mask
    if "logits_to_keep" in takes:
        kwargs["logits_to_keep"] = 1
    return kwargs


def advance(kwargs: dict[str, Any], keep: torch.Tensor | None) -> None:
    """One token more in ``kwargs``' mask and positions; then keep only the rows ``keep``."""
    mask, positions = kwargs["attention_mask"], kwargs.get("position_ids")
    if mask is not None:
        kwargs["attention_mask"] = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
    if positions is not None:
        kwargs["position_ids"] = torch.cat([positions, positions[..., -1:] + 1], dim=-1)
    if keep is not None:
        for key in ("attention_mask", "position_ids"):
            if kwargs.get(key) is not None:
                kwargs[key] = kwargs[key][keep]
        kwargs["past_key_values"].batch_select_indices(keep)


def distinct_rows(input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(first, inverse)``: the first row of each distinct prompt, and each row's prompt.

    None when every row differs. The n samples of one prompt share its prefill. Fewer than
    ``MIN_ROWS`` distinct prompts are topped up with copies (never used), so that the
    prefill's last-position matrix product keeps its shape class.
    """
    slots: dict[tuple[int, ...], int] = {}
    first, inverse = [], []
    for r, row in enumerate(input_ids.tolist()):
        slot = slots.setdefault(tuple(row), len(slots))
        if slot == len(first):
            first.append(r)
        inverse.append(slot)
    chosen = set(first)
    copies = [r for r in range(len(inverse)) if r not in chosen]
    first += copies[: max(0, MIN_ROWS - len(first))]
    if len(first) == len(inverse):
        return None
    device = input_ids.device
    return torch.tensor(first, device=device), torch.tensor(inverse, device=device)


def prefill(model: Any, net: Any, seq: torch.Tensor, kwargs: dict[str, Any]) -> torch.Tensor:
    """The first step's logits ``[rows, vocab]``; each distinct prompt runs once.

    A row's forward pass does not depend on the other rows, so the copies of a prompt get
    its one row's logits and KV cache (``generate`` computes every copy, to the same bits).
    """
    shared = distinct_rows(seq)
    sub = kwargs
    if shared is not None:
        keys = ("attention_mask", "position_ids")
        sub = {k: v[shared[0]] if k in keys and v is not None else v for k, v in kwargs.items()}
    inputs = model.prepare_inputs_for_generation(
        seq if shared is None else seq[shared[0]],
        next_sequence_length=seq.shape[1],
        is_first_iteration=True,
        **sub,
    )
    logits = net(**inputs, return_dict=True).logits[:, -1].to(copy=True, dtype=torch.float32)
    if shared is None:
        return logits
    kwargs["past_key_values"].batch_select_indices(shared[1])
    return logits[shared[1]]


def warpers(
    temperature: float, top_k: int, top_p: float, banned: tuple[int, ...] = (), device: Any = "cpu"
) -> Any:
    """The logits processors ``generate`` builds for these knobs (and ``suppress_tokens``
    ``banned``), in its order: the suppression first, then the warpers."""
    from transformers import (
        LogitsProcessorList,
        SuppressTokensLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    out = LogitsProcessorList()
    if banned:
        out.append(SuppressTokensLogitsProcessor(list(banned), device=device))
    if temperature == 0:  # greedy: generate applies no warper
        return out
    if temperature != 1.0:
        out.append(TemperatureLogitsWarper(temperature))
    if top_k != 0:
        out.append(TopKLogitsWarper(top_k=top_k, min_tokens_to_keep=1))
    if top_p < 1.0:
        out.append(TopPLogitsWarper(top_p=top_p, min_tokens_to_keep=1))
    return out


def sample_rows(probs: torch.Tensor, rows: torch.Tensor, batch: int) -> torch.Tensor:
    """``torch.multinomial(full_probs, 1)[rows]`` from the probabilities of ``rows`` only.

    The exponential noise is drawn for all ``batch`` rows, as ``multinomial`` draws it for
    the whole matrix, so the generator advances exactly as it would.
    """
    noise = torch.empty((batch, probs.shape[-1]), dtype=probs.dtype, device=probs.device)
    noise.exponential_(1)
    return (probs / noise[rows]).argmax(dim=-1)


def rows_to_keep(finished: torch.Tensor) -> torch.Tensor | None:
    """Indices (into the current batch) of the rows to keep, or None to keep them all.

    Rows are dropped once at least 1/``DROP_SHARE`` of the batch has finished; finished rows
    are kept as filler when fewer than ``MIN_ROWS`` rows are still running.
    """
    size = finished.numel()
    dropped = int(finished.sum())
    if dropped == 0 or dropped * DROP_SHARE < size or size <= MIN_ROWS:
        return None
    live = (~finished).nonzero().squeeze(1)
    if live.numel() >= MIN_ROWS:
        return live
    filler = finished.nonzero().squeeze(1)[: MIN_ROWS - live.numel()]
    return torch.cat([live, filler]).sort().values


@torch.no_grad()
def sample(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    max_new_tokens: int,
    processors: Any,
    greedy: bool,
    eos_token_id: int,
    pad_token_id: int,
    want_logits: bool = False,
) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
    """The new tokens ``[batch, steps]`` that ``generate`` returns for these inputs.

    Finished rows hold ``pad_token_id`` after their EOS, as in ``generate``. With
    ``want_logits``, also each step's raw logits ``[batch, vocab]`` (rows that had left the
    batch hold zeros: their tokens are padding).
    """
    from transformers import DynamicCache

    batch, device = input_ids.shape[0], input_ids.device
    net = forward_model(model)
    kwargs = model_kwargs(net, attention_mask)
    kwargs["past_key_values"] = DynamicCache(config=net.config.get_text_config(decoder=True))
    rows = torch.arange(batch, device=device)  # original row of each row in the batch
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    tokens = torch.full((batch, max_new_tokens), pad_token_id, dtype=torch.long, device=device)
    logits_out: list[torch.Tensor] | None = [] if want_logits else None
    seq = input_ids
    for step in range(max_new_tokens):
        if step == 0:
            logits = prefill(model, net, seq, kwargs)
        else:
            inputs = model.prepare_inputs_for_generation(seq, next_sequence_length=1, **kwargs)
            out = net(**inputs, return_dict=True)
            logits = out.logits[:, -1].to(copy=True, dtype=torch.float32)
        if logits_out is not None:
            logits_out.append(
                logits.new_zeros((batch, logits.shape[-1])).index_copy(0, rows, logits)
            )
        scores = processors(seq, logits)
        if greedy:
            nxt = scores.argmax(dim=-1)
        else:
            nxt = sample_rows(torch.softmax(scores, dim=-1), rows, batch)
        nxt = torch.where(done[rows], torch.full_like(nxt, pad_token_id), nxt)
        tokens[rows, step] = nxt
        done[rows] |= nxt == eos_token_id
        if bool(done.all()):
            return tokens[:, : step + 1], logits_out
        keep = rows_to_keep(done[rows])
        seq = torch.cat([seq, nxt[:, None]], dim=-1)
        advance(kwargs, keep)
        if keep is not None:
            rows, seq = rows[keep], seq[keep]
    return tokens, logits_out
