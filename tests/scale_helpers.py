"""Helpers for the multi-rank tests, importable by the ranks that torchrun starts.

``PromptSeededEngine`` makes sampling independent of how prompts are split across ranks, so
that a 2-rank run can be compared with a 1-rank run draw for draw; ``build_primed_model``
makes a tiny model that already writes well-formed questions and boxed answers, so that a
one-iteration run has a non-empty curriculum and non-zero advantages.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

import torch

from rzero_pl.curriculum import Curriculum
from rzero_pl.engines.base import Generation, SamplingParams
from rzero_pl.engines.hf import HFEngine


class PromptSeededEngine(HFEngine):
    """HFEngine, one sample per call: sample ``k`` of prompt ``j`` seeded ``seed + j * n + k``.

    That is the Engine protocol's seeding, which vLLM follows and HFEngine (seeded per
    batch) does not. The modules offset ``params.seed`` by their shard's first sample, so
    every sample is drawn with the same seed on any number of ranks.
    """

    def generate(
        self, prompts: Sequence[str], *, role: str, params: SamplingParams
    ) -> list[Generation]:
        out: list[Generation] = []
        one = replace(params, n=1)
        for j, prompt in enumerate(prompts):
            samples = []
            for k in range(params.n):
                seed = None if params.seed is None else params.seed + j * params.n + k
                samples += super().generate([prompt], role=role, params=replace(one, seed=seed))
            out.append(Generation(prompt, samples[0].prompt_ids))
            out[-1].completions = [c for g in samples for c in g.completions]
        return out


def _texts(rng: random.Random, n: int) -> list[str]:
    texts = []
    for _ in range(n):
        a, b = rng.randrange(10), rng.randrange(10)
        question = f"What is {a} + {b}?"
        guess = a + b if rng.random() < 0.6 else rng.randrange(19)  # a solver that errs
        # the challenger's own answer too: the released question format requires one
        texts.append(f"Write a question.\n<question>{question}</question> \\boxed{{{a + b}}}")
        texts.append(f"Solve: {question}\n\\boxed{{{guess}}}")
    return texts


def build_primed_model(folder: str, steps: int = 80, hidden: int = 48) -> str:
    """A tiny Llama (tests/conftest.py) taught the toy prompts' output format for a moment.

    vLLM's CPU attention needs head sizes that are multiples of 32: ``hidden=128``.
    """
    from builders import build_tiny_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    build_tiny_model(folder, hidden=hidden)
    model = AutoModelForCausalLM.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    rng = random.Random(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=6e-3)
    for _ in range(steps):
        rows = [tok(t)["input_ids"] + [tok.eos_token_id] for t in _texts(rng, 8)]
        width = max(len(r) for r in rows)
        ids = torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r in rows])
        labels = ids.masked_fill(ids == tok.pad_token_id, -100)
        loss = model(input_ids=ids, attention_mask=(labels != -100).long(), labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(folder)
    return folder


class _FixedChallenger:
    """An actor seen by the curriculum: the challenger's candidates are fixed texts (sample
    ``k`` of a round is text ``k``), the solver's votes come from the real actor."""

    def __init__(self, actor, texts: list[str], round_seed: int) -> None:
        self.actor, self.texts, self.round_seed = actor, texts, round_seed

    def generate(self, prompts, *, role, params):
        if role != "challenger":
            return self.actor.generate(prompts, role=role, params=params)
        from rzero_pl.engines.base import Completion

        first = params.seed - self.round_seed  # the shard's first sample of the round
        out = []
        for prompt in prompts:
            texts = [self.texts[(first + k) % len(self.texts)] for k in range(params.n)]
            version = self.actor.version(role)
            completions = [Completion(t, [], "stop", version) for t in texts]
            out.append(Generation(prompt, [], completions))
        return out

    def __getattr__(self, name):
        return getattr(self.actor, name)


class FixedQuestionsCurriculum(Curriculum):
    """The curriculum over fixed, well-formed candidate questions (``What is a + b?``), voted
    on by the solver as usual: a test's solver phase then never depends on what a model built
    on the test machine happens to write."""

    def round(self, actor, vote, seed, offset):
        rng = random.Random(seed)
        texts = []
        for _ in range(self.candidates):
            a, b = rng.randrange(10), rng.randrange(10)
            texts.append(f"<question>What is {a} + {b}?</question> \\boxed{{{a + b}}}")
        return super().round(_FixedChallenger(actor, texts, seed), vote, seed, offset)
