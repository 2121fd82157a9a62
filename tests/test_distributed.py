"""Many ranks, without launching any: shards, batch-wide terms, start-up checks, sharded
checkpoints, QLoRA on one device. The 2-rank FSDP2 iterations: tests/test_distributed_ranks.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rzero_pl.grpo.rollout import Scores
from rzero_pl.rewards import RepetitionPenalty
from rzero_pl.scale import distributed
from rzero_pl.scale.sharding import FullyShard, check_strategy

# ---- pure helpers ----------------------------------------------------------------------


def test_shards_are_contiguous_equal_and_cover_the_step():
    items = list(range(12))
    parts = [distributed.shard(items, r, 4) for r in range(4)]
    assert parts[1] == ([3, 4, 5], 3)
    assert [x for part, _ in parts for x in part] == items


def test_uneven_shards_are_refused_with_the_keys_to_change():
    with pytest.raises(ValueError, match="do not split evenly over 4 ranks"):
        distributed.shard_bounds(10, 0, 4)
    with pytest.raises(ValueError, match="rank 4 is not in a world of size 4"):
        distributed.shard_bounds(8, 4, 4)


def test_uneven_shards_give_the_first_ranks_one_more():
    # 10 candidates over 4 ranks: 3, 3, 2, 2 (by hand), contiguous and in rank order
    bounds = [distributed.shard_bounds(10, r, 4, even=False) for r in range(4)]
    assert bounds == [(0, 3), (3, 6), (6, 8), (8, 10)]
    assert distributed.shard_bounds(2, 3, 4, even=False) == (2, 2)  # fewer items than ranks
    assert distributed.shard_bounds(8, 1, 4, even=False) == distributed.shard_bounds(8, 1, 4)
    assert distributed.shard(list("abcde"), 1, 2, even=False) == (["d", "e"], 3)
    with pytest.raises(ValueError, match="rank 2 is not in a world of size 2"):
        distributed.shard_bounds(5, 2, 2, even=False)


def test_strided_indices_and_merge_are_inverse():
    assert distributed.strided_indices(5, 0, 2) == [0, 2, 4]
    assert distributed.strided_indices(5, 1, 2) == [1, 3]
    assert distributed.strided_indices(1, 1, 2) == []
    for n in range(8):
        for world in range(1, 5):
            parts = [
                [f"x{i}" for i in distributed.strided_indices(n, r, world)] for r in range(world)
            ]
            assert distributed.merge_strided(parts) == [f"x{i}" for i in range(n)]
    with pytest.raises(ValueError, match="shard 0 has 2 items, expected 1 of 2"):
        distributed.merge_strided([[1, 2], []])
    with pytest.raises(ValueError, match="rank 2"):
        distributed.strided_indices(5, 2, 2)


def test_rank_zero_asks_the_launcher_before_any_process_group(monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.is_rank_zero()
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert distributed.is_rank_zero()
    monkeypatch.setenv("RANK", "1")  # torchrun set it; the process group is not up yet
    assert not distributed.is_rank_zero()
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setattr(distributed.rank_zero_only, "rank", 2, raising=False)  # Lightning's
    assert not distributed.is_rank_zero()


def test_single_process_helpers_are_identities():
    assert distributed.world() == (0, 1)
    assert distributed.gather_objects({"a": 1}) == [{"a": 1}]
    assert distributed.gather_lists([1, 2]) == ([1, 2], 0)
    assert distributed.on_rank_zero(lambda: 7) == 7


def test_repetition_penalty_counts_clusters_and_denominator_over_the_whole_batch():
    everyone = ["what is 1 + 1 ?", "what is 1 + 1 ?", None, "name the largest prime below 50"]
    # Rank 1 of 2 holds the last two rollouts; the duplicates live on rank 0.
    local, _ = RepetitionPenalty().score(everyone, 2, 2)
    whole, _ = RepetitionPenalty().score(everyone, 0, 4)
    assert np.allclose(local, whole[2:])
    assert np.allclose(whole, [2 / 4, 2 / 4, 1 / 4, 1 / 4])  # by hand


def test_rank_metrics_combine_into_the_whole_batch():
    from rzero_pl.grpo.rollout_log import combine_rank_metrics

    ranks = [
        {"reward_mean": 0.25, "reward_max": 1.0, "rollout_seconds": 2.0, "gen_tokens_per_s": 100.0},
        {"reward_mean": 0.75, "reward_max": 0.5, "rollout_seconds": 3.0, "gen_tokens_per_s": 50.0},
    ]
    assert combine_rank_metrics(ranks) == {
        "reward_mean": 0.5,  # equal shards: the mean of the means
        "reward_max": 1.0,
        "rollout_seconds": 3.0,  # the step waits for the slowest rank
        "gen_tokens_per_s": 150.0,  # ranks generate at the same time
    }
    assert combine_rank_metrics(ranks[:1]) == ranks[0]


class FSDPStrategy:  # the name is what check_strategy reads
    pass


class Mesh:
    """A device mesh's shape, as check_strategy reads it."""

    def __init__(self, world: int, tp: int) -> None:
        self.world, self.tp = world, tp

    def size(self) -> int:
        return self.world

    def __getitem__(self, name: str) -> Mesh:
        return Mesh(self.tp if name == "tensor_parallel" else self.world // self.tp, 1)


class ModelParallelStrategy:
    def __init__(self, world: int = 2, tp: int = 1) -> None:
        self.device_mesh = Mesh(world, tp)


def test_impossible_strategy_combinations_fail_with_a_clear_message():
    with pytest.raises(ValueError, match="nf4 cannot be sharded by FSDPStrategy"):
        check_strategy(FSDPStrategy(), "nf4", "cuda")
    with pytest.raises(ValueError, match="FSDPStrategy .FSDP1. needs GPUs"):
        check_strategy(FSDPStrategy(), None, "cpu")
    with pytest.raises(ValueError, match="nf4 weights cannot be sharded by FSDP2"):
        check_strategy(ModelParallelStrategy(), "nf4", "cpu")


def test_tensor_parallel_mesh_is_refused():
    with pytest.raises(ValueError, match="tensor_parallel_size: 1 and data_parallel_size: 8"):
        check_strategy(ModelParallelStrategy(world=8, tp=8), None, "cpu")
    check_strategy(ModelParallelStrategy(world=8, tp=1), None, "cpu")  # accepted


def test_cpu_offload_needs_a_gpu():
    with pytest.raises(ValueError, match="cpu_offload needs a GPU"):
        FullyShard(cpu_offload=True).kwargs("cpu")
    assert FullyShard().kwargs("cpu")["mp_policy"].param_dtype is None  # no bf16 on CPU
    assert FullyShard().kwargs("cuda")["mp_policy"].param_dtype == torch.bfloat16


def _one_update(eager_state: bool) -> tuple[torch.Tensor, torch.Tensor]:
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    from rzero_pl.scale.sharding import init_adamw_state

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    if eager_state:
        init_adamw_state(optimizer)
    if eager_state is not None:
        get_optimizer_state_dict(model, optimizer)  # what a sharded checkpoint save does
    model(torch.ones(2, 4)).sum().backward()
    optimizer.step()
    return model.weight.detach(), optimizer.state[model.weight]["step"]


def test_a_sharded_checkpoint_before_the_first_update_leaves_adamw_untouched():
    plain, plain_step = _one_update(None)  # no checkpoint at all
    eager, eager_step = _one_update(True)
    torch.testing.assert_close(eager, plain, rtol=0, atol=0)
    assert eager_step == plain_step == 1
    # Without the eager state, torch makes one up with a zero-gradient step: the first
    # real update is then bias-corrected as a second one.
    lazy, lazy_step = _one_update(False)
    assert lazy_step == 2 and not torch.allclose(lazy, plain)


# ---- QLoRA on one device ---------------------------------------------------------------


def _alternating_reward(rollouts):
    # 0, 1, 0, 1 within every group: each step has signal
    rewards = [float(i % 2) for i in range(len(rollouts))]
    return Scores(rewards, [None] * len(rollouts), [{} for _ in rollouts])


def test_qlora_nf4_role_adapters_train_a_challenger_and_a_solver_step(tiny_model_dir, tmp_path):
    from builders import quiet_trainer
    from rzero_pl.datamodules import ChallengerPromptsDataModule

    from rzero_pl.engines import HFEngine, SamplingParams
    from rzero_pl.grpo.challenger import ChallengerGRPO
    from rzero_pl.grpo.solver import SolverGRPO
    from rzero_pl.models import PretrainedModel
    from rzero_pl.models.actor import Actor
    from rzero_pl.models.policy import LoraSettings, Policy

    class Challenger(ChallengerGRPO):
        def on_fit_start(self) -> None:  # no solver votes here: the reward is _alternating_reward
            pass

        def score(self, items, rollouts):
            return _alternating_reward(rollouts)

    class Solver(SolverGRPO):
        def score(self, items, rollouts):
            return _alternating_reward(rollouts)

    policy = Policy(
        PretrainedModel(tiny_model_dir, dtype="float32"),
        lora=LoraSettings(r=4, alpha=8, target_modules=["q_proj", "v_proj", "up_proj"]),
        quantization="nf4",
    )
    assert any("4bit" in type(m).__name__ for m in policy.modules())
    actor = Actor(policy, HFEngine())
    settings = dict(
        group_size=4,
        sampling=SamplingParams(temperature=1.0, max_new_tokens=6),
        minibatch_size=8,
        micro_batch_size=4,
        lr=1e-2,
    )
    before = {n: p.detach().clone() for n, p in policy.named_parameters() if "lora_B" in n}
    for role, module in (("challenger", Challenger), ("solver", Solver)):
        trainer = quiet_trainer(tmp_path / role)
        trainer.fit(module(actor, **settings), ChallengerPromptsDataModule(2))
        assert trainer.global_step == 1
        changed = {n for n, p in policy.named_parameters() if n in before}
        changed = {
            n for n in changed if not torch.equal(dict(policy.named_parameters())[n], before[n])
        }
        assert changed and all(f".{role}." in n for n in changed), changed
        before.update({n: dict(policy.named_parameters())[n].detach().clone() for n in changed})
