"""ChallengerGRPO and its reward terms (majority vote, repetition) on a tiny model."""

from __future__ import annotations

import numpy as np
import pytest
from builders import attached, quiet_trainer, tiny_challenger
from rzero_pl.datamodules import ChallengerPromptsDataModule

from rzero_pl.engines import SamplingParams
from rzero_pl.grpo.module import GRPOLoss
from rzero_pl.rewards import MajorityVote, RepetitionPenalty, SolverReading
from rzero_pl.toy.prompts import TOY_SOLVER


@pytest.fixture()
def module(tiny_model_dir):
    return attached(tiny_challenger(tiny_model_dir, loss=GRPOLoss(kl_coef=0.0)))


def _vote(votes: int, **kwargs) -> MajorityVote:
    sampling = SamplingParams(top_k=40, max_new_tokens=6)
    return MajorityVote(votes, sampling, **kwargs).bound_to(SolverReading(TOY_SOLVER))


def test_refuses_to_train_without_a_vote(module, tmp_path):
    with pytest.raises(ValueError, match="MajorityVote"):
        quiet_trainer(tmp_path, logs="lightning_logs", log_every_n_steps=1).fit(
            module, ChallengerPromptsDataModule(slots_per_step=2)
        )


def test_one_step_runs_with_both_terms(module, tmp_path):
    module.bind(module.actor, _vote(3))
    trainer = quiet_trainer(tmp_path, logs="lightning_logs", log_every_n_steps=1)
    trainer.fit(module, ChallengerPromptsDataModule(slots_per_step=2))
    assert trainer.global_step == 1
    scalars = _logged_scalars(tmp_path)
    assert "challenger/reward_mean" in scalars
    assert "challenger/repetition/clusters" in scalars
    assert "challenger/vote/seconds" in scalars
    assert module.actor.version("challenger") == 1


def _logged_scalars(folder) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for events in folder.rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        tags.update(accumulator.Tags()["scalars"])
    return tags


def test_majority_vote_shares_of_valid_questions(module):
    questions = ["What is 1 + 1?", None, "What is 2 * 3?"]
    share, labels, metrics = _vote(4).shares(questions, 0, module.actor, 7)
    assert np.isnan(share[1]) and labels[1] is None
    for s in share[[0, 2]]:
        assert s in {0.0, 0.25, 0.5, 0.75, 1.0}
    assert metrics["vote/share_mean"] == pytest.approx(np.mean(share[[0, 2]]))


def test_uncertainty_by_hand():
    from rzero_pl.rewards import uncertainty

    assert np.allclose(uncertainty(np.array([0.0, 0.25, 0.5, 0.7, 1.0])), [0, 0.5, 1, 0.6, 0])


def test_repetition_penalty_counts_cluster_sizes():
    q = "What is 12 + 7 * (5 - 2)?"
    everyone = [q, q, "How many primes are there below one hundred?", None]
    penalty, metrics = RepetitionPenalty().score(everyone, 0, 4)
    assert np.allclose(penalty, [2 / 4, 2 / 4, 1 / 4, 1 / 4])
    assert metrics["repetition/clusters"] == 3.0
    mine, _ = RepetitionPenalty(weight=0.5).score(everyone, 2, 2)  # a rank's share
    assert np.allclose(mine, [1 / 8, 1 / 8])


