"""SolverGRPO end to end on a tiny model: rollouts, updates, pushes, checkpoints."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from builders import attached, quiet_trainer, tiny_solver
from rzero_pl.datamodules import LabelledQuestionsDataModule

from rzero_pl.grpo.module import GRPOLoss
from rzero_pl.grpo.rollout import Scores
from rzero_pl.grpo.solver import SolverGRPO, correctness_rewards, label_confidence_weights
from rzero_pl.questions import JsonlQuestions


def test_correctness_rewards():
    answers, rewards = correctness_rewards(
        ["so \\boxed{3}", "\\boxed{\\frac{1}{2}}", "no box", "\\boxed{4}"], ["3", "0.5", "3", "3"]
    )
    assert answers == ["3", "\\frac{1}{2}", None, "4"]
    assert rewards == [1.0, 1.0, 0.0, 0.0]


def _module(tiny_model_dir, **kwargs):
    """This file's solver: KL 0.01, lr 1e-2, every rollout step's samples logged."""
    settings = dict(loss=GRPOLoss(kl_coef=0.01), lr=1e-2, log_rollouts_every=1)
    return tiny_solver(tiny_model_dir, **(settings | kwargs))


# This file's fits: TensorBoard under t/, gradients clipped at 1.
_trainer = partial(quiet_trainer, logs="t", gradient_clip_val=1.0)


def test_solver_trains_pushes_and_logs(tiny_model_dir, toy_questions_file, tmp_path):
    module = _module(tiny_model_dir)
    data = LabelledQuestionsDataModule(JsonlQuestions(toy_questions_file), questions_per_step=4)
    challenger = [p.detach().clone() for p in module.policy.trainable_parameters("challenger")]
    solver = [p.detach().clone() for p in module.policy.trainable_parameters("solver")]
    trainer = _trainer(tmp_path, epochs=2)
    trainer.fit(module, data)
    # 2 rollout steps x (4 questions x G=4 = 16 rollouts / 8 per update) = 4 updates
    assert trainer.global_step == 4
    assert module.actor.version("solver") == 2
    now = module.policy.trainable_parameters("solver")
    assert any(not torch.equal(a, b) for a, b in zip(solver, now, strict=True))
    for a, b in zip(challenger, module.policy.trainable_parameters("challenger"), strict=True):
        assert torch.equal(a, b)
    logged = trainer.logged_metrics
    for key in ("solver/loss", "solver/kl", "solver/clip_frac_high"):
        assert key in logged, key
    rollout = _logged(trainer)  # read back from TensorBoard, where the module logs them
    for key in ("solver/reward_mean", "solver/response_length_max", "solver/gen_tokens_per_s"):
        assert key in rollout, key
    assert 0.0 <= rollout["solver/reward_mean"] <= 1.0


def test_checkpoint_holds_only_adapters_and_resumes(tiny_model_dir, toy_questions_file, tmp_path):
    data = LabelledQuestionsDataModule(JsonlQuestions(toy_questions_file), questions_per_step=4)
    trainer = _trainer(tmp_path, epochs=1, enable_checkpointing=True)
    module = _module(tiny_model_dir)
    trainer.fit(module, data)
    path = (
        trainer.checkpoint_callback.best_model_path or trainer.checkpoint_callback.last_model_path
    )
    state = torch.load(path, weights_only=True)["state_dict"]
    assert state and all("lora_" in k for k in state)
    resumed = _module(tiny_model_dir)
    trainer2 = _trainer(tmp_path, epochs=2, enable_checkpointing=True)
    trainer2.fit(resumed, data, ckpt_path=path)
    assert trainer2.global_step == 4
    assert trainer2.current_epoch == 2


def test_group_size_below_two_is_rejected(tiny_model_dir):
    with pytest.raises(ValueError, match="group_size"):
        _module(tiny_model_dir, group_size=1)


def test_benchmark_evaluation_scores_the_start_and_the_end_of_a_fit(
    tiny_model_dir, toy_questions_file, tmp_path
):
    import json
    import os

    from rzero_pl.callbacks.benchmark_eval import BenchmarkEvaluation

    data = LabelledQuestionsDataModule(JsonlQuestions(toy_questions_file), questions_per_step=4)
    evaluation = BenchmarkEvaluation(benchmarks=["toy"], max_samples=3, max_new_tokens=4)
    trainer = _trainer(tmp_path, epochs=1, callbacks=[evaluation], enable_checkpointing=True)
    trainer.fit(_module(tiny_model_dir), data)
    scored = sorted(os.listdir(os.path.join(trainer.logger.log_dir, "eval")))
    assert scored == ["baseline", "step2"]  # 1 step x 2 updates
    for tag in ("baseline", "step2"):
        summary = json.load(open(os.path.join(trainer.logger.log_dir, "eval", tag, "eval.json")))
        assert summary["benchmarks"]["toy"]["n_problems"] == 3
    # A resumed fit has a baseline already: it only scores its end.
    again = BenchmarkEvaluation(benchmarks=["toy"], max_samples=3, max_new_tokens=4)
    trainer2 = _trainer(tmp_path, epochs=2, callbacks=[again], enable_checkpointing=True)
    checkpoint = trainer.checkpoint_callback
    path = checkpoint.best_model_path or checkpoint.last_model_path
    trainer2.fit(_module(tiny_model_dir), data, ckpt_path=path)
    assert os.listdir(os.path.join(trainer2.logger.log_dir, "eval")) == ["step4"]


def _scores(rewards: list[float]) -> Scores:
    return Scores(rewards, [None] * len(rewards), [{} for _ in rewards])


def _score_first_group_only(items, rollouts):
    # group 0 (the first G = 4 rollouts) scores 0, 1, 0, 1; every other group scores 0
    return _scores([float(r.group == 0 and i % 2) for i, r in enumerate(rollouts)])


def test_skip_signal_free_trains_only_on_informative_groups(tiny_model_dir, toy_questions_file):
    module = attached(_module(tiny_model_dir, loss=GRPOLoss(kl_coef=0.0), skip_signal_free=True))
    module.score = _score_first_group_only
    items = JsonlQuestions(toy_questions_file).load()[:4]
    trained = module.rollout(items).rollouts
    assert len(trained) == 4 and {r.group for r in trained} == {0}
    assert all(r.advantage != 0 for r in trained)
    # nothing informative: one row is kept, so the step still runs and the guard skips it
    module.score = lambda items, rollouts: _scores([0.0] * len(rollouts))
    trained = module.rollout(items).rollouts
    assert len(trained) == 1 and trained[0].advantage == 0.0
    # off (the default): every rollout is trained on
    plain = attached(_module(tiny_model_dir, loss=GRPOLoss(kl_coef=0.0)))
    plain.score = _score_first_group_only
    assert len(plain.rollout(items).rollouts) == 16


def test_skip_signal_free_logs_the_trained_fraction(tiny_model_dir, toy_questions_file, tmp_path):
    module = _module(tiny_model_dir, loss=GRPOLoss(kl_coef=0.0), skip_signal_free=True)
    module.score = _score_first_group_only
    data = LabelledQuestionsDataModule(JsonlQuestions(toy_questions_file), questions_per_step=4)
    trainer = _trainer(tmp_path, epochs=1)
    trainer.fit(module, data)
    assert _logged(trainer)["solver/trained_fraction"] == 4 / 16  # group 0 of 4, G = 4


def _logged(trainer) -> dict[str, float]:
    """The last value of every scalar the fit logged to its TensorBoard folder."""
    from builders import tensorboard_scalars

    scalars = tensorboard_scalars(trainer.logger.log_dir)
    return {tag: events[-1].value for tag, events in scalars.items()}


def test_skip_signal_free_refuses_a_kl_term(tiny_model_dir):
    with pytest.raises(ValueError, match="skip_signal_free needs loss.kl_coef 0"):
        _module(tiny_model_dir, skip_signal_free=True)  # kl_coef 0.01


def test_skip_signal_free_trains_as_many_rollouts_on_every_rank(tiny_model_dir, monkeypatch):
    from rzero_pl.grpo import module as grpo_module
    from rzero_pl.grpo.rollout import Rollout

    module = _module(tiny_model_dir, loss=GRPOLoss(kl_coef=0.0), skip_signal_free=True)
    rows = [Rollout([1], [2], "", i // 4, 0, advantage=a) for i, a in enumerate([1, -1, 0, 0] * 2)]
    # this rank has 4 informative rollouts, another rank 6: both train on 6 (FSDP needs equal
    # numbers of forward/backward passes), topped up here with 2 signal-free ones
    monkeypatch.setattr(grpo_module.distributed, "gather_objects", lambda n: [n, 6])
    trained = module._trained_rollouts(rows)
    assert len(trained) == 6 and sum(r.advantage != 0 for r in trained) == 4


def test_flexible_answer_rule_rewards_models_that_do_not_box():
    completions = ["2 + 3 = 5\n#### 5", "The answer is: 5.", "so 5 apples", "\\boxed{4} or 5"]
    labels = ["5"] * 4
    strict, strict_rewards = correctness_rewards(completions, labels)
    assert strict == [None, None, None, "4"] and strict_rewards == [0.0] * 4
    flexible, rewards = correctness_rewards(completions, labels, rule="flexible")
    assert flexible == ["5", "5", "5", "4"]  # a box, when there is one, still decides
    assert rewards == [1.0, 1.0, 1.0, 0.0]


def test_label_confidence_weights_by_hand():
    # shares 0.5, 0.8, 1.0, a true label (None); power 1 and 2; a floor lifts small shares
    assert label_confidence_weights([0.5, 0.8, 1.0, None], 1.0) == [0.5, 0.8, 1.0, 1.0]
    assert label_confidence_weights([0.5, 0.8], 2.0) == pytest.approx([0.25, 0.64])
    assert label_confidence_weights([0.2, 0.6], 1.0, floor=0.3) == [0.3, 0.6]


def _score_alternating(items, rollouts):
    # every group scores 0, 1, 0, 1: advantages -+-+ equal
    return _scores([float(i % 2) for i in range(len(rollouts))])


def test_label_confidence_scales_each_groups_advantages(tiny_model_dir, toy_questions_file):
    """ADPO-style: a question's advantages are its plain ones times share ** power."""
    items = JsonlQuestions(toy_questions_file).load()[:2]
    items = [{**items[0], "share": 0.5}, {**items[1], "share": 0.9}]
    plain = attached(_module(tiny_model_dir, loss=GRPOLoss(kl_coef=0.0)))
    plain.score = _score_alternating
    weighted = attached(_module(tiny_model_dir, loss=GRPOLoss(kl_coef=0.0), label_confidence=2.0))
    weighted.score = _score_alternating
    base = [r.advantage for r in plain.rollout(items).rollouts]
    scaled = weighted.rollout(items).rollouts
    factors = [0.25] * 4 + [0.81] * 4
    assert [r.advantage for r in scaled] == pytest.approx(
        [a * f for a, f in zip(base, factors, strict=True)]
    )
    assert base[1] > 0 and {r.group for r in scaled} == {0, 1}


