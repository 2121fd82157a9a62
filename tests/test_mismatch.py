"""The sampler-trainer mismatch: hand-computed importance weights, metrics, and the wiring."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from builders import attached, tiny_solver

from rzero_pl.engines import Completion, Generation, HFEngine
from rzero_pl.errors import ConfigError
from rzero_pl.grpo import module as grpo_module
from rzero_pl.grpo.loss import GRPOLoss, policy_loss, sampler_mismatch, sampler_weights
from rzero_pl.grpo.rollout import collate, to_rollouts
from rzero_pl.questions import JsonlQuestions

LN2 = math.log(2.0)


def hand_case():
    """Two sequences; trainer - sampler log-ratios d: A = [ln 4, 0, 0], B = [ln 2, -ln 2, pad]."""
    sampler = torch.tensor([[-2.0, -1.0, -0.5], [-1.0, -0.3, -7.0]])
    d = torch.tensor([[2 * LN2, 0.0, 0.0], [LN2, -LN2, 5.0]])  # the pad's 5.0 must not count
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    return sampler + d, sampler, mask


def test_token_truncate_by_hand():
    trainer, sampler, mask = hand_case()
    w = sampler_weights(trainer, sampler, mask, "token_truncate", cap=3.0)
    # min(exp(d), 3): 4 -> 3, 1, 1; 2, 0.5, and 0 off the mask
    assert torch.allclose(w, torch.tensor([[3.0, 1.0, 1.0], [2.0, 0.5, 0.0]]), atol=1e-6)


def test_sequence_mask_by_hand():
    trainer, sampler, mask = hand_case()
    w = sampler_weights(trainer, sampler, mask, "sequence_mask", cap=3.0)
    # A: exp(ln 4) = 4 > 3: masked; B: exp(ln 2 - ln 2) = 1, kept with weight 1
    assert torch.allclose(w, torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 0.0]]), atol=1e-6)
    w = sampler_weights(trainer, sampler, mask, "sequence_mask", cap=5.0)
    assert torch.allclose(w, torch.tensor([[4.0, 4.0, 4.0], [1.0, 1.0, 0.0]]), atol=1e-5)


def test_sequence_mask_floor_masks_a_low_ratio():
    sampler = torch.tensor([[-1.0, -1.0]])
    trainer = sampler + torch.tensor([[-LN2, -LN2]])  # ratio 1/4
    mask = torch.ones(1, 2)
    # TRL's default has no lower bound: the sequence keeps its weight 1/4
    kept = sampler_weights(trainer, sampler, mask, "sequence_mask", cap=3.0)
    assert torch.allclose(kept, torch.full((1, 2), 0.25))
    # verl's default floor 1/cap = 1/3 > 1/4: masked
    masked = sampler_weights(trainer, sampler, mask, "sequence_mask", cap=3.0, floor=1 / 3)
    assert torch.equal(masked, torch.zeros(1, 2))


def test_no_correction_is_the_mask():
    trainer, sampler, mask = hand_case()
    assert torch.equal(sampler_weights(trainer, sampler, mask, "none"), mask)
    with pytest.raises(ValueError, match="unknown sampler correction"):
        sampler_weights(trainer, sampler, mask, "token_mask")


def test_mismatch_metrics_by_hand():
    trainer, sampler, mask = hand_case()
    m = sampler_mismatch(trainer, sampler, mask, cap=3.0)
    assert m["abs_mean"] == pytest.approx(4 * LN2 / 5)  # ln 4 + ln 2 + ln 2 over 5 tokens
    assert m["abs_max"] == pytest.approx(2 * LN2)
    # k3 = exp(x) - x - 1 per token: (3 - ln 4) + 0 + 0 + (1 - ln 2) + (ln 2 - 0.5)
    assert m["kl_k3"] == pytest.approx((3.5 - 2 * LN2) / 5)
    assert m["masked_share"] == pytest.approx(3 / 5)  # sequence A's 3 tokens
    assert m["truncated_share"] == pytest.approx(1 / 5)  # A's first token: 4 > 3
    assert (m["seq_ratio_min"], m["seq_ratio_max"]) == pytest.approx((1.0, 4.0))  # B, A


def test_mismatch_metrics_of_an_empty_mask_are_zero():
    z = torch.zeros(2, 0)
    m = sampler_mismatch(z, z, z)
    assert (m.pop("seq_ratio_min"), m.pop("seq_ratio_max")) == (1.0, 1.0)
    assert set(m.values()) == {0.0}


def test_policy_loss_multiplies_the_weights_into_token_losses():
    lp = torch.zeros(1, 3, requires_grad=True)
    weights = torch.tensor([[3.0, 1.0, 1.0]])
    mask = torch.ones(1, 3)
    loss, _ = policy_loss(lp, lp.detach(), torch.tensor([1.0]), mask, sampler_weights=weights)
    # ratio 1: token loss -A = -1 each; weighted (3 + 1 + 1) / 3 tokens
    assert float(loss.detach()) == pytest.approx(-5 / 3)
    loss.backward()
    assert torch.allclose(lp.grad, -weights / 3)


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"sampler_cap": 1.0}, "loss.sampler_cap"),
        ({"sampler_floor": 0.0}, "loss.sampler_floor"),
        ({"sampler_correction": "token_mask"}, "loss.sampler_correction"),
    ],
)
def test_grpo_loss_refuses_bad_settings(kwargs, key):
    with pytest.raises((ConfigError, ValueError), match=key):
        GRPOLoss(**kwargs)


def test_grpo_loss_correction_is_off_by_default():
    s = GRPOLoss()
    assert (s.sampler_correction, s.sampler_cap, s.sampler_floor) == ("none", 3.0, None)


def test_rollouts_keep_the_engine_logprobs_and_collate_the_weights():
    gen = Generation("p", [5, 6], [Completion("c", [7, 8], "stop", 0, [-0.1, -0.2])])
    (r,) = to_rollouts([gen], 0)
    assert r.sampler_logprobs == [-0.1, -0.2]
    batch = collate([replace(r, sampler_weights=[1.5, 0.5])], pad_id=0)
    # position t scores token t + 1: the completion's two tokens sit at positions 1 and 2
    assert batch["sampler_weights"].tolist() == [[0.0, 1.5, 0.5]]
    bad = Generation("p", [5], [Completion("c", [7, 8], "stop", 0, [-0.1])])
    with pytest.raises(RuntimeError, match="1 log-probs for 2 sampled tokens"):
        to_rollouts([bad], 0)


class ShiftedEngine(HFEngine):
    """The HF engine whose reported log-probs are all ``shift`` below the truth."""

    def __init__(self, shift: float) -> None:
        super().__init__(return_logprobs=True)
        self.shift = shift

    def generate(self, prompts, *, role, params):
        generations = super().generate(prompts, role=role, params=params)
        for g in generations:
            for c in g.completions:
                c.logprobs = [lp - self.shift for lp in c.logprobs]
        return generations


def _solver(tiny_model_dir, engine, loss):
    """This file's solver: G = 2, 6 new tokens, a minibatch of 4 in micro-batches of 2."""
    settings = dict(group_size=2, minibatch_size=4, micro_batch_size=2)
    solver = tiny_solver(tiny_model_dir, engine=engine, loss=loss, max_new_tokens=6, **settings)
    return attached(solver)


