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

    - ``token_mean``: sum over all masked tokens / their number (DAPO; the reference);
    - ``seq_mean_token_mean``: each sequence's token mean, averaged over the B sequences
      (original GRPO);
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
    """The GRPO objective's settings (defaults: R-Zero's reference configuration).

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
    ) -> None:
        check_number("loss.clip_low", clip_low, at_least=0, at_most=1)
        check_number("loss.clip_high", clip_high, at_least=0)
        check_number("loss.dual_clip", dual_clip, above=1, optional=True)
        check_number("loss.kl_coef", kl_coef, at_least=0)
        check_number("loss.norm_length", norm_length, at_least=1, at_most=MAX_TOKENS, optional=True)
        self.clip_low = clip_low
        self.clip_high = clip_high
        self.dual_clip = dual_clip
        self.kl_coef = kl_coef
        self.reference = reference
        self.aggregation = aggregation
        self.norm_length = norm_length
        self.advantage_scale = advantage_scale
