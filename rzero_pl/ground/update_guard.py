"""UpdateGuard: an optimizer update with a NaN/inf loss or gradient, or with nothing to learn,
is skipped instead of applied.

Lightning calls the guard at three points of every update: when a micro-batch starts (it
keeps the batch), before each backward (it checks the loss) and before the optimizer step
(it checks the accumulated gradients). A skipped update drops the gradients (``grad = None``),
so AdamW leaves those parameters, its moments and its step count as they were: the update
did not happen. Two kinds are skipped:

- non-finite: the loss or a gradient is NaN or inf. The update is logged to
  ``bad_updates.jsonl`` in the trainer's folder with the batch's rollouts (decoded) and
  counted; ``max_bad_updates`` of them in a row stop the run with ``NonFiniteUpdates``.
- no signal: every rollout of the update has advantage 0 (e.g. a challenger step in which no
  question was valid, so every reward is 0) and the loss has no KL term. The loss is then
  zero; applying the update would only move the weights by momentum and weight decay. It is
  logged, not counted. (With a KL term the update still pulls toward the reference: applied.)

With a fp16 ``GradScaler`` the scaler already skips inf gradients (and lowers its scale), so
only the loss is checked there.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn

from rzero_pl.ground.io import read_jsonl, write_jsonl_atomic

ROWS_LOGGED = 8  # rollouts of a bad update written to bad_updates.jsonl
TEXT_CHARS = 400


class NonFiniteUpdates(RuntimeError):
    """Too many optimizer updates in a row had a NaN or inf loss or gradient."""


def finite_gradients(optimizer: torch.optim.Optimizer) -> bool:
    """Whether every gradient held by ``optimizer``'s parameters is finite (one sync)."""
    grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    if not grads:
        return True
    norms = torch._foreach_norm(grads)  # inf or nan norm iff a non-finite entry
    return bool(torch.isfinite(torch.stack([n.float().cpu() for n in norms])).all())


def batch_rollouts(batch: dict, tokenizer: Any, limit: int = ROWS_LOGGED) -> list[dict]:
    """A few rollouts of a micro-batch, decoded: the evidence kept with a bad update."""
    rows = []
    for ids, advantage in list(zip(batch["input_ids"], batch["advantages"], strict=False))[:limit]:
        text = tokenizer.decode(ids.tolist(), skip_special_tokens=True) if tokenizer else None
        rows.append({"text": (text or "")[:TEXT_CHARS], "advantage": float(advantage)})
    return rows


class UpdateGuard(Callback):
    """Skip non-finite and signal-free optimizer updates; stop after too many bad ones.

    Args:
        max_bad_updates: Non-finite updates in a row that stop the run (0: never stop).
    """

    def __init__(self, max_bad_updates: int = 3) -> None:
        if max_bad_updates < 0:
            raise ValueError(f"max_bad_updates must be >= 0, got {max_bad_updates}")
        self.max_bad_updates = max_bad_updates
        self.in_a_row = 0
        self.skipped = {"non_finite": 0, "no_signal": 0}
        self._batches: list[dict] = []
        self._bad_loss: float | None = None

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, idx: int) -> None:
        self._batches.append(batch)

    def on_before_backward(self, trainer: Any, pl_module: Any, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss.detach()).all():
            self._bad_loss = float(loss.detach().float().mean())

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        batches, bad_loss = self._batches, self._bad_loss
        self._batches, self._bad_loss = [], None
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        bad = bad_loss is not None or (scaler is None and not finite_gradients(optimizer))
        bad = trainer.strategy.reduce_boolean_decision(bad, all=False)  # any rank: all skip
        no_signal = self._no_signal(pl_module, batches)
        no_signal = trainer.strategy.reduce_boolean_decision(no_signal, all=True)  # all ranks
        if not bad:
            self.in_a_row = 0  # a finite update ends a run of bad ones
            if not (batches and no_signal):
                return
        optimizer.zero_grad(set_to_none=True)  # AdamW skips parameters without a gradient
        role = getattr(pl_module, "role", "train")
        kind = "non_finite" if bad else "no_signal"
        self.skipped[kind] += 1
        if trainer.logger is not None and trainer.is_global_zero:
            metrics = {f"{role}/skipped_updates/{k}": float(v) for k, v in self.skipped.items()}
            trainer.logger.log_metrics(metrics, step=trainer.global_step)
        if not bad:
            rank_zero_warn(
                f"{role}: update at step {trainer.global_step} skipped: every advantage is 0 "
                "(all rewards of each group equal, e.g. no valid question)"
            )
            return
        self.in_a_row += 1
        where = self._record(trainer, pl_module, batches, bad_loss)
        message = (
            f"{role}: non-finite loss or gradient at step {trainer.global_step} "
            f"({self.in_a_row} in a row; loss {bad_loss}); update skipped, rollouts in {where}"
        )
        if self.max_bad_updates and self.in_a_row >= self.max_bad_updates:
            raise NonFiniteUpdates(
                f"{message}. Stopping after {self.in_a_row} bad updates in a row "
                f"(max_bad_updates={self.max_bad_updates}): lower lr, check precision, or raise "
                "max_bad_updates; re-running resumes from the last good checkpoint"
            )
        rank_zero_warn(message)

    @staticmethod
    def _no_signal(pl_module: Any, batches: list) -> bool:
        """Every advantage 0 and no KL term: the loss, hence the gradient, is exactly zero.

        With a KL term the update still pulls the policy back toward the reference, which is
        part of the objective, so it is applied.
        """
        settings = getattr(pl_module, "loss_settings", None)
        if getattr(settings, "kl_coef", 0.0) > 0:
            return False
        return all(not torch.any(b["advantages"] != 0) for b in batches if "advantages" in b)

    def _record(self, trainer: Any, pl_module: Any, batches: list, loss: float | None) -> str:
        path = os.path.join(trainer.default_root_dir, "bad_updates.jsonl")
        if not trainer.is_global_zero:
            return path
        policy = getattr(pl_module, "policy", None)
        tokenizer = getattr(policy, "tokenizer", None)
        rows = read_jsonl(path) if os.path.exists(path) else []
        rows.append(
            {
                "step": trainer.global_step,
                "epoch": trainer.current_epoch,
                "loss": None if loss is None else str(loss),
                "rollouts": [r for b in batches for r in batch_rollouts(b, tokenizer)],
            }
        )
        write_jsonl_atomic(path, rows)
        return path

    def state_dict(self) -> dict[str, Any]:
        return {"in_a_row": self.in_a_row, "skipped": dict(self.skipped)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.in_a_row = state.get("in_a_row", 0)
        self.skipped.update(state.get("skipped", {}))
