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

from rzero_pl.errors import MAX_ITEMS, MAX_TOKENS, check_number


@dataclass(frozen=True)
class SamplingParams:
    """How to sample: the knobs every engine supports with the same meaning.

    ``top_k <= 0`` and ``top_p >= 1`` disable those filters; ``temperature == 0`` is greedy.
    ``banned_token_ids`` are never drawn (the caller's vocabulary dropout mask,
    ``rzero_pl.vocab_dropout``); engines that report log-probs report them under that mask.
    """

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None
    banned_token_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        # One line naming the key; non-finite values are refused too (temperature .inf
        # sampled uniform noise for a whole run; .nan failed only when sampling started).
        check_number("sampling.n", self.n, at_least=1, at_most=MAX_ITEMS)
        check_number("sampling.temperature", self.temperature, at_least=0)
        check_number("sampling.top_p", self.top_p, above=0, at_most=1)
        check_number("sampling.top_k", self.top_k, at_most=MAX_TOKENS)
        check_number("sampling.max_new_tokens", self.max_new_tokens, at_least=1, at_most=MAX_TOKENS)
        check_number("sampling.seed", self.seed, optional=True)
        check_number("sampling.banned_token_ids", len(self.banned_token_ids), at_most=MAX_TOKENS)


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
class Sampler(Protocol):
    """Anything that samples a role: an ``Engine``, or the ``Actor`` that owns one."""

    def generate(
        self, prompts: Sequence[str], *, role: str, params: SamplingParams
    ) -> list[Generation]:
        """One ``Generation`` per prompt, each with ``params.n`` completions."""


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


def context_length(model: Any) -> int | None:
    """The longest prompt + completion a transformers model was built for (None: unknown)."""
    config = getattr(model, "config", None)
    config = getattr(config, "text_config", None) or config
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def token_budgets(
    prompts: Sequence[str], encoded: Sequence[Sequence[int]], max_new: int, context: int | None
) -> list[int]:
    """New tokens each prompt may get: ``max_new``, cut so that prompt + completion fits the
    model's ``context``; a prompt that fills the context is refused, naming it.

    Why: past its context a model only slows down (a 70k-token question ran for minutes
    with nothing but a transformers warning) and its positions mean nothing.
    """
    if context is None:
        return [max_new] * len(encoded)
    budgets = []
    for prompt, ids in zip(prompts, encoded, strict=True):
        if len(ids) >= context:
            raise ValueError(
                f"a prompt of {len(ids)} tokens does not fit the model's context of {context} "
                f"tokens: {shorten(prompt)}; shorten or drop that question"
            )
        budgets.append(min(max_new, context - len(ids)))
    return budgets


def shorten(text: str, keep: int = 60) -> str:
    """``text`` as a short quote: its start and end (where a prompt's question is)."""
    if len(text) <= 2 * keep + 5:
        return repr(text)
    return f"{text[:keep]!r} … {text[-keep:]!r} ({len(text)} characters)"
