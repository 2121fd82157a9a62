"""Sampling for the parts that sample a role on its behalf: the votes (the solver) and the
curriculum's questions (the challenger).

Each role's budget, ``max_new_tokens``, is set once, in the role's own ``sampling``: a
``RoleSampling`` with ``max_new_tokens: null`` (the default) takes the role's when it is bound
(``MajorityVote.bound_to``, ``Curriculum.bound_to``); a number there still wins.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from rzero_pl.engines.base import SamplingParams


@dataclass(frozen=True)
class RoleSampling(SamplingParams):
    """``SamplingParams`` whose ``max_new_tokens`` may be None: the sampled role's own budget
    (its module's ``sampling.max_new_tokens``), resolved by ``with_budget``."""

    max_new_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens is not None:
            super().__post_init__()
        else:  # every other knob is checked as SamplingParams checks it
            self.with_budget(1)  # (its checks name "sampling.<knob>", as SamplingParams')

    @classmethod
    def of(cls, params: SamplingParams) -> RoleSampling:
        """``params`` as a ``RoleSampling`` (a plain ``SamplingParams`` keeps its budget)."""
        if isinstance(params, RoleSampling):
            return params
        return cls(**{f.name: getattr(params, f.name) for f in fields(SamplingParams)})

    def with_budget(self, budget: int | None, key: str = "sampling") -> SamplingParams:
        """These settings with the role's ``budget`` where none is set here (one line naming
        ``key`` when neither says one)."""
        if self.max_new_tokens is None and budget is None:
            raise ValueError(
                f"{key}.max_new_tokens: not set, and the role it samples names no budget; "
                "set it here or in the role's sampling"
            )
        values = {f.name: getattr(self, f.name) for f in fields(SamplingParams)}
        values["max_new_tokens"] = self.max_new_tokens or budget
        return SamplingParams(**values)
