"""Vocabulary dropout (issue 28, arXiv 2604.03472): the seeded mask, its protected tokens, the
engines' sampling and log-probs under it, the challenger's rollout steps and the curriculum's
candidate rounds."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from builders import attached
from test_curriculum import ScriptedEngine, _curriculum, _vote

from rzero_pl.curriculum import ChallengerWriting
from rzero_pl.engines import HFEngine, SamplingParams
from rzero_pl.engines.vllm_support import vllm_sampling_kwargs
from rzero_pl.errors import ConfigError
from rzero_pl.ground.seeds import derive
from rzero_pl.models.policy import Policy
from rzero_pl.prompts import RolePrompt
from rzero_pl.rewards import QuestionFormat
from rzero_pl.vocab_dropout import BANNED_LOGIT, VocabularyDropout, dropped_ids, mask_logits


class CharTokenizer:
    """Ten tokens: 0 and 1 special, 2-9 the letters a-h (one token per letter)."""

    all_special_ids = [0, 1]

    def __len__(self) -> int:
        return 10

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [2 + "abcdefgh".index(c) for c in text]


def test_dropped_ids_are_the_seeded_draws_below_the_rate():
    # The definition, computed independently: token i is dropped when its uniform draw < rate.
    draws = torch.rand(50, generator=torch.Generator().manual_seed(7))
    expected = tuple(i for i in range(50) if draws[i] < 0.3 and i not in (0, 1))
    assert dropped_ids(50, (0, 1), 0.3, 7) == expected
    assert 0 < len(expected) < 48
    assert dropped_ids(50, (0, 1), 0.3, 8) != expected  # a new mask each seed: non-stationary
    assert dropped_ids(50, (), 0.0, 7) == ()


def test_special_tokens_and_the_kept_strings_are_never_dropped():
    dropout = VocabularyDropout(rate=0.9, keep=("ab", "h"))
    for seed in range(20):
        banned = dropout.banned(CharTokenizer(), seed)
        assert not {0, 1, 2, 3, 9} & set(banned)  # specials, "a", "b", "h"
        assert set(banned) <= {4, 5, 6, 7, 8}
    assert VocabularyDropout().banned(CharTokenizer(), 3) == ()


@pytest.mark.parametrize("rate", [1.0, 1.5, -0.1, float("nan")])
def test_a_rate_outside_zero_to_one_is_one_line(rate):
    with pytest.raises(ConfigError, match="vocab_dropout.rate"):
        VocabularyDropout(rate=rate)


def test_masked_logits_give_banned_tokens_zero_probability_and_finite_log_probs():
    logits = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    masked = mask_logits(logits, (1, 3))
    assert masked.tolist() == [[1.0, BANNED_LOGIT, 3.0, BANNED_LOGIT]]
    probs = torch.softmax(masked, -1)
    assert probs[0, 1] == 0 and probs[0, 3] == 0
    # by hand: the kept tokens share the mass as softmax([1, 3])
    assert torch.allclose(probs[0, [0, 2]], torch.softmax(torch.tensor([1.0, 3.0]), -1))
    assert torch.isfinite(torch.log_softmax(masked, -1)).all()
    assert mask_logits(logits, ()) is logits


@pytest.fixture(scope="module")
def toy_policy():
    from rzero_pl.toy import ToyModel

    return Policy(ToyModel(), lora=None)


def _digit_ids(tokenizer, digits: str) -> tuple[int, ...]:
    return tuple(sorted(tokenizer.convert_tokens_to_ids(list(digits))))


@pytest.mark.parametrize("drop_finished", [True, False])
def test_the_hf_engine_never_draws_a_banned_token(toy_policy, drop_finished):
    banned = _digit_ids(toy_policy.tokenizer, "0123456")
    engine = HFEngine(return_logprobs=True, drop_finished=drop_finished)
    engine.attach(toy_policy)
    params = SamplingParams(n=16, temperature=1.0, max_new_tokens=48, seed=3)
    prompts = ["Solve: What is 12 + 7?\n", "Write a question.\n"]
    free = engine.generate(prompts, role="solver", params=params)
    assert {t for g in free for c in g.completions for t in c.token_ids} & set(banned)
    masked = engine.generate(
        prompts,
        role="solver",
        params=SamplingParams(**{**params.__dict__, "banned_token_ids": banned}),
    )
    drawn = {t for g in masked for c in g.completions for t in c.token_ids}
    assert drawn and not drawn & set(banned)
    # The log-probs are under the masked distribution: each one is that of a forward pass
    # whose banned logits are set aside.
    model = toy_policy.module("solver").eval()
    gen = masked[0]
    c = gen.completions[0]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([gen.prompt_ids + c.token_ids])).logits[0]
    logits = logits[len(gen.prompt_ids) - 1 : -1]
    expected = torch.log_softmax(mask_logits(logits, banned), -1)
    expected = expected.gather(-1, torch.tensor(c.token_ids)[:, None]).squeeze(-1)
    assert torch.allclose(torch.tensor(c.logprobs), expected, atol=1e-5)


def test_both_decoding_paths_agree_under_a_mask(toy_policy):
    banned = _digit_ids(toy_policy.tokenizer, "2468+")
    params = SamplingParams(n=8, temperature=0.8, top_k=20, max_new_tokens=40, seed=2)
    params = SamplingParams(**{**params.__dict__, "banned_token_ids": banned})
    out = []
    for drop in (True, False):
        engine = HFEngine(return_logprobs=True, drop_finished=drop, max_batch_tokens=2000)
        engine.attach(toy_policy)
        gens = engine.generate(
            ["Solve: 3 + 4 * 3\n", "Solve: 41 + 2\n"], role="solver", params=params
        )
        out.append([(c.token_ids, c.logprobs) for g in gens for c in g.completions])
    assert out[0] == out[1]  # bit for bit, as without a mask (test_engine_hf.py)


def test_vllm_gets_the_mask_as_its_largest_negative_bias():
    params = SamplingParams(banned_token_ids=(4, 9))
    assert vllm_sampling_kwargs(params, 0, False)["logit_bias"] == {4: -100.0, 9: -100.0}
    assert vllm_sampling_kwargs(SamplingParams(), 0, False)["logit_bias"] is None


def test_each_curriculum_round_samples_under_its_own_mask(tmp_path):
    engine = ScriptedEngine(
        ["<question>1+1</question> \\boxed{2}"], {"1+1": ["\\boxed{2}", "\\boxed{3}"]}
    )
    seen: list[tuple[int, ...]] = []
    generate = engine.generate

    def recording(prompts, *, role, params):
        if role == "challenger":
            seen.append(params.banned_token_ids)
        return generate(prompts, role=role, params=params)

    dropout = VocabularyDropout(rate=0.5, keep=("a",))
    curriculum = _curriculum(candidates=2, min_kept=5, max_rounds=3).bound_to(
        ChallengerWriting(
            RolePrompt(user="Write.", system="", use_chat_template=False, fallback="{user}\n"),
            QuestionFormat(),
            dropout,
            8,
        )
    )
    actor = SimpleNamespace(tokenizer=CharTokenizer(), generate=recording)
    with pytest.warns(UserWarning, match="fewer than min_kept"):
        curriculum.build(actor, _vote(2), str(tmp_path))
    # three rounds, three masks: round r's seed is r (curriculum seed 0, evolution seed 0)
    assert seen == [dropout.banned(CharTokenizer(), r) for r in range(3)]
    assert len(set(seen)) == 3
    rows = (tmp_path / "questions.jsonl").read_text().splitlines()
    assert len([json.loads(r) for r in rows]) == 6
    # without the challenger's dropout the curriculum samples every token
    seen.clear()
    _curriculum(candidates=2).build(actor, _vote(2), str(tmp_path / "plain"))
    assert seen == [()]


def test_a_rollout_steps_mask_is_drawn_from_its_seed():
    from rzero_pl.grpo.challenger import ChallengerGRPO

    dropout = VocabularyDropout(rate=0.4)
    module = attached(ChallengerGRPO(None, seed=5, vocab_dropout=dropout))
    module.policy = SimpleNamespace(tokenizer=CharTokenizer())
    # a trainer before its first epoch: rollout step 0, seeded derive(5, 0) (_rollout_seed)
    assert module.banned_tokens() == dropout.banned(CharTokenizer(), derive(5, 0))
    assert ChallengerGRPO(None).banned_tokens() == ()
