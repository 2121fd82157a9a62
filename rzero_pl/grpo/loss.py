"""GRPO as small pure functions: group advantages, token log-probs, the clipped loss, KL.

Shapes: ``B`` sequences (completions) in a minibatch, ``T`` response tokens (right-padded),
``V`` vocabulary entries, ``G`` completions per prompt (the group). Rewards and advantages are
per sequence; everything else is per token with a ``[B, T]`` mask (1 on response tokens).

Sign conventions: ``policy_loss`` returns a loss to *minimise*. A positive advantage makes the
loss decrease as a token's log-prob rises, so gradient descent raises the probability of
better-than-average completions. The KL term is a penalty added to the loss.

Defaults follow the reference run (R-Zero's EasyR1 fork: its ``examples/config.yaml``): clip
ratio 0.2 below / 0.3 above, dual clip 3.0, low-variance KL to the reference model with
coefficient 0.01 added to the loss, token-mean aggregation, advantages normalised by the
group's std. ``GRPOLoss`` holds these settings for a trainer (defined once, here).
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from rzero_pl.errors import MAX_TOKENS, check_number

CLIP_LOW = 0.2
CLIP_HIGH = 0.3
DUAL_CLIP = 3.0
KL_COEF = 0.01
KL_CLAMP = 10.0  # the k3 value is capped at 10, as the reference's low_var_kl does
ADVANTAGE_EPS = 1e-6
AGGREGATION = "token_mean"

ADVANTAGE_SCALES = ("group", "batch", "none")
AGGREGATIONS = ("token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm")
SAMPLER_CORRECTIONS = ("none", "token_truncate", "sequence_mask")
SAMPLER_CAP = 3.0  # TRL's vllm_importance_sampling_cap (clip_max) default


def group_advantages(
    rewards: torch.Tensor, group_size: int, scale: str = "group", eps: float = ADVANTAGE_EPS
) -> torch.Tensor:
    """Advantages ``[B*G]`` of rewards ``[B*G]`` laid out as consecutive groups of ``group_size``.

    Each reward minus its group's mean, then divided by:

    - ``scale="group"``: the group's unbiased std + eps (GRPO; the reference);
    - ``scale="batch"``: the unbiased std of all rewards in the batch + eps;
    - ``scale="none"``: nothing (Dr. GRPO).

    A group whose rewards are all equal gets advantage 0 (no signal, whatever the scale).
    """
    if rewards.ndim != 1:
        raise ValueError(f"rewards must be 1-D [B*G], got shape {tuple(rewards.shape)}")
    if group_size < 1 or rewards.numel() % group_size != 0:
        raise ValueError(
            f"{rewards.numel()} rewards do not split into groups of group_size={group_size}"
        )
    if scale not in ADVANTAGE_SCALES:
        raise ValueError(f"unknown advantage scale {scale!r}; use one of {ADVANTAGE_SCALES}")
    if scale == "group" and group_size < 2:
        raise ValueError("scale='group' needs group_size >= 2 (the std of one reward is undefined)")
    if scale == "batch" and rewards.numel() < 2:
        raise ValueError("scale='batch' needs at least 2 rewards")

    groups = rewards.view(-1, group_size)
    centred = groups - groups.mean(dim=1, keepdim=True)
    if scale == "group":
        centred = centred / (groups.std(dim=1, keepdim=True) + eps)
    elif scale == "batch":
        centred = centred / (rewards.std() + eps)
    return centred.reshape(-1)


def token_logprobs(
    logits: torch.Tensor,
    token_ids: torch.Tensor,
    temperature: float = 1.0,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """Log-probs ``[B, T]`` of ``token_ids`` ``[B, T]`` under ``softmax(logits / temperature)``.

    ``logits`` is ``[B, T, V]``, already aligned with ``token_ids`` (position t predicts token t).
    Computed as ``logit[token] - logsumexp(logits)`` in at least float32 (bf16/fp16 logits are
    upcast; float64 stays float64), on whole rows of the leading dimension, about
    ``chunk_size`` positions at a time, so no ``[B, T, V]`` log-softmax is materialised; the
    only full-size copy autograd keeps is the float32 (temperature-scaled) logits that
    ``logsumexp`` needs for its backward.

    Chunks are ``torch.split`` views of ``logits`` as given (a strided slice such as
    ``logits[:, :-1]`` is not copied), so the backward writes each chunk's gradient once into
    one ``[B, T, V]`` tensor; slicing chunks out of a flattened copy instead costs a full-size
    zero fill and add per chunk in the backward.
    """
    if logits.shape[:-1] != token_ids.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} and token_ids {tuple(token_ids.shape)} do not align"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    dtype = torch.promote_types(logits.dtype, torch.float32)
    if logits.ndim == 1:  # one position
        return token_logprobs(logits[None], token_ids[None], temperature, chunk_size)[0]
    if token_ids.numel() == 0:
        return logits.new_zeros(token_ids.shape, dtype=dtype)
    per_row = token_ids[0].numel()  # positions in one row of the leading dimension
    rows = max(1, chunk_size // max(per_row, 1))
    out = []
    for x, ids in zip(logits.split(rows), token_ids.split(rows), strict=True):
        x = x.to(dtype)
        if temperature != 1.0:
            x = x / temperature
        picked = x.gather(-1, ids.unsqueeze(-1)).squeeze(-1)
        out.append(picked - torch.logsumexp(x, dim=-1))
    return torch.cat(out)


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(policy || reference), ``[B, T]``, always >= 0.

    ``k3 = exp(x) - x - 1`` with ``x = ref_logprobs - logprobs`` (Schulman's low-variance
    estimator for tokens sampled from the policy). As in the reference's ``low_var_kl`` the
    *value* is clamped to at most ``KL_CLAMP`` = 10 (its lower clamp at -10 never binds). To keep
    gradients finite the *log-ratio* x is first clamped to [-20, 20]; that changes no value,
    since k3 >= 10 already for x <= -11 or x >= 2.6, and clamped tokens get zero gradient either
    way.
    """
    x = (ref_logprobs.float() - logprobs.float()).clamp(-20.0, 20.0)
    return (torch.exp(x) - x - 1.0).clamp(max=KL_CLAMP)


