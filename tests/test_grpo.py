"""GRPO functions against hand-computed numbers."""

import math

import pytest
import torch

from rzero_pl.grpo.loss import (
    CLIP_HIGH,
    CLIP_LOW,
    DUAL_CLIP,
    KL_COEF,
    aggregate,
    group_advantages,
    kl_k3,
    policy_loss,
    token_logprobs,
)


def close(actual, expected, tol=1e-6):
    torch.testing.assert_close(
        torch.as_tensor(actual, dtype=torch.float64),
        torch.as_tensor(expected, dtype=torch.float64),
        atol=tol,
        rtol=tol,
    )


def test_reference_defaults():
    assert (CLIP_LOW, CLIP_HIGH, DUAL_CLIP, KL_COEF) == (0.2, 0.3, 3.0, 0.01)


# --------------------------------------------------------------------------- advantages

REWARDS = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.5, 0.5, 0.5, 0.5])


def test_group_advantages_group_scale():
    # group 1: mean 0.5, unbiased std sqrt((4 * 0.25) / 3) = 1/sqrt(3); group 2 is constant
    a = 0.5 / (1 / math.sqrt(3) + 1e-6)
    close(group_advantages(REWARDS, 4), [a, -a, -a, a, 0, 0, 0, 0])


def test_group_advantages_batch_scale():
    # batch mean 0.5, squared deviations 4 * 0.25 + 4 * 0 = 1, unbiased var 1/7
    a = 0.5 / (math.sqrt(1 / 7) + 1e-6)
    close(group_advantages(REWARDS, 4, scale="batch"), [a, -a, -a, a, 0, 0, 0, 0])


def test_group_advantages_no_scale():
    close(group_advantages(REWARDS, 4, scale="none"), [0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0])
    # groups of 2: [1, 0] [0, 1] [.5, .5] [.5, .5]
    close(group_advantages(REWARDS, 2, scale="none"), [0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0])


def test_group_advantages_groups_are_consecutive():
    rewards = torch.tensor([0.0, 2.0, 10.0, 20.0])
    # group [0, 2]: mean 1, std sqrt(2); group [10, 20]: mean 15, std sqrt(50)
    a, b = 1 / (math.sqrt(2) + 1e-6), 5 / (math.sqrt(50) + 1e-6)
    close(group_advantages(rewards, 2), [-a, a, -b, b])


@pytest.mark.parametrize(
    ("rewards", "group_size", "scale"),
    [
        (torch.zeros(6), 4, "group"),  # not a multiple
        (torch.zeros(6), 0, "none"),
        (torch.zeros(4), 1, "group"),  # std of one reward
        (torch.zeros(4), 2, "mean"),  # unknown scale
        (torch.zeros(2, 2), 2, "group"),  # not 1-D
        (torch.zeros(1), 1, "batch"),
    ],
)
def test_group_advantages_rejects(rewards, group_size, scale):
    with pytest.raises(ValueError):
        group_advantages(rewards, group_size, scale=scale)


def test_group_advantages_group_size_one_without_std():
    close(group_advantages(torch.tensor([3.0, 4.0]), 1, scale="none"), [0.0, 0.0])


# --------------------------------------------------------------------------- log-probs


def test_token_logprobs_hand():
    logits = torch.tensor([[[0.0, math.log(3.0)], [math.log(3.0), 0.0]]])  # [1, 2, 2]
    ids = torch.tensor([[1, 1]])
    close(token_logprobs(logits, ids), [[math.log(0.75), math.log(0.25)]])
    # temperature 2: softmax([0, log(3)/2]) = [1, sqrt 3] / (1 + sqrt 3)
    s3 = math.sqrt(3.0)
    expected = [[math.log(s3 / (1 + s3)), math.log(1 / (1 + s3))]]
    close(token_logprobs(logits, ids, temperature=2.0), expected)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("chunk_size", [1, 3, 1024])
def test_token_logprobs_matches_log_softmax(temperature, chunk_size):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 11, generator=g, requires_grad=True)
    ids = torch.randint(0, 11, (3, 5), generator=g)
    ours = token_logprobs(logits, ids, temperature, chunk_size=chunk_size)
    (grad_ours,) = torch.autograd.grad(ours.sum(), logits)
    theirs = torch.log_softmax(logits / temperature, -1).gather(-1, ids[..., None]).squeeze(-1)
    (grad_theirs,) = torch.autograd.grad(theirs.sum(), logits)
    close(ours, theirs)
    close(grad_ours, grad_theirs)


