"""Faults inside training that must not lose work: bad numbers and bad generations.

Numerical faults: a NaN loss skips its update, is logged with the batch's rollouts, and too
many in a row stop the run with a clear message; an infinite gradient under a finite loss is
skipped too. Generation faults: empty and truncated completions score 0; a challenger step
with no valid question is a logged no-op. Configuration, files and safety: tests/test_faults.py.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from builders import quiet_trainer, tiny_challenger, tiny_solver
from rzero_pl.datamodules import ChallengerPromptsDataModule, LabelledQuestionsDataModule

from rzero_pl.engines import SamplingParams
from rzero_pl.grading.answers import extract_boxed
from rzero_pl.grading.votes import majority_votes
from rzero_pl.ground.update_guard import NonFiniteUpdates, UpdateGuard, finite_gradients
from rzero_pl.grpo import module as grpo_module
from rzero_pl.grpo.module import GRPOLoss
from rzero_pl.grpo.solver import correctness_rewards
from rzero_pl.questions import JsonlQuestions
from rzero_pl.rewards import MajorityVote, QuestionFormat, SolverReading
from rzero_pl.toy.prompts import TOY_SOLVER

# ---------------------------------------------------------------------- numbers


def _solver(tiny_model_dir, **kwargs):
    """This file's solver: LoRA alpha 32, 6 new tokens, no KL, one micro-batch of 8, lr 1e-2."""
    settings = dict(loss=GRPOLoss(kl_coef=0.0), micro_batch_size=8, lr=1e-2)
    return tiny_solver(tiny_model_dir, alpha=32, max_new_tokens=6, **(settings | kwargs))


def _weights(module):
    return [p.detach().clone() for p in module.policy.trainable_parameters(module.role)]


def _nan_loss(monkeypatch, bad_calls):
    """Make the policy loss NaN on the given calls (0-based), real otherwise."""
    real, calls = grpo_module.loss_math.policy_loss, []

    def loss(*args, **kwargs):
        out, metrics = real(*args, **kwargs)
        calls.append(len(calls))
        return (out * float("nan") if calls[-1] in bad_calls else out), metrics

    monkeypatch.setattr(grpo_module.loss_math, "policy_loss", loss)


def _labelled(path):
    return LabelledQuestionsDataModule(JsonlQuestions(path), questions_per_step=2)


def test_nan_updates_are_skipped_logged_and_stop_the_run(
    tiny_model_dir, toy_questions_file, tmp_path, monkeypatch
):
    _nan_loss(monkeypatch, bad_calls=range(100))
    module = _solver(tiny_model_dir, max_bad_updates=2)
    before = _weights(module)
    with pytest.raises(NonFiniteUpdates, match="2 bad updates in a row.*max_bad_updates=2"):
        quiet_trainer(tmp_path, 5, logs="t").fit(module, _labelled(toy_questions_file))
    assert all(torch.equal(a, b) for a, b in zip(before, _weights(module), strict=True))
    rows = [json.loads(x) for x in open(tmp_path / "bad_updates.jsonl")]
    assert len(rows) == 2 and rows[0]["loss"] == "nan"
    assert len(rows[0]["rollouts"]) == 8 and "text" in rows[0]["rollouts"][0]


def test_one_nan_update_is_skipped_and_training_goes_on(
    tiny_model_dir, toy_questions_file, tmp_path, monkeypatch
):
    _nan_loss(monkeypatch, bad_calls={0})
    module = _solver(tiny_model_dir, max_bad_updates=2)
    trainer = quiet_trainer(tmp_path, 2, logs="t")
    trainer.fit(module, _labelled(toy_questions_file))
    guard = next(cb for cb in trainer.callbacks if isinstance(cb, UpdateGuard))
    assert guard.skipped["non_finite"] == 1 and guard.in_a_row == 0
    assert trainer.global_step == 2  # both updates counted, the first one not applied


class _InfiniteGradient(torch.autograd.Function):
    """The identity forward; an infinite gradient backward (a finite loss, a bad update)."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float("inf")


def test_an_infinite_gradient_under_a_finite_loss_is_skipped_and_logged(
    tiny_model_dir, toy_questions_file, tmp_path, monkeypatch
):
    real = grpo_module.loss_math.policy_loss

    def loss(*args, **kwargs):
        out, metrics = real(*args, **kwargs)
        return _InfiniteGradient.apply(out), metrics

    monkeypatch.setattr(grpo_module.loss_math, "policy_loss", loss)
    module = _solver(tiny_model_dir, max_bad_updates=0)  # 0: skip, never stop
    before = _weights(module)
    trainer = quiet_trainer(tmp_path, 2, logs="t")
    trainer.fit(module, _labelled(toy_questions_file))
    assert all(torch.equal(a, b) for a, b in zip(before, _weights(module), strict=True))
    guard = next(cb for cb in trainer.callbacks if isinstance(cb, UpdateGuard))
    assert guard.skipped["non_finite"] == 2 and guard.in_a_row == 2
    rows = [json.loads(x) for x in open(tmp_path / "bad_updates.jsonl")]
    assert [r["loss"] for r in rows] == [None, None]  # the loss was fine; the gradient was not


def test_finite_gradients():
    p = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.AdamW([p])
    assert finite_gradients(optimizer)  # no gradient at all
    p.grad = torch.tensor([1.0, float("inf"), 0.0])
    assert not finite_gradients(optimizer)
    p.grad = torch.zeros(3)
    assert finite_gradients(optimizer)


# ---------------------------------------------------------------------- generations


def test_empty_and_truncated_completions_score_zero():
    completions = ["", "The answer is \\boxed{1", "<question>What is", "\\boxed{3}"]
    answers, rewards = correctness_rewards(completions, ["3", "3", "3", "3"])
    assert answers == [None, None, None, "3"] and rewards == [0.0, 0.0, 0.0, 1.0]
    assert QuestionFormat().parse("<question>What is 2+") == (None, "no_question")  # cut short
    assert QuestionFormat().parse("") == (None, "no_question")
    vote = majority_votes([[extract_boxed(c) for c in completions[:3]]])[0]
    assert vote.label is None and vote.share == 0.0 and vote.num_missing == 3


def test_a_challenger_step_without_a_valid_question_is_a_logged_no_op(tiny_model_dir, tmp_path):
    # A random tiny model never writes a <question> block: every reward is 0.
    module = tiny_challenger(
        tiny_model_dir,
        alpha=32,
        max_new_tokens=8,
        loss=GRPOLoss(kl_coef=0.0),
        micro_batch_size=8,
        lr=1e-2,
    )
    before = _weights(module)
    votes = MajorityVote(samples=2, sampling=SamplingParams(max_new_tokens=4))
    module.bind(module.actor, votes.bound_to(SolverReading(TOY_SOLVER)))
    trainer = quiet_trainer(tmp_path, 1, logs="t")
    with pytest.warns(UserWarning, match="every advantage is 0"):
        trainer.fit(module, ChallengerPromptsDataModule(slots_per_step=2))
    from builders import tensorboard_scalars

    logged = tensorboard_scalars(trainer.logger.log_dir)
    assert [e.value for e in logged["challenger/reward_max"]] == [0.0]
    assert all(torch.equal(a, b) for a, b in zip(before, _weights(module), strict=True))
    guard = next(cb for cb in trainer.callbacks if isinstance(cb, UpdateGuard))
    assert guard.skipped == {"non_finite": 0, "no_signal": 1}
    shutil.rmtree(tmp_path / "t", ignore_errors=True)