def sampler_weights(
    trainer_logprobs: torch.Tensor,
    sampler_logprobs: torch.Tensor,
    mask: torch.Tensor,
    correction: str = "token_truncate",
    cap: float = SAMPLER_CAP,
    floor: float | None = None,
) -> torch.Tensor:
    """Importance weights ``[B, T]`` that correct for the sampler not being the trainer.

    The engine (vLLM, in bf16 or with its own kernels) samples from a slightly different
    distribution than the trainer's recomputation of the same policy. With the per-token
    log-ratio ``d = (trainer_logprobs - sampler_logprobs) * mask``:

    - ``token_truncate``: ``w_t = min(exp(d_t), cap)``, truncated importance sampling (TIS;
      TRL's ``vllm_importance_sampling_mode="token_truncate"``, verl's
      ``rollout_is_level=token, rollout_is_mode=truncate``);
    - ``sequence_mask``: ``r = exp(sum_t d_t)`` per sequence; every token of the sequence gets
      ``w = r`` when ``floor <= r <= cap`` and 0 otherwise (the sequence is masked out). This is
      TRL's default (``GRPOTrainer._generate_and_score_completions``,
      ``vllm_importance_sampling_mode="sequence_mask"``, ``vllm_importance_sampling_clip_max=3``,
      ``clip_min=None``: no lower bound); verl's ``mismatch_helper`` masks outside
      ``[1/cap, cap]`` by default (``rollout_is_threshold_lower: null`` = ``1/upper``): pass
      ``floor=1/cap`` for that;
    - ``none``: all 1.

    The weights multiply each token's clipped loss, as TRL does; masked tokens still count in
    the loss's divisor. Positions off the mask get weight 0. Detached (no gradient).
    """
    if correction not in SAMPLER_CORRECTIONS:
        raise ValueError(f"unknown sampler correction {correction!r}; use {SAMPLER_CORRECTIONS}")
    mask = mask.to(torch.float32)
    diff = (trainer_logprobs.detach().float() - sampler_logprobs.float()) * mask
    if correction == "none":
        return mask.clone()
    if correction == "token_truncate":
        # min(exp(d), cap) = exp(min(d, log cap)); the lower clamp only keeps exp finite
        return torch.exp(diff.clamp(-20.0, math.log(cap))) * mask
    ratio = torch.exp(diff.sum(-1, keepdim=True).clamp(-20.0, 20.0))  # [B, 1]
    keep = ratio <= cap
    if floor is not None:
        keep &= ratio >= floor
    return torch.where(keep, ratio, torch.zeros_like(ratio)) * mask