def test_the_hf_engine_has_no_mismatch(tiny_model_dir, toy_questions_file, monkeypatch):
    module = _solver(tiny_model_dir, HFEngine(return_logprobs=True), GRPOLoss(kl_coef=0.0))
    logged = []  # the rollout step's metrics, as every rank's are combined before logging
    combine = grpo_module.combine_rank_metrics
    monkeypatch.setattr(
        grpo_module, "combine_rank_metrics", lambda m: logged.append(m) or combine(m)
    )
    items = JsonlQuestions(toy_questions_file).load()[:2]
    rollouts = module.rollout(items).rollouts
    assert all(r.sampler_logprobs is not None and r.sampler_weights is None for r in rollouts)
    (metrics,) = logged[0]
    assert metrics["mismatch/abs_max"] < 1e-4 and metrics["mismatch/masked_share"] == 0.0
    assert {"mismatch/abs_mean", "mismatch/kl_k3", "mismatch/truncated_share"} <= set(metrics)


def test_a_shifted_sampler_is_measured_and_corrected(tiny_model_dir, toy_questions_file):
    loss = GRPOLoss(kl_coef=0.0, sampler_correction="token_truncate", sampler_cap=3.0)
    module = _solver(tiny_model_dir, ShiftedEngine(0.5), loss)
    items = JsonlQuestions(toy_questions_file).load()[:2]
    rollouts = module.rollout(items).rollouts
    for r in rollouts:  # every token's ratio is exp(0.5) < 3: kept whole
        assert r.sampler_weights == pytest.approx([math.exp(0.5)] * len(r.completion_ids), 1e-4)
    _, metrics = module._record_logprobs(rollouts)
    assert metrics["abs_mean"] == pytest.approx(0.5, abs=1e-4)
    assert metrics["kl_k3"] == pytest.approx(math.exp(0.5) - 1.5, abs=1e-4)
    # a sequence of n tokens has ratio exp(0.5 n): above 3 from n = 3 on
    long = sum(len(r.completion_ids) for r in rollouts if len(r.completion_ids) >= 3)
    total = sum(len(r.completion_ids) for r in rollouts)
    assert metrics["masked_share"] == pytest.approx(long / total)


def test_a_correction_without_engine_logprobs_is_refused(tiny_model_dir, toy_questions_file):
    module = _solver(tiny_model_dir, HFEngine(), GRPOLoss(sampler_correction="sequence_mask"))
    items = JsonlQuestions(toy_questions_file).load()[:2]
    with pytest.raises(ValueError, match="set engine.return_logprobs true"):
        module.rollout(items)
