"""HFEngine: sampling semantics, batching, seeds, versions, roles, log-probs."""

from __future__ import annotations

import pytest
import torch

from rzero_pl.engines import HFEngine, SamplingParams, hf_decode
from rzero_pl.models import PretrainedModel
from rzero_pl.models.policy import LoraSettings, Policy

PROMPTS = ["Solve: What is 1 + 2?\n", "Write a question.\n", "Solve: What is 12 * 3?\n"]


@pytest.fixture()
def policy(tiny_model_dir):
    return Policy(PretrainedModel(tiny_model_dir, dtype="float32"), lora=LoraSettings(r=4, alpha=8))


def _engine(policy, **kwargs):
    engine = HFEngine(**kwargs)
    engine.attach(policy)
    return engine


def _manual_greedy(policy, role, prompt, steps):
    tok = policy.tokenizer
    ids = tok(prompt)["input_ids"]
    model = policy.module(role).eval()
    out = []
    with torch.no_grad():
        for _ in range(steps):
            logits = model(input_ids=torch.tensor([ids + out])).logits[0, -1]
            nxt = int(logits.argmax())
            out.append(nxt)
            if nxt == tok.eos_token_id:
                break
    return out


def test_greedy_matches_a_manual_decode(policy):
    engine = _engine(policy, max_batch_tokens=64)  # forces several batches
    params = SamplingParams(temperature=0.0, max_new_tokens=12)
    gens = engine.generate(PROMPTS, role="solver", params=params)
    for prompt, gen in zip(PROMPTS, gens, strict=True):
        assert gen.completions[0].token_ids == _manual_greedy(policy, "solver", prompt, 12)


def test_sampling_shape_seed_and_finish(policy):
    engine = _engine(policy)
    params = SamplingParams(n=4, temperature=1.0, top_p=0.9, top_k=20, max_new_tokens=8, seed=3)
    a = engine.generate(PROMPTS, role="solver", params=params)
    b = engine.generate(PROMPTS, role="solver", params=params)
    assert [len(g.completions) for g in a] == [4, 4, 4]
    assert [[c.token_ids for c in g.completions] for g in a] == [
        [c.token_ids for c in g.completions] for g in b
    ]
    for g in a:
        for c in g.completions:
            assert c.finish_reason in {"stop", "length"}
            assert len(c.token_ids) <= 8
            if c.finish_reason == "length":
                assert len(c.token_ids) == 8
    other = engine.generate(
        PROMPTS, role="solver", params=SamplingParams(n=4, max_new_tokens=8, seed=4)
    )
    assert [c.token_ids for g in a for c in g.completions] != [
        c.token_ids for g in other for c in g.completions
    ]


def test_stop_strings_cut_the_text(policy):
    engine = _engine(policy)
    params = SamplingParams(n=3, max_new_tokens=20, seed=0, stop=("a",))
    for g in engine.generate(PROMPTS, role="solver", params=params):
        for c in g.completions:
            assert "a" not in c.text


def test_versions_follow_pushes_and_roles_switch(policy):
    engine = _engine(policy)
    params = SamplingParams(temperature=0.0, max_new_tokens=10)
    before = engine.generate(PROMPTS, role="solver", params=params)
    assert all(c.weight_version == 0 for g in before for c in g.completions)
    with torch.no_grad():
        for p in policy.trainable_parameters("solver"):
            p.add_(torch.randn_like(p))
    assert engine.push("solver") == 1
    after = engine.generate(PROMPTS, role="solver", params=params)
    assert all(c.weight_version == 1 for g in after for c in g.completions)
    assert [g.completions[0].token_ids for g in after] != [
        g.completions[0].token_ids for g in before
    ]
    challenger = engine.generate(PROMPTS, role="challenger", params=params)
    assert [g.completions[0].token_ids for g in challenger] == [
        g.completions[0].token_ids for g in before
    ]
    assert engine.version("challenger") == 0


def test_returned_logprobs_match_a_forward_pass(policy):
    engine = _engine(policy, return_logprobs=True)
    params = SamplingParams(n=2, temperature=0.7, max_new_tokens=6, seed=1)
    gen = engine.generate(PROMPTS[:1], role="solver", params=params)[0]
    model = policy.module("solver").eval()
    for c in gen.completions:
        ids = torch.tensor([gen.prompt_ids + c.token_ids])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, len(gen.prompt_ids) - 1 : -1] / 0.7
        expected = torch.log_softmax(logits, -1).gather(-1, torch.tensor(c.token_ids)[:, None])
        assert torch.allclose(torch.tensor(c.logprobs), expected.squeeze(-1), atol=1e-4)


def test_bad_sampling_params_are_rejected():
    with pytest.raises(ValueError, match="top_p"):
        SamplingParams(top_p=0.0)
    with pytest.raises(ValueError, match="n must"):
        SamplingParams(n=0)