def sampler_mismatch(
    trainer_logprobs: torch.Tensor,
    sampler_logprobs: torch.Tensor,
    mask: torch.Tensor,
    cap: float = SAMPLER_CAP,
    floor: float | None = None,
) -> dict[str, float]:
    """How far the sampler's token log-probs are from the trainer's, over the masked tokens.

    - ``abs_mean``, ``abs_max``: mean and max of ``|trainer - sampler|``;
    - ``kl_k3``: mean k3 estimate of KL(sampler || trainer) on the sampler's own tokens,
      ``exp(x) - x - 1`` with ``x = trainer - sampler`` (``kl_k3``, value capped at 10);
    - ``masked_share``: share of tokens in sequences ``sequence_mask`` would mask at ``cap``
      (and ``floor``), whatever correction is on: the measure behind choosing one;
    - ``truncated_share``: share of tokens whose ratio ``token_truncate`` would cut to ``cap``;
    - ``seq_ratio_min``, ``seq_ratio_max``: the extreme sequence ratios ``exp(sum_t d_t)``
      (what ``sequence_mask`` compares with ``cap``; 1 for an empty batch).

    The names follow verl's ``mismatch/*`` metrics (``mismatch_k3_kl``,
    ``rollout_is_masked_fraction``). All 0 for an empty mask.
    """
    m = mask.bool()
    tokens = max(int(m.sum()), 1)
    diff = (trainer_logprobs.float() - sampler_logprobs.float()).masked_fill(~m, 0.0)
    seq = sampler_weights(trainer_logprobs, sampler_logprobs, mask, "sequence_mask", cap, floor)
    masked = m & (seq == 0)
    seq_log = diff.sum(-1).clamp(-20.0, 20.0) if diff.numel() else torch.zeros(1)
    return {
        "abs_mean": float(diff.abs().sum()) / tokens,
        "abs_max": float(diff.abs().max()) if diff.numel() else 0.0,
        "kl_k3": float((kl_k3(sampler_logprobs, trainer_logprobs) * m).sum()) / tokens,
        "masked_share": float(masked.sum()) / tokens,
        "truncated_share": float((m & (diff > math.log(cap))).sum()) / tokens,
        "seq_ratio_min": math.exp(float(seq_log.min())),
        "seq_ratio_max": math.exp(float(seq_log.max())),
    }


