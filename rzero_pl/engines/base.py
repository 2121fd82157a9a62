"""The Engine protocol: the one place where text is generated.

Trainers hand prompts to an engine and get completions back; they never call
``model.generate`` themselves. At the end of each rollout step (after its last optimizer
update) a role's new weights are pushed to the engine (``push``), and every completion
records the weight version that produced it, so a stale rollout can always be detected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

ROLES = ("challenger", "solver")


@dataclass(frozen=True)
class SamplingParams:
    """How to sample: the knobs every engine supports with the same meaning.

    ``top_k <= 0`` and ``top_p >= 1`` disable those filters; ``temperature == 0`` is greedy.
    """

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"sampling n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"sampling temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"sampling top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"sampling max_new_tokens must be >= 1, got {self.max_new_tokens}")


@dataclass
class Completion:
    """One sampled continuation of a prompt."""

    text: str
    token_ids: list[int]
    finish_reason: str  # "stop" (EOS or a stop string) or "length"
    weight_version: int
    logprobs: list[float] | None = None  # per token, under the sampling temperature


@dataclass
class Generation:
    """All completions of one prompt."""

    prompt: str
    prompt_ids: list[int]
    completions: list[Completion] = field(default_factory=list)


@runtime_checkable
class Engine(Protocol):
    """What a generation backend provides (``HFEngine``, ``VLLMEngine``).

    ``shares_trainer_weights`` is the engine's one capability flag: True when it samples
    from the trainer's own modules (``HFEngine``: FSDP-sharded weights must be gathered
    around its generation, and its batches take trainer memory), False when it keeps its
    own copy (``VLLMEngine``: weights are pushed to it).
    """

    shares_trainer_weights: bool

    def memory_bytes(self, weight_bytes: float) -> tuple[int, float | None]:
        """``(tokens per generation batch on the trainer's memory, the engine's own bytes)``.

        ``weight_bytes`` is the size of one copy of the model's weights; the second value
        is None for an engine that holds nothing beside the trainer's modules.
        """

    def attach(self, policy: Any) -> None:
        """Bind the engine to a policy (its base model, tokenizer and role weights)."""

    def generate(
        self, prompts: Sequence[str], *, role: str, params: SamplingParams
    ) -> list[Generation]:
        """Return one ``Generation`` per prompt, each with ``params.n`` completions.

        Under several ranks every rank calls it at the same points with the same role, with
        no prompts when it has none: an engine that keeps its own copy of FSDP-sharded
        weights gathers them here, a collective. Sample ``k`` of prompt ``j`` is seeded
        ``params.seed + j * n + k`` (where the engine can): callers offset the seed by their
        shard's first sample, so a sample's seed does not depend on the number of ranks.
        """

    def push(self, role: str) -> int:
        """Take the role's current trainer weights; return the new weight version."""

    def version(self, role: str) -> int:
        """The weight version the engine currently serves for ``role``."""


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {ROLES}")
    return role
