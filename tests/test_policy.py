"""Policy: role adapters on one base, QLoRA, full weights, reference, save/load."""

from __future__ import annotations

import pytest
import torch

from rzero_pl.models import PretrainedModel
from rzero_pl.models.policy import LoraSettings, Policy


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def _perturb(params):
    with torch.no_grad():
        for p in params:
            p.add_(torch.randn_like(p) * 0.5)


@pytest.fixture()
def lora_policy(tiny_model_dir):
    return Policy(PretrainedModel(tiny_model_dir, dtype="float32"), lora=LoraSettings(r=4, alpha=8))


def test_role_adapters_are_separate(lora_policy):
    ids = torch.tensor([[1, 5, 6, 7]])
    base = _logits(lora_policy.module("solver"), ids)
    solver_params = lora_policy.trainable_parameters("solver")
    names = {n for n, p in lora_policy.named_parameters() if any(p is q for q in solver_params)}
    assert names and all(".solver." in n and "lora_" in n for n in names)
    _perturb(solver_params)
    assert not torch.allclose(_logits(lora_policy.module("solver"), ids), base)
    assert torch.allclose(_logits(lora_policy.module("challenger"), ids), base, atol=1e-6)
    with lora_policy.reference("solver") as ref:
        assert torch.allclose(_logits(ref, ids), base, atol=1e-6)


def test_lora_save_loads_with_plain_peft(lora_policy, tiny_model_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    _perturb(lora_policy.trainable_parameters("solver"))
    ids = torch.tensor([[1, 9, 10, 11]])
    expected = _logits(lora_policy.module("solver"), ids)
    folder = lora_policy.save_role("solver", str(tmp_path / "solver"))
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    plain = PeftModel.from_pretrained(base, folder)
    assert torch.allclose(_logits(plain, ids), expected, atol=1e-5)

    fresh = Policy(
        PretrainedModel(tiny_model_dir, dtype="float32"), lora=LoraSettings(r=4, alpha=8)
    )
    fresh.load_role("solver", folder)
    assert torch.allclose(_logits(fresh.module("solver"), ids), expected, atol=1e-5)


def test_nf4_without_lora_is_a_config_error(tiny_model_dir):
    with pytest.raises(ValueError, match="policy.quantization"):
        Policy(PretrainedModel(tiny_model_dir), quantization="nf4")


def test_missing_model_folder_names_the_path():
    with pytest.raises(FileNotFoundError, match="name_or_path"):
        Policy(PretrainedModel("./no/such/model"))


def test_qlora_trains_on_cpu(tiny_model_dir):
    policy = Policy(
        PretrainedModel(tiny_model_dir, dtype="float32"),
        lora=LoraSettings(r=4, alpha=8, target_modules=["q_proj", "v_proj", "up_proj"]),
        quantization="nf4",
    )
    assert any("4bit" in type(m).__name__ for m in policy.modules())
    params = policy.trainable_parameters("solver")
    ids = torch.tensor([[1, 5, 6, 7, 8]])
    model = policy.module("solver").eval()
    with torch.no_grad():  # as generation does: must not switch the 4-bit layers to inference
        model(input_ids=ids)
    loss = model.train()(input_ids=ids, labels=ids).loss
    loss.backward()
    assert all(p.grad is not None for p in params)
    assert any(p.grad.abs().sum() > 0 for p in params)


def test_full_weights_roles_and_reference(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    policy = Policy(PretrainedModel(tiny_model_dir, dtype="float32"), lora=None)
    ids = torch.tensor([[1, 5, 6, 7]])
    base = _logits(policy.module("challenger"), ids)
    _perturb(policy.trainable_parameters("solver"))
    assert torch.allclose(_logits(policy.module("challenger"), ids), base)
    policy.enable_reference()
    with policy.reference("solver") as ref:
        assert torch.allclose(_logits(ref, ids), base)
    folder = policy.save_role("solver", str(tmp_path / "solver_full"))
    loaded = AutoModelForCausalLM.from_pretrained(folder)
    assert torch.allclose(_logits(loaded, ids), _logits(policy.module("solver"), ids), atol=1e-5)
    assert "models.solver.model.embed_tokens.weight" in policy.trainable_names()


def test_saved_weights_that_do_not_fit_are_refused(lora_policy, tiny_model_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    adapter = lora_policy.save_role("solver", str(tmp_path / "adapter"))
    full = Policy(PretrainedModel(tiny_model_dir, dtype="float32"), lora=None)
    with pytest.raises(ValueError, match="holds a LoRA adapter but this policy trains full"):
        full.load_role("solver", adapter)
    folder = full.save_role("solver", str(tmp_path / "full"))
    with pytest.raises(ValueError, match="holds full weights but this policy trains a LoRA"):
        lora_policy.load_role("solver", folder)
    # Another model's tensor names: nothing would load; refused, never scored silently.
    state = load_file(f"{folder}/model.safetensors")
    save_file({f"other.{k}": v for k, v in state.items()}, f"{folder}/model.safetensors")
    with pytest.raises(ValueError, match="does not fit this model"):
        full.load_role("solver", folder)


@pytest.mark.parametrize("lora", [None, LoraSettings(r=4, alpha=8)])
def test_activation_checkpointing_gives_the_same_gradients(tiny_model_dir, lora):
    ids = torch.tensor([[1, 5, 6, 7, 8, 9], [1, 9, 8, 7, 6, 5]])
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        policy = Policy(
            PretrainedModel(tiny_model_dir, dtype="float32"),
            lora=lora,
            gradient_checkpointing=checkpointing,
        )
        if lora is not None:
            _perturb(policy.trainable_parameters("solver"))  # lora_B starts at zero
        model = policy.module("solver").train()
        model(input_ids=ids, labels=ids).loss.backward()
        grads.append([p.grad.clone() for p in policy.trainable_parameters("solver")])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
