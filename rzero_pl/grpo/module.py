"""GRPOModule: the Lightning side of GRPO, shared by the challenger and the solver.

One epoch is one rollout step. At the start of each epoch the datamodule hands this
module the epoch's items (questions, or challenger prompt slots) through ``rollout``:
the engine samples G completions per item, the role scores them (``score``), group
advantages are computed, and the sampling policy's and the reference's log-probs are
recorded. The finished rollouts are then served in micro-batches to an automatically
optimised ``training_step``; Lightning accumulates micro-batches into minibatches (one
optimizer update each), clips gradients and applies the precision. At the end of the
epoch the new weights are pushed to the engine.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader

from rzero_pl.engines.base import SamplingParams
from rzero_pl.errors import MAX_ITEMS, MAX_SAMPLES, MAX_STEPS, check_number
from rzero_pl.ground.seeds import derive
from rzero_pl.ground.update_guard import UpdateGuard
from rzero_pl.grpo import loss as loss_math
from rzero_pl.grpo.loss import GRPOLoss
from rzero_pl.grpo.rollout import (
    Rollout,
    RolloutDataset,
    Scores,
    collate,
    completion_logprobs,
    keep_informative,
    minibatch_counts,
    padded,
    sum_minibatch_counts,
    to_rollouts,
    with_minibatch_counts,
)
from rzero_pl.grpo.rollout_log import combine_rank_metrics, rollout_metrics, write_rollout_table
from rzero_pl.models.actor import Actor
from rzero_pl.models.policy import Policy
from rzero_pl.progress import Progress
from rzero_pl.prompts import RolePrompt
from rzero_pl.scale import distributed, memory, sharding
from rzero_pl.vocab_dropout import VocabularyDropout, mask_logits


class GRPOModule(L.LightningModule):
    """On-policy GRPO for one role of the policy.

    Args:
        actor: The shared policy and engine (None: handed over later with ``bind``, as the
            CLI does with the one ``Actor`` of a run).
        prompt: How an item becomes the role's prompt; None: the model source's prompt for
            the role (taken when the actor is bound).
        group_size: G, completions sampled per prompt.
        sampling: Sampling settings for rollouts (``n`` is replaced by ``group_size``).
        loss: The GRPO objective's settings.
        minibatch_size: Rollouts per optimizer update.
        micro_batch_size: Rollouts per forward/backward pass (gradients accumulate).
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: Optimizer updates of linear learning-rate warm-up.
        log_rollouts_every: Write a text table of a few rollouts every k rollout steps.
        seed: Base seed for rollout sampling.
        max_bad_updates: NaN/inf updates in a row (each one skipped) that stop the run; 0 never
            stops (``rzero_pl.ground.update_guard.UpdateGuard``).
        skip_signal_free: Train only on rollouts with a non-zero advantage (groups that
            scored alike carry no policy gradient; needs ``loss.kl_coef`` 0). Saves their
            forward/backward passes; a minibatch then averages over fewer tokens.
        vocab_dropout: A seeded random mask on the output vocabulary, drawn anew each rollout
            step and applied to that step's sampling and log-probs (``rzero_pl.vocab_dropout``;
            the challenger's option in arXiv 2604.03472). None: every token.
    """

    role: str  # "challenger" or "solver": set by each role's subclass

    def __init__(
        self,
        actor: Actor | None,
        prompt: RolePrompt | None,
        group_size: int = 5,
        sampling: SamplingParams | None = None,
        loss: GRPOLoss | None = None,
        minibatch_size: int = 640,
        micro_batch_size: int = 8,
        lr: float = 1e-6,
        weight_decay: float = 0.01,
        warmup_steps: int = 0,
        log_rollouts_every: int = 5,
        seed: int = 0,
        max_bad_updates: int = 3,
        skip_signal_free: bool = False,
        vocab_dropout: VocabularyDropout | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        check_number(f"{name}.minibatch_size", minibatch_size, at_least=1, at_most=MAX_ITEMS)
        check_number(f"{name}.micro_batch_size", micro_batch_size, at_least=1, at_most=MAX_ITEMS)
        check_number(f"{name}.lr", lr, above=0)
        check_number(f"{name}.weight_decay", weight_decay, at_least=0)
        check_number(f"{name}.warmup_steps", warmup_steps, at_least=0, at_most=MAX_STEPS)
        check_number(
            f"{name}.log_rollouts_every", log_rollouts_every, at_least=0, at_most=MAX_STEPS
        )
        check_number(f"{name}.max_bad_updates", max_bad_updates, at_least=0, at_most=MAX_STEPS)
        check_number(f"{name}.group_size (G)", group_size, at_least=2, at_most=MAX_SAMPLES)
        if minibatch_size % micro_batch_size:
            raise ValueError(
                f"minibatch_size ({minibatch_size}) must be a multiple of micro_batch_size "
                f"({micro_batch_size})"
            )
        self.actor: Actor | None = None
        self.policy: Policy | None = None
        self.prompt = prompt
        self.group_size = group_size
        self.sampling = sampling or SamplingParams(temperature=1.0, top_p=0.99)
        self.loss_settings = loss or GRPOLoss()
        self.minibatch_size = minibatch_size
        self.micro_batch_size = micro_batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup_steps = warmup_steps
        self.log_rollouts_every = log_rollouts_every
        self.seed = seed
        self.max_bad_updates = max_bad_updates
        if skip_signal_free and self.loss_settings.kl_coef > 0:
            raise ValueError(
                "skip_signal_free needs loss.kl_coef 0: a rollout with zero advantage still "
                f"carries the KL term (kl_coef is {self.loss_settings.kl_coef})"
            )
        self.skip_signal_free = skip_signal_free
        self.vocab_dropout = vocab_dropout
        self.strict_loading = False  # checkpoints hold only the trainable weights
        self._restored = False  # weights restored from a checkpoint, not yet pushed
        self._memory_line: str | None = None  # the memory estimate last printed
        if actor is not None:
            self.bind(actor)

    def bind(self, actor: Actor) -> None:
        """Train ``actor``'s policy and sample through the actor (shared by both roles); with
        no configured prompt, take the model source's for this role."""
        self.actor = actor
        self.prompt = self.prompt or actor.policy.source.prompt(self.role)
        # The actor's own policy, registered here too because Lightning moves, checkpoints
        # and fits a module's submodules; every generation and push goes through the actor.
        self.policy = actor.policy
        if self.loss_settings.kl_coef > 0:
            actor.policy.enable_reference(self.loss_settings.reference)

    # ---- Lightning wiring ---------------------------------------------------------------

    def setup(self, stage: str) -> None:
        if self.actor is None:
            raise RuntimeError(f"{type(self).__name__} has no actor: pass one or bind() it")
        trainer = self.trainer
        # One epoch is one rollout step: the loader must be rebuilt every epoch.
        trainer.reload_dataloaders_every_n_epochs = 1
        sharding.check_strategy(
            trainer.strategy, self.policy.quantization, trainer.strategy.root_device.type
        )
        # Each rank holds 1/world of every minibatch: it accumulates that many micro-batches.
        per_update = self.micro_batch_size * trainer.world_size
        if self.minibatch_size % per_update:
            raise ValueError(
                f"minibatch_size ({self.minibatch_size}) must be a multiple of micro_batch_size "
                f"x ranks ({self.micro_batch_size} x {trainer.world_size})"
            )
        accumulate = self.minibatch_size // per_update
        if trainer.accumulate_grad_batches not in (1, accumulate):
            raise ValueError(
                f"trainer.accumulate_grad_batches ({trainer.accumulate_grad_batches}) is "
                f"set by GRPO: minibatch_size / (micro_batch_size x ranks) = {accumulate}; "
                "remove it and set minibatch_size instead"
            )
        trainer.accumulate_grad_batches = accumulate
        self._prepare_reference()
        # from_pretrained leaves models in eval mode; training forwards run in train mode
        # (log-prob recomputation switches to eval itself), so Lightning finds none in eval.
        self.policy.train()
        # Once per role: every phase of a run gives the same estimate (printed again if not).
        estimate = f"[{self.role}] {memory.estimate_for(self, trainer).describe()}"
        if estimate != self._memory_line:
            rank_zero_info(estimate)
            self._memory_line = estimate

    def _prepare_reference(self) -> None:
        """Point the KL reference at the base, or copy this role's phase-start weights.

        Runs in ``setup``, before Lightning restores a checkpoint: a resumed phase copies the
        weights it started from (the previous phase's), not the restored ones.
        """
        if self.loss_settings.kl_coef <= 0:
            return
        if self.loss_settings.reference == "start":
            self.policy.snapshot_reference(self.role)
        else:
            self.policy.clear_reference_snapshot()

    def configure_model(self) -> None:
        """Under ``ModelParallelStrategy``: shard the policy with FSDP2 (once; roles share it)."""
        if self._device_mesh is not None:
            self.policy.fully_shard(self.device_mesh["data_parallel"])

    def configure_optimizers(self) -> Any:
        params = self.policy.trainable_parameters(self.role)
        optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        sharding.init_adamw_state(optimizer)
        warmup = max(self.warmup_steps, 0)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min(1.0, (step + 1) / warmup) if warmup else 1.0
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def configure_callbacks(self) -> list:
        # Skips NaN/inf and signal-free updates; stops after max_bad_updates bad ones in a row.
        return [UpdateGuard(self.max_bad_updates)]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.policy.is_sharded:
            return  # a sharded (DCP) checkpoint is loaded key for key: keep every shard
        keep = {f"policy.{name}" for name in self.policy.trainable_names()}
        state = checkpoint["state_dict"]
        checkpoint["state_dict"] = {k: v for k, v in state.items() if k in keep}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The weights are restored after this hook, behind the engine's back: the next
        # rollout step pushes them first (an engine with its own copy would sample stale ones).
        self._restored = True

    def on_train_epoch_end(self) -> None:
        self.actor.push(self.role)

    # ---- the rollout step ---------------------------------------------------------------

    def score(self, items: Sequence[dict], rollouts: list[Rollout]) -> Scores:
        """The role's rewards, answers, terms and metrics for this rank's ``rollouts`` of
        ``items`` (rollout ``r`` answers ``items[r.group]``); reads, never writes them."""
        raise NotImplementedError

    def advantage_weights(self, items: Sequence[dict]) -> list[float] | None:
        """A factor for the advantages of each item's group (None: all 1); a role's hook."""
        return None

    def rollout_step(self, items: Sequence[dict]) -> DataLoader:
        """One rollout step: this rank's shard of ``items`` sampled, scored and served.

        ``RolloutDataModule.train_dataloader`` calls it at each epoch's start (one epoch is
        one rollout step). Under several ranks every rank makes the step's collectives in
        this order (a rank with no items joins each too): (1) ``Actor.gathered`` and
        ``Actor.generate`` (FSDP gathers the sharded weights once for the step); (2) the
        role's ``score`` (the challenger gathers every rank's questions, then its vote calls
        ``Actor.generate``); (3) the rewards, since ``scale="batch"`` advantages need the
        whole batch; (4) with ``skip_signal_free``, the informative counts; (5) the
        log-prob forward passes; (6) the metrics; (7) the minibatch counts. (2)-(6) are in
        ``rollout``, (7) in ``rollout_loader``. After it, the training steps communicate as
        the strategy does, and ``Actor.push`` gathers the weights at the epoch's end.
        """
        with self.actor.gathered():
            dataset = self.rollout(items)
        return self.rollout_loader(dataset)

    def rollout(self, items: Sequence[dict]) -> RolloutDataset:
        """Sample, score and prepare this rank's shard of ``items``: collectives (1)-(6) of
        ``rollout_step``, made inside the actor's gathered weights."""
        start = time.perf_counter()
        if self._restored:
            self.actor.push(self.role)
            self._restored = False
        items, first = distributed.shard(items, *distributed.world())
        generations = self._generate(items, first)  # (1)
        generated = time.perf_counter()
        rollouts = to_rollouts(generations, self.actor.version(self.role))
        self._check_sampler_logprobs(rollouts)
        scores = self.score(items, rollouts)  # (2)
        rewards, at = distributed.gather_lists(scores.rewards)  # (3)
        rollouts = self._scored(items, rollouts, scores, rewards, at)
        trained = self._trained_rollouts(rollouts)  # (4)
        trained, mismatch = self._record_logprobs(trained)  # (5)
        metrics = rollout_metrics(rollouts, generated - start, time.perf_counter() - start)
        metrics.update(scores.metrics)
        metrics.update({f"mismatch/{k}": v for k, v in mismatch.items()})
        if self.skip_signal_free:
            metrics["trained_fraction"] = len(trained) / max(len(rollouts), 1)
        # Each rank measured its own shard; the logged figures are the whole batch's.
        metrics = combine_rank_metrics(distributed.gather_objects(metrics))  # (6)
        self._log_rollouts(metrics, items, rollouts)
        return RolloutDataset(trained)

    def _generate(self, items: Sequence[dict], first: int) -> list:
        """G completions of each item's prompt, sampled with this step's seed and mask."""
        tok = self.policy.tokenizer
        prompts = [self.prompt.render(tok, problem=item.get("problem", "")) for item in items]
        # Offset by the shard's first sample: a sample's seed is the same on any rank count.
        seed = self._rollout_seed() + first * self.group_size
        params = replace(
            self.sampling, n=self.group_size, seed=seed, banned_token_ids=self.banned_tokens()
        )
        with Progress(len(prompts) * params.n, f"{self.role} generation", "completions"):
            return self.actor.generate(prompts, role=self.role, params=params)

    def _scored(
        self,
        items: Sequence[dict],
        rollouts: list[Rollout],
        scores: Scores,
        rewards: list[float],
        at: int,
    ) -> list[Rollout]:
        """The rollouts with their answers, terms, rewards and group advantages (computed
        over every rank's ``rewards``, of which this rank's start at ``at``)."""
        advantages = loss_math.group_advantages(
            torch.tensor(rewards, dtype=torch.float32),
            self.group_size,
            scale=self.loss_settings.advantage_scale,
        )[at : at + len(rollouts)].tolist()
        weights = self.advantage_weights(items)  # one per question (group), or None
        return [
            replace(
                r,
                answer=answer,
                terms=terms,
                reward=reward,
                advantage=a if weights is None else a * weights[r.group],
            )
            for r, answer, terms, reward, a in zip(
                rollouts, scores.answers, scores.terms, scores.rewards, advantages, strict=True
            )
        ]

    def _log_rollouts(
        self, metrics: dict[str, float], items: Sequence[dict], rollouts: list[Rollout]
    ) -> None:
        """Log the step's metrics, and every ``log_rollouts_every`` steps a rollout table."""
        # Logged once, at the step the rollouts were made (not through self.log, which would
        # repeat them at every accumulation boundary of the epoch).
        logged = {f"{self.role}/{k}": float(v) for k, v in metrics.items()}
        if self.logger is not None and self.trainer.is_global_zero:
            self.logger.log_metrics(logged, step=self.global_step)
        if self.log_rollouts_every and self.trainer.current_epoch % self.log_rollouts_every == 0:
            write_rollout_table(self.logger, self.role, items, rollouts, self.global_step)

    def _trained_rollouts(self, rollouts: list[Rollout]) -> list[Rollout]:
        """All rollouts, or (``skip_signal_free``) the informative ones, as many on every rank."""
        if not self.skip_signal_free:
            return rollouts
        counts = distributed.gather_objects(sum(r.advantage != 0.0 for r in rollouts))
        # At least one, so that the epoch still runs and the guard skips a signal-free update.
        return keep_informative(rollouts, max(max(counts), 1))

    def rollout_loader(self, dataset: RolloutDataset) -> DataLoader:
        """Serve a finished rollout step in shuffled micro-batches (collective (7) of
        ``rollout_step``).

        The order is drawn here (seeded by the rollout step), so that every minibatch's
        token and sequence counts, summed over ranks, are known before its first micro-batch:
        the loss divides by them (``rzero_pl.grpo.loss.aggregate``).
        """
        generator = torch.Generator().manual_seed(self._rollout_seed())
        order = torch.randperm(len(dataset), generator=generator).tolist()
        rollouts = [dataset[i] for i in order]
        per_update = self.micro_batch_size * self.trainer.accumulate_grad_batches
        counts = minibatch_counts(rollouts, per_update)  # this rank's share of each update
        if distributed.world()[1] > 1:
            counts = sum_minibatch_counts(distributed.gather_objects(counts))
        pad = self.policy.tokenizer.pad_token_id
        return DataLoader(
            RolloutDataset(with_minibatch_counts(rollouts, per_update, counts)),
            batch_size=self.micro_batch_size,
            shuffle=False,
            collate_fn=lambda rows: collate(rows, pad),
        )

    def banned_tokens(self) -> tuple[int, ...]:
        """This rollout step's vocabulary dropout mask (the same for its sampling and its
        log-probs, on every rank); empty without ``vocab_dropout``."""
        if self.vocab_dropout is None:
            return ()
        return self.vocab_dropout.banned(self.policy.tokenizer, self._rollout_seed())

    def _rollout_seed(self) -> int:
        return derive(self.seed, self.trainer.current_epoch)

    def _check_sampler_logprobs(self, rollouts: list[Rollout]) -> None:
        """Refuse a sampler correction without the engine's log-probs (one line, the fix)."""
        if self.loss_settings.sampler_correction == "none" or not rollouts:
            return
        if any(r.sampler_logprobs is None for r in rollouts):
            raise ValueError(
                f"loss.sampler_correction {self.loss_settings.sampler_correction!r} needs the "
                "engine's log-probs: set engine.return_logprobs true (or the correction to none)"
            )

    @torch.no_grad()
    def _record_logprobs(self, rollouts: list[Rollout]) -> tuple[list[Rollout], dict[str, float]]:
        """The rollouts with the sampling policy's log-probs (when several updates follow),
        the reference's (KL) and the sampler correction's weights; and the sampler-trainer
        mismatch metrics (when the engine returned its own log-probs)."""
        several_updates = len(rollouts) * distributed.world()[1] > self.minibatch_size
        with_kl = self.loss_settings.kl_coef > 0
        with_sampler = bool(rollouts) and all(r.sampler_logprobs is not None for r in rollouts)
        if not (several_updates or with_kl or with_sampler):
            return rollouts, {}
        model = self.policy.module(self.role)
        was_training = model.training
        model.eval()  # the sampling policy's log-probs: no dropout, as the engine sampled
        try:
            trainer, ref = self._recorded(rollouts, several_updates or with_sampler, with_kl)
        finally:
            model.train(was_training)
        rollouts = [
            replace(
                r,
                old_logprobs=trainer[i] if several_updates else None,
                ref_logprobs=ref[i] if with_kl else None,
            )
            for i, r in enumerate(rollouts)
        ]
        if not with_sampler:
            return rollouts, {}
        return self._sampler_mismatch(rollouts, trainer)

    def _recorded(
        self, rollouts: list[Rollout], policy: bool, reference: bool
    ) -> tuple[list[list[float]], list[list[float]]]:
        """Each rollout's completion log-probs under the role's weights (``policy``) and
        under the reference (``reference``); an empty list for the one not asked."""
        pad = self.policy.tokenizer.pad_token_id
        trainer: list[list[float]] = []
        ref_lp: list[list[float]] = []
        for i in range(0, len(rollouts), self.micro_batch_size):
            batch = collate(rollouts[i : i + self.micro_batch_size], pad)
            batch = {k: v.to(self.device) for k, v in batch.items()}
            if policy:
                lp = self._logprobs(self.policy.module(self.role), batch)
                trainer += [
                    completion_logprobs(row, m) for row, m in zip(lp, batch["mask"], strict=True)
                ]
            if reference:
                with self.policy.reference(self.role) as ref:
                    lp = self._logprobs(ref, batch)
                ref_lp += [
                    completion_logprobs(row, m) for row, m in zip(lp, batch["mask"], strict=True)
                ]
        return trainer, ref_lp

    def _sampler_mismatch(
        self, rollouts: list[Rollout], trainer: list[list[float]]
    ) -> tuple[list[Rollout], dict[str, float]]:
        """The engine's log-probs against the trainer's: the rollouts with the correction's
        weights (when one is set), and the mismatch metrics."""
        s = self.loss_settings
        trainer_lp, mask = padded(trainer)
        sampler_lp, _ = padded([r.sampler_logprobs for r in rollouts])
        if s.sampler_correction != "none":
            weights = loss_math.sampler_weights(
                trainer_lp, sampler_lp, mask, s.sampler_correction, s.sampler_cap, s.sampler_floor
            )
            rollouts = [
                replace(r, sampler_weights=row[: len(r.completion_ids)].tolist())
                for r, row in zip(rollouts, weights, strict=True)
            ]
        metrics = loss_math.sampler_mismatch(
            trainer_lp, sampler_lp, mask, s.sampler_cap, s.sampler_floor
        )
        return rollouts, metrics

    def _logprobs(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with self.trainer.precision_plugin.forward_context():
            # use_cache=False: a training forward needs no KV cache (it would copy every
            # layer's keys and values and keep them alive with the graph).
            out = model(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                use_cache=False,
            )
        temperature = self.sampling.temperature or 1.0
        logits = mask_logits(out.logits[:, :-1].float(), self.banned_tokens())
        return loss_math.token_logprobs(logits, batch["input_ids"][:, 1:], temperature)

    # ---- the update ---------------------------------------------------------------------

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        model = self.policy.module(self.role)
        model.train()
        logprobs = self._logprobs(model, batch)
        s = self.loss_settings
        totals = {}
        if "minibatch_size" in batch:  # served by rollout_loader: divide by the minibatch's
            totals = {
                "total_tokens": batch["minibatch_tokens"][0],
                "total_sequences": batch["minibatch_size"][0],
            }
        loss, metrics = loss_math.policy_loss(
            logprobs,
            batch.get("old_logprobs", logprobs.detach()),
            batch["advantages"],
            batch["mask"],
            clip_low=s.clip_low,
            clip_high=s.clip_high,
            dual_clip=s.dual_clip,
            ref_logprobs=batch.get("ref_logprobs"),
            kl_coef=s.kl_coef,
            aggregation=s.aggregation,
            norm_length=s.norm_length or self.sampling.max_new_tokens,
            sampler_weights=batch.get("sampler_weights"),
            **totals,
        )
        logged = {f"{self.role}/{k}": float(v) for k, v in metrics.items()}
        logged[f"{self.role}/loss"] = float(metrics["pg_loss"] + s.kl_coef * metrics["kl"])
        self.log_dict(logged, on_step=True, on_epoch=False, batch_size=len(batch["advantages"]))
        if totals:
            # The micro-batches' losses already add up to the minibatch's (and, over ranks,
            # to the whole update's): undo Lightning's division by the accumulation count
            # and the ranks' gradient averaging.
            loss = loss * (self.trainer.accumulate_grad_batches * distributed.world()[1])
        return loss
