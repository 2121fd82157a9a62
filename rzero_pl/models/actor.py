"""Actor: the one owner of the policy and of the engine that samples it.

Both roles train the same ``Policy`` (one base model, a challenger and a solver adapter or
model) and sample it through the same ``Engine``. The CLI builds one ``Actor`` from the
config's ``actor:`` section and hands it to the solver, the challenger, the curriculum and
the evaluation; nothing else builds either part. (Not yet the only holder: ``GRPOModule``
keeps ``policy`` and ``engine`` references to the same objects and calls the engine itself;
issue 24's second step.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from rzero_pl.engines.base import Engine, Generation, SamplingParams
from rzero_pl.engines.hf import HFEngine
from rzero_pl.models.policy import Policy


class Actor:
    """The policy and its engine, shared by every part of a run.

    Args:
        policy: The base model and the role weights (LoRA adapters or full models).
        engine: The generation backend (default: ``HFEngine``).
    """

    def __init__(self, policy: Policy, engine: Engine | None = None) -> None:
        self.policy = policy
        self.engine = engine if engine is not None else HFEngine()
        if policy is not None:  # None only while the CLI checks a config before loading
            self.engine.attach(policy)

    @property
    def tokenizer(self) -> Any:
        return self.policy.tokenizer

    def generate(
        self, prompts: Sequence[str], *, role: str, params: SamplingParams
    ) -> list[Generation]:
        """Sample ``role``'s current weights (a collective under several ranks)."""
        return self.engine.generate(prompts, role=role, params=params)

    def gathered(self) -> contextlib.AbstractContextManager:
        """Full weights on every rank while an engine that samples the trainer's own
        modules generates; a no-op for an engine with its own copy (collective)."""
        if not self.engine.shares_trainer_weights:
            return contextlib.nullcontext()
        return self.policy.gathered()

    def version(self, role: str) -> int:
        """The weight version the engine serves for ``role`` (stale rollouts are refused)."""
        return self.engine.version(role)

    def engine_memory(self, weight_bytes: float) -> tuple[int, float | None]:
        """The engine's memory inputs (``Engine.memory_bytes``) for the memory estimate."""
        return self.engine.memory_bytes(weight_bytes)

    def push(self, role: str) -> int:
        """Hand ``role``'s trainer weights to the engine; return the new weight version."""
        return self.engine.push(role)

    def load_role(self, role: str, folder: str) -> None:
        """Load saved role weights into the policy and serve them."""
        self.policy.load_role(role, folder)
        self.engine.push(role)