def test_token_logprobs_upcasts_bf16():
    logits = torch.randn(2, 3, 7).to(torch.bfloat16)
    ids = torch.zeros(2, 3, dtype=torch.long)
    out = token_logprobs(logits, ids)
    assert out.dtype == torch.float32
    close(out, torch.log_softmax(logits.float(), -1)[..., 0])


def test_token_logprobs_shape_mismatch():
    with pytest.raises(ValueError):
        token_logprobs(torch.zeros(2, 3, 4), torch.zeros(2, 4, dtype=torch.long))


# --------------------------------------------------------------------------- KL


def test_kl_k3_hand():
    lp = torch.zeros(5)
    ref = torch.tensor([0.0, math.log(2.0), -1.0, 3.0, -9.0])
    expected = [
        0.0,
        2.0 - math.log(2.0) - 1.0,  # 0.3069
        math.exp(-1.0),  # e^-1 + 1 - 1
        10.0,  # e^3 - 4 = 16.09, capped
        math.exp(-9.0) + 8.0,  # below the cap
    ]
    close(kl_k3(lp, ref), expected)


def test_kl_k3_clamps_the_value_not_the_log_ratio():
    # x = -15: k3 = e^-15 + 14 -> capped at 10. Clamping x to [-10, 10] instead would give 9.00005.
    close(kl_k3(torch.tensor([15.0]), torch.tensor([0.0])), [10.0])


def test_kl_k3_finite_gradient_at_infinite_log_ratio():
    lp = torch.tensor([0.0, -0.1], requires_grad=True)
    ref = torch.tensor([-math.inf, 0.0])
    kl = kl_k3(lp, ref)
    close(kl[0], 10.0)
    (grad,) = torch.autograd.grad(kl.sum(), lp)
    assert torch.isfinite(grad).all()
    # d/dlp (e^x - x - 1) with x = ref - lp: -(e^x - 1); capped token: 0
    close(grad, [0.0, -(math.exp(0.1) - 1.0)])


# --------------------------------------------------------------------------- aggregation

VALUES = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
MASK = torch.tensor([[1, 1, 0], [1, 0, 0]])


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [
        ("token_mean", (1 + 2 + 4) / 3),
        ("seq_mean_token_mean", (1.5 + 4.0) / 2),
        ("seq_mean_token_sum_norm", (3 / 3 + 4 / 3) / 2),
    ],
)
def test_aggregate(aggregation, expected):
    close(aggregate(VALUES, MASK, aggregation), expected)


def test_aggregate_norm_length():
    close(aggregate(VALUES, MASK, "seq_mean_token_sum_norm", norm_length=4), (3 / 4 + 4 / 4) / 2)


@pytest.mark.parametrize(
    "aggregation", ["token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"]
)
def test_aggregate_empty_mask_is_zero(aggregation):
    close(aggregate(VALUES, torch.zeros_like(MASK), aggregation), 0.0)


def test_aggregate_empty_sequence_counts_as_zero():
    mask = torch.tensor([[1, 1, 0], [0, 0, 0]])
    close(aggregate(VALUES, mask, "seq_mean_token_mean"), (1.5 + 0.0) / 2)
    close(aggregate(VALUES, mask, "token_mean"), 1.5)


def test_aggregate_unknown():
    with pytest.raises(ValueError):
        aggregate(VALUES, MASK, "sum")


# --------------------------------------------------------------------------- policy loss

# one token per sequence; each row exercises one branch (clip 0.2 / 0.3, dual 3)
#            A     ratio  token loss
BRANCHES = [
    (1.0, 1.1, -1.1),  # A > 0, inside the band: -A r
    (1.0, 1.5, -1.3),  # A > 0, high clip: -A (1 + 0.3)
    (1.0, 0.5, -0.5),  # A > 0, below the band: min(r, c) = r, not clipped
    (-1.0, 0.5, 0.8),  # A < 0, low clip: -A (1 - 0.2)
    (-1.0, 2.0, 2.0),  # A < 0, above the band but below dual: -A r
    (-2.0, 4.0, 6.0),  # A < 0, dual clip: min(-A r = 8, -A 3 = 6)
]


def branch_inputs():
    adv = torch.tensor([b[0] for b in BRANCHES])
    ratio = torch.tensor([b[1] for b in BRANCHES])
    old = torch.full((len(BRANCHES), 1), -1.0)
    lp = (old + torch.log(ratio)[:, None]).requires_grad_()
    return lp, old, adv, torch.ones_like(old)