def test_sampling_without_top_k_draws_from_the_whole_vocabulary(tiny_model_dir):
    policy = Policy(PretrainedModel(tiny_model_dir, dtype="float32"), lora=None, roles=("solver",))
    # Tied embeddings on one axis: logits linear in the token id, all distinct and all
    # likely, so a hidden top-k would cut some tokens off.
    with torch.no_grad():
        weight = policy.module("solver").get_input_embeddings().weight
        weight.zero_()
        weight[:, 0] = torch.linspace(-1.0, 1.0, weight.shape[0])
    engine = _engine(policy)
    params = SamplingParams(n=40, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=50, seed=0)
    (gen,) = engine.generate(["Solve:"], role="solver", params=params)
    drawn = {t for c in gen.completions for t in c.token_ids}
    # transformers' own default would keep the 50 likeliest tokens only
    assert len(drawn) > 60, len(drawn)


TOY_PROMPTS = [f"Solve: {a} + {b} * {a}\n" for a, b in ((3, 4), (12, 7), (5, 90), (41, 2))]
DROP_CASES = [  # sampling settings of the toy votes, solver, challenger and evaluation
    SamplingParams(n=10, temperature=1.0, top_k=40, max_new_tokens=96, seed=1),
    SamplingParams(n=8, temperature=0.7, top_p=0.9, top_k=20, max_new_tokens=40, seed=2),
    SamplingParams(n=1, temperature=0.0, max_new_tokens=96),
]


@pytest.fixture(scope="module", params=["full", "lora"])
def toy_policy(request):
    from rzero_pl.toy import ToyModel

    lora = LoraSettings(r=4, alpha=8) if request.param == "lora" else None
    return Policy(ToyModel(), lora=lora)


def _completions(policy, params, **kwargs):
    engine = _engine(policy, **{"max_batch_tokens": 2000, "return_logprobs": True, **kwargs})
    gens = engine.generate(TOY_PROMPTS, role="solver", params=params)
    return [(c.token_ids, c.text, c.finish_reason, c.logprobs) for g in gens for c in g.completions]


@pytest.mark.parametrize("params", DROP_CASES)
def test_dropping_finished_rows_keeps_generates_tokens_and_logprobs(toy_policy, params):
    # Bit for bit: the same draws, the same log-probs as transformers' generate.
    dropped = _completions(toy_policy, params)
    assert dropped == _completions(toy_policy, params, drop_finished=False)
    assert len({len(tokens) for tokens, *_ in dropped}) > 1  # rows did finish apart


def test_finished_rows_leave_the_batch(toy_policy):
    rows = []
    model = hf_decode.forward_model(toy_policy.module("solver"))
    hook = model.register_forward_pre_hook(
        lambda mod, args, kwargs: rows.append(kwargs["input_ids"].shape[0]), with_kwargs=True
    )
    try:
        _completions(toy_policy, DROP_CASES[0], max_batch_tokens=10**5, drop_finished=False)
        assert set(rows) == {40}  # generate: every row in every step
        rows.clear()
        _completions(toy_policy, DROP_CASES[0], max_batch_tokens=10**5)
    finally:
        hook.remove()
    # the prefill runs each of the 4 prompts once (topped up to the floor), then the 40 rows
    # decode until finished ones leave, down to the floor
    assert rows[:2] == [hf_decode.MIN_ROWS, 40]
    assert min(rows) == hf_decode.MIN_ROWS and rows[1:] == sorted(rows[1:], reverse=True)


def test_distinct_rows_share_a_prefill_of_at_least_the_floor():
    ids = torch.tensor([[0, 5, 6], [0, 5, 6], [7, 8, 9], [0, 5, 6]] * 3)
    first, inverse = hf_decode.distinct_rows(ids)
    assert first.tolist()[:2] == [0, 2] and len(first) == hf_decode.MIN_ROWS
    assert inverse.tolist() == [0, 0, 1, 0] * 3
    assert torch.equal(ids[first][inverse], ids)
    assert hf_decode.distinct_rows(ids[:4]) is None  # no fewer rows than the floor: no gain
    assert hf_decode.distinct_rows(torch.arange(20).view(10, 2)) is None


def test_rows_to_keep_drops_late_and_never_below_the_floor():
    finished = torch.zeros(32, dtype=torch.bool)
    assert hf_decode.rows_to_keep(finished) is None
    finished[:1] = True  # 1 of 32: not yet worth a copy of the cache
    assert hf_decode.rows_to_keep(finished) is None
    finished[:2] = True
    assert hf_decode.rows_to_keep(finished).tolist() == list(range(2, 32))
    finished[:30] = True  # 2 rows left: 6 finished ones stay as filler
    assert hf_decode.rows_to_keep(finished).tolist() == [0, 1, 2, 3, 4, 5, 30, 31]
    assert hf_decode.rows_to_keep(torch.ones(8, dtype=torch.bool)) is None
