"""HFEngine: generation with transformers ``generate`` on the trainer's own model.

The engine shares the policy's modules with the trainer, so "pushing" weights is only a
version bump: the next generation already runs on the updated tensors. Prompts are
expanded to ``n`` rows, sorted by length and packed into left-padded batches under a
token budget; sampling is seeded per batch so that a run repeats exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch

from rzero_pl.engines import hf_decode
from rzero_pl.engines.base import (
    Completion,
    Generation,
    SamplingParams,
    context_length,
    token_budgets,
)
from rzero_pl.errors import MAX_TOKENS, check_number
from rzero_pl.progress import advance
from rzero_pl.roles import check_role
from rzero_pl.vocab_dropout import mask_logits

MAX_BATCH_TOKENS = MAX_TOKENS << 10  # a billion tokens a batch: beyond any accelerator


def encode_prompt(tokenizer: Any, prompt: str) -> list[int]:
    """Token ids of a rendered prompt, with the tokenizer's BOS exactly once.

    Plain-text prompts need the tokenizer's special tokens; chat templates often write the
    BOS themselves, and adding it again would double it.
    """
    ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    bos = tokenizer.bos_token_id
    if bos is not None and len(ids) > 1 and ids[0] == bos and ids[1] == bos:
        ids = ids[1:]
    return ids


class HFEngine:
    """Generate with ``transformers`` on the policy's model (the CPU engine).

    Args:
        max_batch_tokens: Upper bound on rows × (prompt length + max_new_tokens) per batch.
        return_logprobs: Also return each sampled token's log-prob (costs memory).
        drop_finished: Take rows that wrote EOS out of the batch and run each distinct prompt's
            prefill once (``rzero_pl.engines.hf_decode``: on CPU the same tokens as
            ``generate``, bit for bit, with fewer forward passes; on a GPU the same sampling,
            not always the same bits); stop strings and checkpoints whose generation config
            adds logits processors use ``generate``.
    """

    shares_trainer_weights = True  # generates on the policy's own modules

    def __init__(
        self,
        max_batch_tokens: int = 65536,
        return_logprobs: bool = False,
        drop_finished: bool = True,
    ) -> None:
        if max_batch_tokens < 1:
            raise ValueError(f"engine.max_batch_tokens must be >= 1, got {max_batch_tokens}")
        check_number("engine.max_batch_tokens", max_batch_tokens, at_most=MAX_BATCH_TOKENS)
        self.max_batch_tokens = max_batch_tokens
        self.return_logprobs = return_logprobs
        self.drop_finished = drop_finished
        self.policy: Any = None
        self._versions: dict[str, int] = {}
        self.generated_tokens = 0

    def attach(self, policy: Any) -> None:
        if self.policy is policy:
            return  # both roles' modules attach the same shared engine
        self.policy = policy
        self._versions = dict.fromkeys(policy.roles, 0)

    def memory_bytes(self, weight_bytes: float) -> tuple[int, float | None]:
        return self.max_batch_tokens, None  # batches on the trainer's weights, no copy

    def push(self, role: str) -> int:
        check_role(role)
        self._versions[role] = self._versions.get(role, 0) + 1
        return self._versions[role]

    def version(self, role: str) -> int:
        return self._versions.get(check_role(role), 0)

    # ---- generation ---------------------------------------------------------------------

    @torch.no_grad()
    def generate(
        self, prompts: Sequence[str], *, role: str, params: SamplingParams
    ) -> list[Generation]:
        if self.policy is None:
            raise RuntimeError("HFEngine.generate called before attach(policy)")
        tok = self.policy.tokenizer
        model = self.policy.module(role)
        encoded = [encode_prompt(tok, p) for p in prompts]
        budgets = token_budgets(prompts, encoded, params.max_new_tokens, context_length(model))
        out = [Generation(p, ids) for p, ids in zip(prompts, encoded, strict=True)]
        rows = [(i, ids, budgets[i]) for i, ids in enumerate(encoded) for _ in range(params.n)]
        order = sorted(range(len(rows)), key=lambda r: len(rows[r][1]))
        was_training = model.training
        model.eval()
        try:
            for b, batch in enumerate(self._batches(order, rows)):
                seed = None if params.seed is None else params.seed + b
                batch_ids = [rows[r][1] for r in batch]
                budget = replace(params, max_new_tokens=rows[batch[0]][2])
                done = self._generate_batch(model, batch_ids, budget, seed, self.version(role))
                for r, completion in zip(batch, done, strict=True):
                    out[rows[r][0]].completions.append(completion)
                advance(len(batch))  # to the caller's progress line, when it opened one
        finally:
            model.train(was_training)
        return out

    def _batches(self, order: list[int], rows: list) -> list[list[int]]:
        """Split sorted rows so that each batch stays under ``max_batch_tokens`` and its rows
        share one new-token budget (cut only for prompts near the model's context)."""
        batches: list[list[int]] = []
        current: list[int] = []
        for r in order:
            width = len(rows[r][1]) + rows[r][2]  # rows are sorted: the newest is the longest
            budget_changes = current and rows[current[0]][2] != rows[r][2]
            if current and (budget_changes or (len(current) + 1) * width > self.max_batch_tokens):
                batches.append(current)
                current = []
            current.append(r)
        if current:
            batches.append(current)
        return batches

    def _generate_batch(
        self,
        model: Any,
        prompts: list[list[int]],
        params: SamplingParams,
        seed: int | None,
        version: int,
    ) -> list[Completion]:
        tok = self.policy.tokenizer
        device = next(model.parameters()).device
        width = max(len(p) for p in prompts)
        pad = tok.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=device)
        attention = torch.tensor(
            [[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device
        )
        with torch.random.fork_rng(devices=[] if device.type == "cpu" else [device]):
            if seed is not None:
                torch.manual_seed(seed)
            new_tokens, step_logits = self._sample(model, input_ids, attention, params)
        logprobs = None
        if self.return_logprobs:
            logits = torch.stack(step_logits, dim=1).float()
            temp = params.temperature if params.temperature > 0 else 1.0
            lp = torch.log_softmax(mask_logits(logits, params.banned_token_ids) / temp, dim=-1)
            logprobs = lp.gather(-1, new_tokens.unsqueeze(-1)).squeeze(-1)
        return [
            self._completion(new_tokens[i].tolist(), params, version, logprobs, i)
            for i in range(len(prompts))
        ]

    def _sample(
        self, model: Any, input_ids: torch.Tensor, attention: torch.Tensor, params: SamplingParams
    ) -> tuple[torch.Tensor, Sequence[torch.Tensor]]:
        """New tokens ``[rows, steps]`` and each step's logits (when ``return_logprobs``)."""
        tok = self.policy.tokenizer
        plain = not params.stop and None not in (tok.eos_token_id, tok.pad_token_id)
        if self.drop_finished and plain and hf_decode.supports(model):
            greedy = params.temperature == 0
            return hf_decode.sample(
                model,
                input_ids,
                attention,
                max_new_tokens=params.max_new_tokens,
                processors=hf_decode.warpers(
                    params.temperature,
                    max(params.top_k, 0),
                    min(params.top_p, 1.0),
                    params.banned_token_ids,
                    input_ids.device,
                ),
                greedy=greedy,
                eos_token_id=tok.eos_token_id,
                pad_token_id=tok.pad_token_id,
                want_logits=self.return_logprobs,
            )
        kwargs = self._sampling_kwargs(model, params)
        result = model.generate(input_ids=input_ids, attention_mask=attention, **kwargs)
        return result.sequences[:, input_ids.shape[1] :], result.logits

    def _sampling_kwargs(self, model: Any, params: SamplingParams) -> dict[str, Any]:
        from transformers import GenerationConfig

        tok = self.policy.tokenizer
        greedy = params.temperature == 0
        config = GenerationConfig(
            max_new_tokens=params.max_new_tokens,
            do_sample=not greedy,
            temperature=None if greedy else params.temperature,
            # Explicit "off" values when sampling: None would be filled in from transformers'
            # defaults (top_k=50) or the checkpoint's generation_config.
            top_p=None if greedy else min(params.top_p, 1.0),
            top_k=None if greedy else max(params.top_k, 0),
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
            return_dict_in_generate=True,
            output_logits=self.return_logprobs,
            stop_strings=list(params.stop) or None,
            suppress_tokens=list(params.banned_token_ids) or None,
        )
        kwargs: dict[str, Any] = {"generation_config": config}
        if params.stop:
            kwargs["tokenizer"] = tok
        return kwargs

    def _completion(
        self,
        tokens: list[int],
        params: SamplingParams,
        version: int,
        logprobs: torch.Tensor | None,
        row: int,
    ) -> Completion:
        tok = self.policy.tokenizer
        finish = "length"
        if tok.eos_token_id in tokens:
            tokens = tokens[: tokens.index(tok.eos_token_id) + 1]
            finish = "stop"
        else:
            tokens = [t for t in tokens if t != tok.pad_token_id]
        text = tok.decode(tokens, skip_special_tokens=True)
        for stop in params.stop:
            if stop in text:
                text = text[: text.index(stop)]
                finish = "stop"
        lps = None if logprobs is None else logprobs[row, : len(tokens)].tolist()
        self.generated_tokens += len(tokens)
        return Completion(text, tokens, finish, version, lps)
