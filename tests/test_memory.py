"""The start-up memory estimate: hand-computed terms, and the shape read from a real model."""

from __future__ import annotations

import pytest

from rzero_pl.scale.memory import GIB, MemoryEstimate, ModelShape, estimate_memory

SHAPE = ModelShape(params=1000, layers=2, hidden=8, vocab=10, kv_dim=4)


def test_qlora_on_one_device_by_hand():
    est = estimate_memory(
        SHAPE,
        lora_params=100,
        quantization="nf4",
        weight_bytes=2,
        micro_batch=1,
        seq_len=10,
        checkpointing=True,
        engine_tokens=100,
    )
    assert est.weights == pytest.approx(1000 * 0.5625)  # the base once, in nf4
    assert est.reference == 0  # LoRA: the reference is the base with adapters off
    assert est.adapters == 2 * 100 * 4  # two roles' fp32 adapters
    assert est.gradients == 100 * 4
    assert est.optimizer == 100 * 8
    # kept layer inputs 10*8*2*2 + one recomputed layer 10*8*34 + logits 10*10*10
    assert est.activations == 320 + 2720 + 1000
    assert est.engine == 100 * 2 * 2 * 4 * 2  # KV cache only: nothing is sharded
    assert est.total == pytest.approx(9802.5)


def test_full_fine_tuning_sharded_by_hand():
    est = estimate_memory(
        SHAPE,
        reference=True,
        weight_bytes=4,
        world_size=4,
        sharded=True,
        micro_batch=2,
        seq_len=10,
        checkpointing=False,
        engine_tokens=0,
    )
    assert est.weights == 2 * 1000 * 4 / 4  # two roles, a quarter each
    assert est.reference == 1000 * 4 / 4
    assert est.adapters == 0
    assert est.gradients == 1000 * 4 / 4
    assert est.optimizer == 1000 * 8 / 4
    assert est.activations == 2 * 20 * 8 * 34 + 20 * 10 * 10  # every layer kept + logits
    assert est.engine == 3 * 1000 * 2  # both roles and the reference gathered in bf16
    assert est.total == 24880


def test_unsharded_ranks_hold_everything():
    one = estimate_memory(SHAPE, weight_bytes=4, world_size=1)
    eight = estimate_memory(SHAPE, weight_bytes=4, world_size=8, sharded=False)
    assert one == eight


def test_describe_names_every_term_in_gib():
    est = MemoryEstimate(GIB, 0, 0, 0, 2 * GIB, 0, GIB)
    text = est.describe()
    assert text.startswith("estimated peak memory per rank: 4.00 GiB")
    assert "optimizer 2.00" in text and "engine 1.00" in text


def test_shape_of_a_real_model(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    shape = ModelShape.of(model)
    assert shape.params == sum(p.numel() for p in model.parameters())
    assert (shape.layers, shape.hidden) == (2, 32)
    assert shape.vocab == model.config.vocab_size
    assert shape.kv_dim == 2 * (32 // 4)  # 2 key/value heads of dimension hidden / 4 heads


def test_an_engine_with_its_own_pool_replaces_the_engine_term():
    est = estimate_memory(SHAPE, world_size=4, sharded=True, engine_share=30 * GIB)
    assert est.engine == 30 * GIB  # no gathered copy: vLLM holds its own weights


def test_vllm_on_cpu_counts_its_weight_copy_and_kv_cache(monkeypatch):
    """On CPU vLLM holds its own weights and KV cache (it showed 'engine 0.00 GiB')."""
    import types

    from rzero_pl.engines.hf import HFEngine
    from rzero_pl.engines.vllm import VLLMEngine
    from rzero_pl.engines.vllm_support import cpu_kv_cache_bytes

    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    # The method needs only these two settings: no vLLM engine is started for it.
    vllm = types.SimpleNamespace(gpu_memory_utilization=0.4, kv_cache_memory_bytes=None)
    assert VLLMEngine.memory_bytes(vllm, 3 * GIB) == (0, 4 * GIB)  # weights + 1 GiB cache
    assert HFEngine(max_batch_tokens=99).memory_bytes(3 * GIB) == (99, None)  # no copy
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "2")
    assert cpu_kv_cache_bytes(None) == 2 * GIB
    assert cpu_kv_cache_bytes(5) == 5
