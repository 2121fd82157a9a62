"""What the tests build the same way in many files: the tiny model, a quiet Lightning trainer,
the GRPO roles on the tiny model (``tiny_model_dir`` in tests/conftest.py), fake engines, and
the reader of a run's TensorBoard scalars.

Each builder takes the settings its callers differ by; everything else is one choice, made
here. A fake engine that scripts something one file alone needs stays in that file.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from typing import Any

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger

from rzero_pl.engines import Completion, Engine, Generation, HFEngine, SamplingParams
from rzero_pl.grpo.challenger import ChallengerGRPO
from rzero_pl.grpo.solver import SolverGRPO
from rzero_pl.models import PretrainedModel
from rzero_pl.models.actor import Actor
from rzero_pl.models.policy import LoraSettings, Policy
from rzero_pl.toy.prompts import TOY_CHALLENGER, TOY_SOLVER


def tensorboard_scalars(folder: str) -> dict[str, list]:
    """Every scalar tag under a TensorBoard folder: its events (``.step``, ``.value``), in order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(folder, size_guidance={"scalars": 0})
    events.Reload()
    return {tag: events.Scalars(tag) for tag in events.Tags()["scalars"]}


def build_tiny_model(folder: str, seed: int = 0, layers: int = 2, hidden: int = 32) -> str:
    """A random-initialised Llama with the toy character tokenizer, saved to ``folder``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from rzero_pl.toy.tokenizer import build_tokenizer

    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,  # room for real benchmark prompts (the engine refuses longer)
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def quiet_trainer(
    tmp_path: Any,
    epochs: int = 1,
    *,
    logs: str | None = None,
    callbacks: Sequence[L.Callback] = (),
    **overrides: Any,
) -> L.Trainer:
    """A quiet trainer in ``tmp_path``: one epoch is one rollout step (the loaders are made
    again every epoch), no validation, no checkpoints, no progress bar or model summary.

    Args:
        logs: TensorBoard under ``tmp_path/logs`` (e.g. ``"lightning_logs"``); no logger if None.
        overrides: Any other ``L.Trainer`` argument, or one of the above changed
            (e.g. ``enable_checkpointing=True``).
    """
    settings: dict[str, Any] = dict(
        max_epochs=epochs,
        logger=TensorBoardLogger(str(tmp_path), name=logs) if logs else False,
        callbacks=list(callbacks),
        default_root_dir=str(tmp_path),
        reload_dataloaders_every_n_epochs=1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    settings.update(overrides)
    return L.Trainer(**settings)


def tiny_actor(
    tiny_model_dir: str, engine: Engine | None = None, r: int = 4, alpha: int = 8
) -> Actor:
    """The tiny model in float32 with LoRA adapters of rank ``r`` for both roles, and its engine
    (an ``HFEngine`` unless given)."""
    policy = Policy(
        PretrainedModel(tiny_model_dir, dtype="float32"), lora=LoraSettings(r=r, alpha=alpha)
    )
    return Actor(policy, engine or HFEngine())


def _role_settings(prompt: Any, max_new_tokens: int, settings: dict[str, Any]) -> dict[str, Any]:
    """A tiny rollout step (G = 4, minibatches of 8 in micro-batches of 4) with the toy
    prompt, unless ``settings`` says otherwise."""
    chosen = dict(
        prompt=prompt,
        group_size=4,
        sampling=SamplingParams(max_new_tokens=max_new_tokens),
        minibatch_size=8,
        micro_batch_size=4,
    )
    return chosen | settings


def tiny_solver(
    tiny_model_dir: str,
    *,
    engine: Engine | None = None,
    r: int = 4,
    alpha: int = 8,
    max_new_tokens: int = 8,
    **settings: Any,
) -> SolverGRPO:
    """``SolverGRPO`` on :func:`tiny_actor` with the toy solver prompt; ``settings``: any other
    argument of the module (``loss``, ``lr``, …) or one of the defaults changed."""
    actor = tiny_actor(tiny_model_dir, engine, r, alpha)
    return SolverGRPO(actor, **_role_settings(TOY_SOLVER, max_new_tokens, settings))


def tiny_challenger(
    tiny_model_dir: str,
    *,
    engine: Engine | None = None,
    r: int = 4,
    alpha: int = 8,
    max_new_tokens: int = 10,
    **settings: Any,
) -> ChallengerGRPO:
    """``ChallengerGRPO`` on :func:`tiny_actor` with the toy challenger prompt (no vote bound
    yet); ``settings`` as for :func:`tiny_solver`."""
    actor = tiny_actor(tiny_model_dir, engine, r, alpha)
    return ChallengerGRPO(actor, **_role_settings(TOY_CHALLENGER, max_new_tokens, settings))


class KeyedEngine:
    """Answers each prompt with the response whose key (a problem's text) the prompt contains,
    ``params.n`` times."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers

    def generate(
        self, prompts: Sequence[str], *, role: str, params: SamplingParams
    ) -> list[Generation]:
        out = []
        for prompt in prompts:
            text = next(r for key, r in self.answers.items() if key in prompt)
            done = [Completion(text, [], "stop", 0) for _ in range(params.n)]
            out.append(Generation(prompt, [], done))
        return out


def attached(module: L.LightningModule, tmp_path: Any = None) -> L.LightningModule:
    """``module`` with a quiet trainer attached but not fitted (epoch 0, no logger), as
    Lightning attaches one before the first rollout step: for tests that call ``rollout`` or
    ``score`` directly."""
    module.trainer = quiet_trainer(tmp_path or tempfile.gettempdir(), epochs=1)
    return module


class RecordingEngine:
    """Answers every prompt with one fixed text and keeps the prompts it was given."""

    def __init__(self, answer: str) -> None:
        self.answer, self.prompts = answer, []

    def generate(self, prompts, *, role, params):
        self.prompts += prompts
        return [Generation(p, [], [Completion(self.answer, [], "stop", 0)]) for p in prompts]