def test_score_applies_the_question_format_and_counts_each_reason(module):
    from rzero_pl.grpo.rollout import Rollout
    from rzero_pl.rewards import QuestionFormat

    texts = [
        "<question>What is 1 + 1?</question> \\boxed{2}",  # ok
        "<question>a</question><question>What is 2 * 3?</question> \\boxed{6}",  # last block
        "<question>What is 4 - 1?</question> no box",  # no_answer
        "<question>\u200b</question> \\boxed{1}",  # empty_question
        "just text",  # no_question
        "<question>What is 5 + 5?</question> \\boxed{10}",  # ok
    ]
    rollouts = [Rollout([1], [2], t, i // 3, 0) for i, t in enumerate(texts)]
    seen = []

    class Shares:
        def shares(self, questions, before, actor, seed):
            seen.append(list(questions))
            share = np.array([0.5 if q is not None else np.nan for q in questions])
            return share, [None] * len(questions), {}

    module.vote, module.repetition = Shares(), None
    scores = module.score([{}, {}], rollouts)
    metrics = scores.metrics
    assert seen[0] == ["What is 1 + 1?", "What is 2 * 3?", None, None, None, "What is 5 + 5?"]
    assert scores.answers == seen[0]
    assert scores.rewards == [1.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert [r.reward for r in rollouts] == [0.0] * 6  # read, never written
    assert metrics["valid_fraction"] == pytest.approx(3 / 6)
    assert metrics["invalid_reason/no_answer"] == pytest.approx(1 / 6)
    assert metrics["invalid_reason/empty_question"] == pytest.approx(1 / 6)
    assert metrics["invalid_reason/no_question"] == pytest.approx(1 / 6)
    assert metrics["invalid_reason/several_questions"] == 0.0
    # the stricter, older rules: one block only, no answer needed
    module.question_format = QuestionFormat(blocks="single", require_answer=False)
    metrics = module.score([{}, {}], rollouts).metrics
    assert seen[1][1:3] == [None, "What is 4 - 1?"]
    assert metrics["invalid_reason/several_questions"] == pytest.approx(1 / 6)
    assert metrics["invalid_reason/no_answer"] == 0.0


def test_gated_form_scores_only_when_the_majority_is_the_last_character(module):
    from rzero_pl.grpo.rollout import Rollout

    texts = [
        "<question>q1</question> \\boxed{12}",  # own answer "12": last character "2"
        "<question>q2</question> \\boxed{12}",  # majority "12" is not "2"
        "<question>q3</question> \\boxed{7}",  # agrees, but p̂ 0.1 is not above 0.1
        "no question \\boxed{3}",  # malformed
    ]
    rollouts = [Rollout([1], [2], t, 0, 0) for t in texts]

    class Shares:
        def shares(self, questions, before, actor, seed):
            return np.array([0.3, 0.4, 0.1, np.nan]), ["2", "12", "7", None], {}

    module.vote, module.repetition, module.reward_form = Shares(), None, "gated"
    scores = module.score([{}], rollouts)
    # min(0.3, 0.7) = 0.3; gated to 0 -> 0; 0.1 not > 0.1 -> 0; malformed -> -1
    assert scores.rewards == pytest.approx([0.3, 0.0, 0.0, -1.0])
    assert [t["gate"] for t in scores.terms] == [1.0, 0.0, 1.0, 0.0]


def test_vote_in_band_uses_the_configured_band():
    from types import SimpleNamespace

    from rzero_pl.engines.base import Completion, Generation
    from rzero_pl.prompts import RolePrompt

    # shares 0.25, 0.5 and 0.75 (4 votes): the old hard-coded |p - 1/2| <= 1/4 counted all three
    scripts = {
        "a": ["1", "2", "3", "4"],
        "b": ["1", "1", "2", "3"],
        "c": ["1", "1", "1", "2"],
    }

    def generate(prompts, *, role, params):
        return [
            Generation(p, [1], [Completion(f"\\boxed{{{x}}}", [2], "stop", 0) for x in v])
            for p in prompts
            for v in [scripts[p.strip()[-1]]]
        ]

    actor = SimpleNamespace(tokenizer=None, generate=generate)
    prompt = RolePrompt(user="{problem}", system="", use_chat_template=False, fallback="{user}\n")
    for band, expected in (((0.3, 0.7), 1 / 3), ((0.25, 0.75), 1.0), ((0.5, 1.0), 2 / 3)):
        reading = SolverReading(prompt, max_new_tokens=8)
        votes = MajorityVote(samples=4, band=band).bound_to(reading)
        share, labels, metrics = votes.shares(["a", "b", None, "c"], 0, actor, 0)
        assert np.allclose(share[[0, 1, 3]], [0.25, 0.5, 0.75])
        assert labels == ["1", "1", None, "1"]
        assert metrics["vote/in_band"] == pytest.approx(expected), band
    with pytest.raises(ValueError, match="MajorityVote.band"):
        MajorityVote(band=(0.7, 0.3))
