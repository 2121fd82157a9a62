"""The pure rollout helpers that GRPOModule calls: building rollouts, summing minibatch counts."""

import pytest

from rzero_pl.engines.base import Completion, Generation
from rzero_pl.grpo.rollout import sum_minibatch_counts, to_rollouts


def _generation(prompt_ids, versions):
    completions = [Completion(f"c{i}", [i, i], "stop", v) for i, v in enumerate(versions)]
    return Generation("p", prompt_ids, completions)


def test_to_rollouts_one_per_completion_grouped_by_prompt():
    rollouts = to_rollouts([_generation([1], [3, 3]), _generation([2, 2], [3])], 3)
    assert [(r.prompt_ids, r.completion_ids, r.group) for r in rollouts] == [
        ([1], [0, 0], 0),
        ([1], [1, 1], 0),
        ([2, 2], [0, 0], 1),
    ]
    assert [r.completion for r in rollouts] == ["c0", "c1", "c0"]


def test_to_rollouts_refuses_a_stale_completion():
    with pytest.raises(RuntimeError, match="stale rollout: weight version 2, engine serves 3"):
        to_rollouts([_generation([1], [3, 2])], 3)


def test_sum_minibatch_counts_adds_ranks_minibatch_by_minibatch():
    # rank 0: two minibatches (10 tokens / 2 rows, 4 / 1); rank 1: one (7 / 2)
    assert sum_minibatch_counts([[(10, 2), (4, 1)], [(7, 2)]]) == [(17, 4), (4, 1)]
    assert sum_minibatch_counts([[(5, 1)]]) == [(5, 1)]