def test_policy_loss_branches():
    lp, old, adv, mask = branch_inputs()
    loss, metrics = policy_loss(lp, old, adv, mask)
    close(loss, sum(b[2] for b in BRANCHES) / 6)  # 5.9 / 6
    close(metrics["pg_loss"], 5.9 / 6)
    close(metrics["clip_frac_high"], 1 / 6)
    close(metrics["clip_frac_low"], 1 / 6)
    close(metrics["clip_frac_dual"], 1 / 6)
    close(metrics["ratio_mean"], (1.1 + 1.5 + 0.5 + 0.5 + 2.0 + 4.0) / 6)
    close(metrics["ratio_min"], 0.5)
    close(metrics["ratio_max"], 4.0)
    close(metrics["kl"], 0.0)
    assert all(not v.requires_grad for v in metrics.values())
    # d loss / d lp = -A r / 6 on unclipped tokens, 0 on clipped ones
    (grad,) = torch.autograd.grad(loss, lp)
    close(grad[:, 0], [-1.1 / 6, 0.0, -0.5 / 6, 0.0, 2.0 / 6, 0.0])


def test_policy_loss_without_dual_clip():
    lp, old, adv, mask = branch_inputs()
    loss, metrics = policy_loss(lp, old, adv, mask, dual_clip=None)
    close(loss, (5.9 - 6.0 + 8.0) / 6)  # the last token keeps -A r = 8
    close(metrics["clip_frac_dual"], 0.0)
    (grad,) = torch.autograd.grad(loss, lp)
    close(grad[5, 0], 2.0 * 4.0 / 6)


def test_policy_loss_mask_excludes_tokens():
    lp, old, adv, mask = branch_inputs()
    mask[5] = 0  # drop the dual-clipped token
    loss, metrics = policy_loss(lp, old, adv, mask)
    close(loss, (5.9 - 6.0) / 5)
    close(metrics["clip_frac_dual"], 0.0)
    close(metrics["clip_frac_low"], 1 / 5)
    close(metrics["ratio_max"], 2.0)


def test_policy_loss_asymmetric_bounds():
    lp, old, adv, mask = branch_inputs()
    # with clip_high 0.6 the 1.5 ratio is inside the band: -1.5 instead of -1.3
    loss, metrics = policy_loss(lp, old, adv, mask, clip_high=0.6)
    close(loss, (5.9 + 1.3 - 1.5) / 6)
    close(metrics["clip_frac_high"], 0.0)


def test_policy_loss_kl_term():
    lp = torch.zeros(2, 3, requires_grad=True)
    ref = torch.full((2, 3), math.log(2.0))
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    adv = torch.zeros(2)
    k3 = 2.0 - math.log(2.0) - 1.0
    loss, metrics = policy_loss(lp, lp.detach(), adv, mask, ref_logprobs=ref, kl_coef=0.01)
    close(loss, 0.01 * k3)
    close(metrics["kl"], k3)
    close(metrics["pg_loss"], 0.0)
    # d/dlp of 0.01 * mean k3 = 0.01 * -(e^x - 1) / 4 on the 4 masked tokens
    (grad,) = torch.autograd.grad(loss, lp)
    g = -0.01 * (2.0 - 1.0) / 4
    close(grad, [[g, g, g], [g, 0.0, 0.0]])
    # coefficient 0: the KL is reported but not optimised
    loss, metrics = policy_loss(lp, lp.detach(), adv, mask, ref_logprobs=ref, kl_coef=0.0)
    close(loss, 0.0)
    close(metrics["kl"], k3)


def test_policy_loss_empty_mask():
    lp, old, adv, mask = branch_inputs()
    loss, metrics = policy_loss(lp, old, adv, torch.zeros_like(mask))
    close(loss, 0.0)
    for key in ("ratio_mean", "ratio_min", "ratio_max"):
        close(metrics[key], 1.0)
    for key in ("clip_frac_low", "clip_frac_high", "clip_frac_dual"):
        close(metrics[key], 0.0)


@pytest.mark.parametrize(
    "kwargs", [{"dual_clip": 1.0}, {"dual_clip": 0.5}, {"clip_low": 1.0}, {"clip_high": -0.1}]
)
def test_policy_loss_rejects_bad_clips(kwargs):
    lp, old, adv, mask = branch_inputs()
    with pytest.raises(ValueError):
        policy_loss(lp, old, adv, mask, **kwargs)