def test_label_confidence_must_be_positive_and_finite(tiny_model_dir):
    for bad in (0.0, -1.0, float("nan"), 100.0):
        with pytest.raises(ValueError, match="SolverGRPO.label_confidence"):
            _module(tiny_model_dir, label_confidence=bad)


def test_think_box_format_by_hand():
    from rzero_pl.grpo.solver import think_box_format

    assert think_box_format("<think>add</think> so \\boxed{5}.") == 1.0
    assert think_box_format(" < think >a< / think >\\boxed{5}") == 1.0  # spaces at tags go
    assert think_box_format("<think>a</think> \\boxed{5") == 0.0  # never closed
    assert think_box_format("\\boxed{5} <think>a</think>") == 0.0  # the box must follow
    assert think_box_format("so <think>a</think> \\boxed{5}") == 0.0  # must open with it
    assert think_box_format("<think>\\boxed{5}</think>") == 0.0


def test_format_weight_mixes_the_released_format_term():
    from rzero_pl.grpo.rollout import Rollout

    texts = ["<think>a</think> \\boxed{5}", "\\boxed{5}", "<think>a</think> \\boxed{4}"]
    rollouts = [Rollout([1], [2], t, 0, 0) for t in texts]
    plain = SolverGRPO().score([{"answer": "5"}], rollouts)
    assert plain.rewards == [1.0, 1.0, 0.0]  # default: binary
    assert plain.answers == ["5", "5", "4"] and "format" not in plain.terms[0]
    mixed = SolverGRPO(format_weight=0.1).score([{"answer": "5"}], rollouts)
    # 0.9 * correct + 0.1 * format: 0.9 + 0.1; 0.9 + 0; 0 + 0.1
    assert mixed.rewards == pytest.approx([1.0, 0.9, 0.1])
    assert [t["format"] for t in mixed.terms] == [1.0, 0.0, 1.0]
    assert [t["correct"] for t in mixed.terms] == [1.0, 1.0, 0.0]
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="SolverGRPO.format_weight"):
            SolverGRPO(format_weight=bad)
