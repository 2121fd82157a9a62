"""GRPO settings that decide what is optimised: the minibatch loss and the KL reference."""

from __future__ import annotations

import pytest
import torch
from builders import quiet_trainer, tiny_solver
from lightning.pytorch.callbacks import Callback
from rzero_pl.datamodules import LabelledQuestionsDataModule

from rzero_pl.engines import HFEngine
from rzero_pl.grpo import loss as loss_math
from rzero_pl.grpo.module import GRPOLoss
from rzero_pl.grpo.rollout import Scores
from rzero_pl.grpo.solver import SolverGRPO
from rzero_pl.models import PretrainedModel
from rzero_pl.models.actor import Actor
from rzero_pl.models.policy import LoraSettings, Policy
from rzero_pl.questions import JsonlQuestions
from rzero_pl.toy.prompts import TOY_SOLVER

AGGREGATIONS = ("token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm")


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_micro_batch_losses_add_up_to_the_minibatch_loss(aggregation):
    torch.manual_seed(0)
    b, t = 6, 9
    logprobs = torch.randn(b, t, requires_grad=True)
    old = logprobs.detach() + 0.1 * torch.randn(b, t)
    ref = logprobs.detach() + 0.1 * torch.randn(b, t)
    advantages = torch.tensor([1.0, -1.0, 0.5, -0.5, 2.0, -2.0])
    lengths = torch.tensor([9, 2, 5, 1, 7, 3])  # very unequal: a split by rows changes T's share
    mask = (torch.arange(t) < lengths[:, None]).float()
    settings = dict(kl_coef=0.1, aggregation=aggregation, norm_length=12)

    whole, _ = loss_math.policy_loss(logprobs, old, advantages, mask, ref_logprobs=ref, **settings)
    (grad_whole,) = torch.autograd.grad(whole, logprobs)
    for split in ([3, 3], [1, 2, 3], [4, 2]):
        total = torch.zeros(())
        start = 0
        for size in split:
            rows = slice(start, start + size)
            part, _ = loss_math.policy_loss(
                logprobs[rows],
                old[rows],
                advantages[rows],
                mask[rows],
                ref_logprobs=ref[rows],
                total_tokens=mask.sum(),
                total_sequences=b,
                **settings,
            )
            total = total + part
            start += size
        (grad_split,) = torch.autograd.grad(total, logprobs)
        assert total.item() == pytest.approx(whole.item(), abs=1e-6)
        assert torch.allclose(grad_split, grad_whole, atol=1e-7)
    # Without the minibatch's counts, the old per-micro-batch means differ for token_mean.
    if aggregation == "token_mean":
        first, _ = loss_math.policy_loss(
            logprobs[:3], old[:3], advantages[:3], mask[:3], ref_logprobs=ref[:3], **settings
        )
        second, _ = loss_math.policy_loss(
            logprobs[3:], old[3:], advantages[3:], mask[3:], ref_logprobs=ref[3:], **settings
        )
        assert ((first + second) / 2).item() != pytest.approx(whole.item(), abs=1e-4)


def test_dr_grpo_divides_by_the_configured_length_not_the_padded_width():
    values = torch.ones(2, 4)
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    # token sums 2 and 1, over the constant 10, averaged over 2 sequences
    got = loss_math.aggregate(values, mask, "seq_mean_token_sum_norm", norm_length=10)
    assert got.item() == pytest.approx((2 / 10 + 1 / 10) / 2)
    assert loss_math.aggregate(values, mask, "seq_mean_token_sum_norm").item() == pytest.approx(
        (2 / 4 + 1 / 4) / 2
    )


class _FirstGradients(Callback):
    """Record the trained parameters' gradients just before the first optimizer step."""

    def __init__(self) -> None:
        self.grads: list[torch.Tensor] | None = None

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if self.grads is None:
            params = pl_module.policy.trainable_parameters(pl_module.role)
            self.grads = [p.grad.detach().clone() for p in params]


def _score_by_length(items, rollouts):
    # varied rewards inside each group: every update has a gradient
    rewards = [float(sum(r.completion_ids) % 2) for r in rollouts]
    return Scores(rewards, [None] * len(rollouts), [{} for _ in rollouts])


def _solver(tiny_model_dir, **kwargs):
    """This file's solver: LoRA alpha 32, 12 new tokens, one minibatch of 16, lr 1e-2, rewards
    by length (every update has a gradient)."""
    torch.manual_seed(0)  # LoRA's A matrices start random: the same start in every run
    settings = dict(lr=1e-2, log_rollouts_every=0, minibatch_size=16, micro_batch_size=16)
    module = tiny_solver(tiny_model_dir, alpha=32, max_new_tokens=12, **(settings | kwargs))
    module.score = _score_by_length
    return module