def test_policy_loss_rejects_token_level_advantages():
    lp, old, adv, mask = branch_inputs()
    with pytest.raises(ValueError):
        policy_loss(lp, old, adv[:, None].expand_as(lp), mask)


# --------------------------------------------------------------------------- on-policy gradient


def test_on_policy_gradient_is_vanilla_policy_gradient():
    """With old == current log-probs the ratio is 1 and the loss gradient is -A_i mask / N."""
    g = torch.Generator().manual_seed(1)
    lp = (-torch.rand(4, 5, generator=g)).requires_grad_()
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 0, 0, 0]])
    adv = group_advantages(torch.tensor([1.0, 0.0, 0.0, 1.0]), group_size=2)
    loss, metrics = policy_loss(lp, lp.detach(), adv, mask)
    (grad,) = torch.autograd.grad(loss, lp)
    close(grad, -adv[:, None] * mask / mask.sum())
    close(metrics["ratio_mean"], 1.0)
    # seq_mean_token_mean: -A_i mask / (B n_i)
    loss, _ = policy_loss(lp, lp.detach(), adv, mask, aggregation="seq_mean_token_mean")
    (grad,) = torch.autograd.grad(loss, lp)
    close(grad, -adv[:, None] * mask / (4 * mask.sum(-1, keepdim=True)))


def test_tiny_linear_policy_matches_reinforce():
    """logits = W x: autograd through the loss equals the analytic REINFORCE gradient."""
    g = torch.Generator().manual_seed(2)
    batch, steps, dim, vocab, group = 4, 6, 3, 5, 2
    w = torch.randn(vocab, dim, generator=g, dtype=torch.float64, requires_grad=True)
    x = torch.randn(batch, steps, dim, generator=g, dtype=torch.float64)
    with torch.no_grad():
        probs = torch.softmax(x @ w.T, -1)
        actions = torch.multinomial(probs.view(-1, vocab), 1, generator=g).view(batch, steps)
    mask = torch.ones(batch, steps)
    mask[0, 4:] = 0
    mask[3, 2:] = 0
    adv = group_advantages(torch.tensor([1.0, 0.0, 0.3, 0.9], dtype=torch.float64), group)

    lp = token_logprobs(x @ w.T, actions)
    loss, _ = policy_loss(lp, lp.detach(), adv, mask)
    (grad,) = torch.autograd.grad(loss, w)

    # grad log pi(a | x) w.r.t. W = (onehot(a) - softmax(W x)) x^T
    score = torch.nn.functional.one_hot(actions, vocab).double() - probs  # [B, T, V]
    weight = adv[:, None] * mask.double() / mask.sum()  # [B, T]
    expected = -torch.einsum("bt,btv,btd->vd", weight, score, x)
    close(grad, expected, tol=1e-10)


def _rollout(advantage, n_tokens=2):
    from rzero_pl.grpo.rollout import Rollout

    return Rollout([1], [2] * n_tokens, "", 0, 0, advantage=advantage)


def test_keep_informative_tops_up_in_order():
    from rzero_pl.grpo.rollout import keep_informative

    rows = [_rollout(a) for a in (0.0, 1.5, 0.0, -1.5, 0.0)]
    assert keep_informative(rows, 2) == [rows[1], rows[3]]
    assert keep_informative(rows, 3) == [rows[0], rows[1], rows[3]]  # one signal-free top-up
    assert keep_informative(rows, 9) == rows  # never more than there are
    assert keep_informative(rows, 0) == [rows[1], rows[3]]  # informative rows are never dropped
    assert keep_informative([_rollout(0.0)] * 3, 1) == [_rollout(0.0)]


def test_dropping_signal_free_rollouts_only_rescales_the_gradient():
    """Without KL, zero-advantage rows add no gradient; token_mean then divides by fewer tokens."""
    torch.manual_seed(0)
    logits = torch.randn(4, 3, 5, requires_grad=True)
    targets = torch.randint(0, 5, (4, 3))
    advantages = torch.tensor([0.0, 1.0, 0.0, -1.0])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])

    def grad(rows):
        lp = token_logprobs(logits[rows], targets[rows])
        loss, _ = policy_loss(lp, lp.detach(), advantages[rows], mask[rows], kl_coef=0.0)
        (g,) = torch.autograd.grad(loss, logits)
        return g

    every, informative = grad([0, 1, 2, 3]), grad([1, 3])
    close(informative * 5 / 8, every)  # 5 of the 8 completion tokens are informative