def aggregate(
    values: torch.Tensor,
    mask: torch.Tensor,
    aggregation: str = AGGREGATION,
    norm_length: int | None = None,
    *,
    total_tokens: float | torch.Tensor | None = None,
    total_sequences: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """Reduce per-token ``values`` ``[B, T]`` over the tokens where ``mask`` ``[B, T]`` is set.

    - ``token_mean``: sum over all masked tokens / their number (DAPO; the default);
    - ``seq_mean_token_mean``: each sequence's token mean, averaged over the B sequences
      (original GRPO; the released solver's, whose micro-batch 1 makes its per-micro-batch
      token means per-sequence ones);
    - ``seq_mean_token_sum_norm``: each sequence's token sum / a constant length, averaged over
      the B sequences (Dr. GRPO). The constant is ``norm_length``, default ``T``; pass the
      generation budget to keep it fixed across minibatches.

    When ``values`` is one micro-batch of a larger minibatch, ``total_tokens`` (the
    minibatch's masked tokens) and ``total_sequences`` (its sequences) replace this batch's
    own counts as the divisors: the micro-batches' results then add up to the minibatch's,
    whatever the split.

    A sequence (or a batch) without masked tokens contributes 0; never NaN.
    """
    mask = mask.to(values.dtype)
    masked = values * mask
    sequences = values.shape[0] if total_sequences is None else total_sequences
    sequences = max(float(sequences), 1.0)
    if aggregation == "token_mean":
        tokens = mask.sum() if total_tokens is None else torch.as_tensor(total_tokens)
        return masked.sum() / tokens.to(values.dtype).clamp(min=1.0)
    if aggregation == "seq_mean_token_mean":
        return (masked.sum(-1) / mask.sum(-1).clamp(min=1.0)).sum() / sequences
    if aggregation == "seq_mean_token_sum_norm":
        length = mask.shape[-1] if norm_length is None else norm_length
        return (masked.sum(-1) / length).sum() / sequences
    raise ValueError(f"unknown aggregation {aggregation!r}; use one of {AGGREGATIONS}")


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_low: float = CLIP_LOW,
    clip_high: float = CLIP_HIGH,
    dual_clip: float | None = DUAL_CLIP,
    ref_logprobs: torch.Tensor | None = None,
    kl_coef: float = 0.0,
    aggregation: str = AGGREGATION,
    norm_length: int | None = None,
    total_tokens: float | torch.Tensor | None = None,
    total_sequences: float | torch.Tensor | None = None,
    sampler_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped GRPO loss (to minimise) and detached metrics.

    Args:
        logprobs: ``[B, T]`` current policy log-probs of the sampled tokens (with grad).
        old_logprobs: ``[B, T]`` log-probs of the policy that sampled them (no grad).
        advantages: ``[B]`` one advantage per sequence, broadcast to its tokens.
        mask: ``[B, T]`` 1 on response tokens, 0 on padding.
        clip_low, clip_high: the ratio ``r = exp(logprobs - old_logprobs)`` is clipped to
            ``[1 - clip_low, 1 + clip_high]`` (asymmetric "clip-higher").
        dual_clip: for A < 0 the token loss is capped at ``-A * dual_clip`` (> 1; None: off).
        ref_logprobs, kl_coef: ``[B, T]`` reference log-probs; when given and ``kl_coef > 0``
            the loss gains ``kl_coef * aggregate(kl_k3(logprobs, ref_logprobs))``.
        aggregation, norm_length: how token losses are reduced (see ``aggregate``).
        total_tokens, total_sequences: the minibatch's counts when this is one micro-batch
            of it (see ``aggregate``); the metrics stay this micro-batch's own.
        sampler_weights: ``[B, T]`` importance weights for the sampler-trainer mismatch
            (``sampler_weights``), multiplied into each token's clipped loss; None: all 1.

    Per token, with ``c = clip(r, 1 - clip_low, 1 + clip_high)``:
    ``loss = max(-A r, -A c)``, then for A < 0 ``loss = min(loss, -A dual_clip)``. So for A > 0
    the objective stops growing once r > 1 + clip_high ("high" clip); for A < 0 it stops once
    r < 1 - clip_low ("low" clip), and once r > dual_clip the loss is a constant ("dual" clip).
    Clipped tokens contribute no gradient.

    Metrics (0-dim detached tensors, token fractions over masked tokens): ``pg_loss``, ``kl``
    (0 without a reference), ``clip_frac_low``, ``clip_frac_high``, ``clip_frac_dual``,
    ``ratio_mean``, ``ratio_min``, ``ratio_max`` (1 when the mask is empty).
    """
    if not 0 <= clip_low < 1 or clip_high < 0:
        raise ValueError(f"need 0 <= clip_low < 1 and clip_high >= 0, got {clip_low}, {clip_high}")
    if dual_clip is not None and dual_clip <= 1:
        raise ValueError(f"dual_clip must be > 1 (or None), got {dual_clip}")
    if advantages.shape != logprobs.shape[:1]:
        raise ValueError(
            f"advantages {tuple(advantages.shape)} must be [B] for logprobs {tuple(logprobs.shape)}"
        )

    adv = advantages.to(logprobs.dtype).unsqueeze(-1)  # [B, 1]
    # exp of a clamped log-ratio: a stale token with a huge ratio must not overflow to inf
    ratio = torch.exp((logprobs - old_logprobs).clamp(-20.0, 20.0))
    clipped = ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    token_loss = torch.maximum(-adv * ratio, -adv * clipped)
    negative = adv < 0
    if dual_clip is not None:
        token_loss = torch.where(negative, torch.minimum(token_loss, -adv * dual_clip), token_loss)
    if sampler_weights is not None:
        token_loss = token_loss * sampler_weights.to(token_loss.dtype)

    totals = {"total_tokens": total_tokens, "total_sequences": total_sequences}
    loss = aggregate(token_loss, mask, aggregation, norm_length, **totals)
    pg_loss = aggregate(token_loss.detach(), mask, aggregation, norm_length)
    kl = torch.zeros((), dtype=pg_loss.dtype, device=pg_loss.device)
    if ref_logprobs is not None:
        token_kl = kl_k3(logprobs, ref_logprobs)
        kl = aggregate(token_kl.detach(), mask, aggregation, norm_length)
        if kl_coef > 0:
            loss = loss + kl_coef * aggregate(token_kl, mask, aggregation, norm_length, **totals)

    with torch.no_grad():  # metrics without a host sync: no boolean indexing
        m = mask.bool()
        n_tokens = m.sum()
        denom = n_tokens.clamp(min=1)

        def frac(active: torch.Tensor) -> torch.Tensor:
            return (active & m).sum() / denom

        r = ratio.detach()
        one = torch.ones((), dtype=r.dtype, device=r.device)
        some = n_tokens > 0
        dual = negative & (r > dual_clip) if dual_clip is not None else torch.zeros_like(m)
        metrics = {
            "pg_loss": pg_loss.detach(),
            "kl": kl.detach(),
            "clip_frac_low": frac(negative & (r < 1.0 - clip_low)),
            "clip_frac_high": frac((adv > 0) & (r > 1.0 + clip_high)),
            "clip_frac_dual": frac(dual),
            "ratio_mean": torch.where(some, (r * m).sum() / denom, one),
            "ratio_min": torch.where(some, r.masked_fill(~m, float("inf")).min(), one),
            "ratio_max": torch.where(some, r.masked_fill(~m, float("-inf")).max(), one),
        }
    return loss, metrics


class GRPOLoss:
    """The GRPO objective's settings (defaults: R-Zero's reference configuration, but for the
    aggregation: ``token_mean``, where the released solver's is ``seq_mean_token_mean``).

    Args:
        clip_low: Lower PPO ratio bound is ``1 - clip_low``.
        clip_high: Upper PPO ratio bound is ``1 + clip_high`` (clip-higher).
        dual_clip: Cap on the loss of negative-advantage tokens; None disables.
        kl_coef: Weight of the k3 KL to the reference, added to the loss; 0 disables.
        reference: The KL reference: ``start``, the role's weights as its phase began (the
            released code: each stage's reference is the model it starts from, i.e. the
            previous iteration's role weights), or ``base``, the original base model.
        aggregation: ``token_mean`` (DAPO), ``seq_mean_token_mean`` (GRPO) or
            ``seq_mean_token_sum_norm`` (Dr. GRPO). Each is taken over a whole minibatch
            (one optimizer update), however it is split into micro-batches.
        norm_length: Dr. GRPO's constant length; None: the sampling's ``max_new_tokens``.
        advantage_scale: ``group`` (GRPO), ``batch`` or ``none`` (Dr. GRPO).
        sampler_correction: Correct for the engine sampling from a slightly different
            distribution than the trainer's (``sampler_weights``): ``none``,
            ``token_truncate`` (TIS) or ``sequence_mask`` (TRL's default). Needs the engine's
            ``return_logprobs``; the mismatch is logged whenever they are returned.
        sampler_cap: The correction's upper bound C on an importance ratio (> 1; TRL: 3).
        sampler_floor: ``sequence_mask`` also masks a sequence whose ratio is below this
            (None: no lower bound, as TRL; verl's default is ``1 / sampler_cap``).
    """

    def __init__(
        self,
        clip_low: float = CLIP_LOW,
        clip_high: float = CLIP_HIGH,
        dual_clip: float | None = DUAL_CLIP,
        kl_coef: float = KL_COEF,
        reference: Literal["start", "base"] = "start",
        aggregation: Literal[
            "token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"
        ] = AGGREGATION,
        norm_length: int | None = None,
        advantage_scale: Literal["group", "batch", "none"] = "group",
        sampler_correction: Literal["none", "token_truncate", "sequence_mask"] = "none",
        sampler_cap: float = SAMPLER_CAP,
        sampler_floor: float | None = None,
    ) -> None:
        check_number("loss.clip_low", clip_low, at_least=0, at_most=1)
        check_number("loss.clip_high", clip_high, at_least=0)
        check_number("loss.dual_clip", dual_clip, above=1, optional=True)
        check_number("loss.kl_coef", kl_coef, at_least=0)
        check_number("loss.norm_length", norm_length, at_least=1, at_most=MAX_TOKENS, optional=True)
        check_number("loss.sampler_cap", sampler_cap, above=1)
        check_number("loss.sampler_floor", sampler_floor, above=0, at_most=1, optional=True)
        if sampler_correction not in SAMPLER_CORRECTIONS:
            raise ValueError(
                f"loss.sampler_correction {sampler_correction!r}: use one of {SAMPLER_CORRECTIONS}"
            )
        self.clip_low = clip_low
        self.clip_high = clip_high
        self.dual_clip = dual_clip
        self.kl_coef = kl_coef
        self.reference = reference
        self.aggregation = aggregation
        self.norm_length = norm_length
        self.advantage_scale = advantage_scale
        self.sampler_correction = sampler_correction
        self.sampler_cap = sampler_cap
        self.sampler_floor = sampler_floor