def _fit(module, data, tmp_path, epochs=1, ckpt_path=None, **kwargs):
    trainer = quiet_trainer(tmp_path, epochs, **kwargs)
    trainer.fit(module, data, ckpt_path=ckpt_path)
    return trainer


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_an_update_does_not_depend_on_the_micro_batch_size(
    aggregation, tiny_model_dir, toy_questions_file, tmp_path
):
    data = LabelledQuestionsDataModule(JsonlQuestions(toy_questions_file), questions_per_step=4)
    grads = {}
    for micro in (16, 4, 1):
        module = _solver(
            tiny_model_dir,
            micro_batch_size=micro,
            loss=GRPOLoss(kl_coef=0.05, aggregation=aggregation),
        )
        record = _FirstGradients()
        _fit(module, data, tmp_path / str(micro), callbacks=[record])
        grads[micro] = record.grads
    assert any(g.abs().sum() > 0 for g in grads[16])
    for micro in (4, 1):
        for a, b in zip(grads[16], grads[micro], strict=True):
            assert torch.allclose(a, b, atol=1e-6, rtol=1e-4), (aggregation, micro)


def test_a_users_accumulate_grad_batches_is_refused_unless_it_matches(
    tiny_model_dir, toy_questions_file, tmp_path
):
    data = LabelledQuestionsDataModule(JsonlQuestions(toy_questions_file), questions_per_step=4)
    module = _solver(tiny_model_dir, micro_batch_size=4)
    with pytest.raises(ValueError, match=r"trainer.accumulate_grad_batches \(3\)"):
        _fit(module, data, tmp_path, accumulate_grad_batches=3)
    trainer = _fit(
        _solver(tiny_model_dir, micro_batch_size=4),
        data,
        tmp_path / "ok",
        accumulate_grad_batches=4,  # what GRPO sets anyway: honoured
    )
    assert trainer.global_step == 1


# ---- the KL reference -------------------------------------------------------------------


def _logprobs(module, model):
    tok = module.policy.tokenizer
    enc = tok(["Solve: 12+7=\\boxed{19}"], return_tensors="pt")
    with torch.no_grad():
        return torch.log_softmax(model(**enc, use_cache=False).logits, -1)


def _perturb(policy, role):
    """Move ``role``'s weights away from the base, as a finished earlier phase would."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in policy.trainable_parameters(role):
            p.add_(0.3 * torch.randn(p.shape, generator=generator))


@pytest.mark.parametrize("lora", [True, False], ids=["lora", "full"])
@pytest.mark.parametrize("kind", ["start", "base"])
def test_the_kl_reference_is_the_phase_start_or_the_base(kind, lora, tiny_model_dir):
    lora_settings = LoraSettings(r=4) if lora else None
    policy = Policy(PretrainedModel(tiny_model_dir, dtype="float32"), lora=lora_settings)
    base_model = PretrainedModel(tiny_model_dir, dtype="float32").load()[0].eval()
    module = SolverGRPO(
        Actor(policy, HFEngine()), prompt=TOY_SOLVER, loss=GRPOLoss(kl_coef=0.01, reference=kind)
    )
    _perturb(policy, "solver")
    start = _logprobs(module, policy.module("solver").eval())
    base = _logprobs(module, base_model)
    assert not torch.allclose(start, base, atol=1e-3)
    module._prepare_reference()  # what setup does when the phase begins
    _perturb(policy, "solver")  # training moves the role on; the reference stays
    with policy.reference("solver") as ref:
        got = _logprobs(module, ref.eval())
    assert torch.allclose(got, start if kind == "start" else base, atol=1e-5)
    # the role itself is untouched by the reference's use, and still trainable
    assert not torch.allclose(_logprobs(module, policy.module("solver")), got, atol=1e-3)
    assert all(p.requires_grad for p in policy.trainable_parameters("solver"))
    assert not [n for n in policy.trainable_names() if ".reference." in n]  # never saved


def test_a_resumed_phase_keeps_its_phase_start_reference(
    tiny_model_dir, toy_questions_file, tmp_path
):
    data = LabelledQuestionsDataModule(JsonlQuestions(toy_questions_file), questions_per_step=4)
    loss = GRPOLoss(kl_coef=0.05, reference="start")
    first = _solver(tiny_model_dir, loss=loss)
    _perturb(first.policy, "solver")  # the weights this phase starts from
    start = [p.detach().clone() for p in first.policy.trainable_parameters("solver")]
    trainer = _fit(first, data, tmp_path, epochs=1, enable_checkpointing=True)
    ckpt = (
        trainer.checkpoint_callback.last_model_path or trainer.checkpoint_callback.best_model_path
    )
    assert ckpt

    resumed = _solver(tiny_model_dir, loss=loss)  # a new process: previous weights loaded
    _perturb(resumed.policy, "solver")
    _fit(resumed, data, tmp_path / "resumed", epochs=2, ckpt_path=ckpt, enable_checkpointing=True)
    params = dict(resumed.policy.models["shared"].named_parameters())
    reference = [
        params[name.replace(".solver.", ".reference.")]
        for name, p in params.items()
        if ".solver." in name and "lora_" in name
    ]
    assert len(reference) == len(start)
    for ref, want in zip(reference, start, strict=True):
        assert torch.equal(ref, want)
