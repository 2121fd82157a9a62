"""Vocabulary dropout: a seeded random mask on the challenger's output vocabulary.

Dineen et al., "Vocabulary Dropout for Curriculum Diversity in LLM Co-Evolution" (arXiv
2604.03472, section 3): each token outside a protected set is dropped from the proposer's
output logits with a fixed probability; the mask is hard (dropped tokens get probability 0)
and non-stationary (drawn anew), and applies both when the challenger is trained and when it
writes the curriculum's candidates. A challenger that has locked onto one template finds
some of its tokens missing and must write something else.

Here one mask is drawn per call, from that call's seed: per rollout step in training (the
same mask scores that step's log-probs), per candidate round in the curriculum. Special
tokens and the tokens of ``keep`` (the question format's markers) are never dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch

from rzero_pl.errors import ConfigError, check_number

# Finite on purpose: exp(-1e4) is 0 in float32, so a banned token is never drawn and adds
# nothing to a log-sum-exp, yet a banned token inside a prompt (whose log-prob the loss masks
# out) gives a finite log-prob instead of -inf, which would turn the masked-out ratio into NaN.
BANNED_LOGIT = -1.0e4


@dataclass(frozen=True)
class VocabularyDropout:
    """Drop each unprotected token with probability ``rate`` from one call's sampling.

    Args:
        rate: Share of the unprotected vocabulary dropped per mask (0 keeps every token).
        keep: Strings whose tokens are never dropped (e.g. ``"<question>"``, ``"\\boxed{"``):
            each is tokenized on its own, so a merge that appears only in context is not
            protected.
    """

    rate: float = 0.0
    keep: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_number("vocab_dropout.rate", self.rate, at_least=0)
        if self.rate >= 1:
            raise ConfigError(
                f"vocab_dropout.rate must be below 1 (got {self.rate}): 1 drops "
                "every unprotected token"
            )

    def banned(self, tokenizer: Any, seed: int) -> tuple[int, ...]:
        """The token ids this call's sampling never draws (sorted; empty at rate 0)."""
        if self.rate == 0:
            return ()
        protected = set(getattr(tokenizer, "all_special_ids", ()) or ())
        for text in self.keep:
            protected.update(tokenizer.encode(text, add_special_tokens=False))
        return dropped_ids(len(tokenizer), tuple(sorted(protected)), self.rate, seed)


@lru_cache(maxsize=8)
def dropped_ids(
    vocab_size: int, protected: tuple[int, ...], rate: float, seed: int
) -> tuple[int, ...]:
    """Ids in ``range(vocab_size)`` outside ``protected``, each drawn with probability ``rate``
    by a generator seeded with ``seed`` (the same ids for the same arguments on any machine)."""
    generator = torch.Generator().manual_seed(seed)
    draws = torch.rand(vocab_size, generator=generator) < rate
    if protected:
        draws[torch.tensor([p for p in protected if 0 <= p < vocab_size], dtype=torch.long)] = False
    return tuple(draws.nonzero().squeeze(1).tolist())


def mask_logits(logits: torch.Tensor, banned: Sequence[int]) -> torch.Tensor:
    """``logits`` (``[..., vocab]``) with the ``banned`` ids at -inf (a new tensor)."""
    if not banned:
        return logits
    index = torch.tensor(banned, dtype=torch.long, device=logits.device)
    return logits.index_fill(-1, index, BANNED_LOGIT)
