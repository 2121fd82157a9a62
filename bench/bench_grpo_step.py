"""One GRPO update, rzero-pl's SolverGRPO against TRL's GRPOTrainer, generation excluded.

Both sides start from the same weights (the cached toy base ``rzero_pl.toy.ToyModel``, or
``--model-dir``, e.g. a converted SmolLM2 folder) and update on the same minibatch: ``prompts x G`` rollouts of one prompt length (so that both layouts are
the same tensor: TRL left-pads prompts and right-pads completions, rzero-pl right-pads the
whole sequence) with completion lengths drawn in ``[min, max]``, given as ``micro``-row
micro-batches (gradients accumulate) followed by gradient clipping at norm 1 and one AdamW
step. Loss settings are the same: ratio clip [0.8, 1.3], dual clip 3 (TRL's ``delta`` two-sided
clip is the same function), no KL, token mean per micro-batch (TRL ``loss_type="bnpo"``; its
``dapo`` only changes the denominator), stored old log-probs (several updates per rollout step,
as in ``cli_configs/toy.yaml``). No gradient checkpointing on either side (TRL's default is on).

Trained weights: all of them (full fine-tuning, ``--lora-rank 0``), or a LoRA adapter
(``--lora-rank r``: alpha ``2r`` unless ``--lora-alpha``, dropout 0, ``all-linear`` targets, as
``cli_configs/octothinker.yaml`` sets them). In LoRA mode rzero-pl's ``Policy`` carries the
solver adapter and TRL gets the same ``peft.LoraConfig`` (its ``peft_config``); the adapter is
perturbed by N(0, 0.02) (a fresh one has B = 0, so A would get no gradient) and copied into
TRL's, so both sides start from the same weights.

- rzero-pl: ``SolverGRPO.training_step`` (log-probs + ``loss.policy_loss``) on ``collate``d
  rollouts, the loss divided by the accumulation steps and ``backward()`` as Lightning's
  automatic optimisation does, ``clip_grad_norm_``, ``AdamW.step``.
- TRL: ``GRPOTrainer.training_step`` (``compute_loss`` + ``accelerator.backward``) on prepared
  inputs with its ``_prepare_inputs`` (generation and scoring) patched out,
  ``accelerator.clip_grad_norm_``, the optimizer of ``create_optimizer()``.

Times alternate between the sides (median of ``--repeats``); the loss values and the updated
weights of one update are compared. Peak memory: each side alone in a fresh subprocess.

    python bench/bench_grpo_step.py [--prompts 32 --group 8 --micro 128 --repeats 5]
    python bench/bench_grpo_step.py --model-dir SMOLLM2_FOLDER --lora-rank 16 --prompts 8 \
        --group 4 --micro 16 --min-completion 16 --max-completion 48 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from typing import Any

import lightning as L
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memwatch import PeakRSS, model_source  # noqa: E402

from rzero_pl.grpo.rollout import Rollout, collate  # noqa: E402


def defaults() -> dict[str, Any]:
    return {
        "prompts": 32,
        "group": 8,
        "micro": 128,
        "prompt_len": 24,
        "min_completion": 16,
        "max_completion": 96,
        "repeats": 5,
        "lr": 1e-4,
        "seed": 0,
        "threads": 1,
        "model_dir": "",
        "lora_rank": 0,
        "lora_alpha": 0,
    }


def lora_settings(cfg: dict[str, Any]) -> Any:
    """None (full fine-tuning), or the adapter shape: alpha 2r unless given, as octothinker.yaml."""
    if not cfg["lora_rank"]:
        return None
    from rzero_pl.models.policy import LoraSettings

    alpha = cfg["lora_alpha"] or 2 * cfg["lora_rank"]
    return LoraSettings(r=cfg["lora_rank"], alpha=alpha, dropout=0.0, target_modules="all-linear")


def perturb(params: list[torch.nn.Parameter], scale: float, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in params:
            p.add_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * scale)


def make_rollouts(cfg: dict[str, Any], model: Any, tok: Any) -> list[Rollout]:
    """``prompts x G`` rollouts of random tokens; old log-probs = current ones + noise."""
    g = torch.Generator().manual_seed(cfg["seed"])
    low = max(tok.eos_token_id, tok.pad_token_id, tok.bos_token_id) + 1
    rollouts = []
    for p in range(cfg["prompts"]):
        prompt = [tok.bos_token_id] + torch.randint(
            low, len(tok), (cfg["prompt_len"] - 1,), generator=g
        ).tolist()
        for _ in range(cfg["group"]):
            n = int(
                torch.randint(cfg["min_completion"], cfg["max_completion"] + 1, (1,), generator=g)
            )
            completion = torch.randint(low, len(tok), (n - 1,), generator=g).tolist()
            rollouts.append(Rollout(prompt, completion + [tok.eos_token_id], "", p, 0))
    rewards = torch.randint(0, 2, (len(rollouts),), generator=g).float()
    from rzero_pl.grpo.loss import group_advantages

    advantages = group_advantages(rewards, cfg["group"]).tolist()
    rollouts = [replace(r, advantage=a) for r, a in zip(rollouts, advantages, strict=True)]
    with torch.no_grad():
        batch = collate(rollouts, tok.pad_token_id)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        from rzero_pl.grpo.loss import token_logprobs

        lp = token_logprobs(logits[:, :-1], batch["input_ids"][:, 1:])
        lp = lp + 0.1 * torch.randn(lp.shape, generator=g)
    return [
        replace(r, old_logprobs=row[m.bool()].tolist())
        for r, row, m in zip(rollouts, lp, batch["mask"], strict=True)
    ]


def micro_batches(rollouts: list[Rollout], micro: int, pad: int) -> list[dict[str, torch.Tensor]]:
    return [collate(rollouts[i : i + micro], pad) for i in range(0, len(rollouts), micro)]


def ours_setup(cfg: dict[str, Any]) -> dict[str, Any]:
    """A SolverGRPO on the base (full fine-tuning as toy.yaml, or LoRA) and its optimizer."""
    from rzero_pl.engines import HFEngine
    from rzero_pl.grpo.module import GRPOLoss
    from rzero_pl.grpo.solver import SolverGRPO
    from rzero_pl.models.actor import Actor
    from rzero_pl.models.policy import Policy

    lora = lora_settings(cfg)
    policy = Policy(model_source(cfg["model_dir"]), lora=lora, roles=("solver",))
    params = policy.trainable_parameters("solver")
    if lora is not None:
        perturb(params, 0.02, cfg["seed"])
    size = cfg["prompts"] * cfg["group"]
    module = SolverGRPO(
        Actor(policy, HFEngine()), group_size=cfg["group"], loss=GRPOLoss(kl_coef=0.0),
        minibatch_size=size, micro_batch_size=cfg["micro"], lr=cfg["lr"],
    )  # fmt: skip
    # Driven by hand below, as Lightning drives it: a trainer attached, never fitted, and no
    # logging (a fit's loop collects what training_step logs; none runs here).
    module.trainer = L.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False,
    )  # fmt: skip
    module.log_dict = lambda *args, **kwargs: None
    optimizer = module.configure_optimizers()["optimizer"]
    return {"module": module, "optimizer": optimizer, "tok": policy.tokenizer,
            "model": policy.module("solver"), "params": params}  # fmt: skip


def ours_backward(side: dict[str, Any], batches: list[dict[str, torch.Tensor]]) -> list[float]:
    """Accumulate one minibatch's gradients as Lightning's automatic optimisation does."""
    losses = []
    for i, batch in enumerate(batches):
        loss = side["module"].training_step(batch, i)
        (loss / len(batches)).backward()
        losses.append(float(loss.detach()))
    return losses


def ours_step(side: dict[str, Any]) -> None:
    torch.nn.utils.clip_grad_norm_(side["params"], 1.0)  # the optimizer's, as Lightning
    side["optimizer"].step()
    side["optimizer"].zero_grad(set_to_none=True)


def trl_setup(cfg: dict[str, Any], path: str, ours: dict[str, Any], outdir: str) -> dict[str, Any]:
    """A GRPOTrainer on the same weights, generation patched out, same loss settings."""
    import datasets
    from transformers import AutoModelForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    accum = cfg["prompts"] * cfg["group"] // cfg["micro"]
    args = GRPOConfig(
        output_dir=outdir, per_device_train_batch_size=cfg["micro"],
        gradient_accumulation_steps=accum, num_generations=cfg["group"],
        max_completion_length=cfg["max_completion"], temperature=1.0, loss_type="bnpo",
        epsilon=0.2, epsilon_high=0.3, delta=3.0, beta=0.0, learning_rate=cfg["lr"],
        weight_decay=0.01, max_grad_norm=1.0, use_cpu=True, report_to="none",
        lr_scheduler_type="constant", disable_tqdm=True, save_strategy="no", bf16=False,
        gradient_checkpointing=False,
    )  # fmt: skip
    lora = lora_settings(cfg)
    model = AutoModelForCausalLM.from_pretrained(path)
    data = datasets.Dataset.from_list([{"prompt": "Solve: 1+1"}] * cfg["micro"])
    trainer = GRPOTrainer(
        model=model, reward_funcs=lambda completions, **kw: [0.0] * len(completions),
        args=args, train_dataset=data, processing_class=ours["tok"],
        peft_config=None if lora is None else lora.peft_config(),
    )  # fmt: skip
    if lora is not None:
        copy_adapter(ours["model"], trainer.model)
    trainer._prepare_inputs = lambda inputs: inputs  # generation and scoring excluded
    trainer.create_optimizer()
    trainer.current_gradient_accumulation_steps = accum
    return {"trainer": trainer, "model": trainer.model, "optimizer": trainer.optimizer}


def trl_name(name: str) -> str:
    """TRL's adapter is PEFT's ``default``; ours is named after the role."""
    return name.replace(".default.", ".solver.")


def copy_adapter(ours: torch.nn.Module, theirs: torch.nn.Module) -> None:
    """Our (perturbed) solver adapter into TRL's ``default`` adapter, tensor for tensor."""
    mine = dict(ours.named_parameters())
    copied = 0
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            if p.requires_grad:
                p.copy_(mine[trl_name(name)])
                copied += 1
    if copied != sum(p.requires_grad for p in ours.parameters()):
        raise RuntimeError("the two adapters do not have the same tensors")


def trl_inputs(batch: dict[str, torch.Tensor], prompt_len: int) -> dict[str, torch.Tensor]:
    """Our collated micro-batch in TRL's layout (same tensors: prompts are one length)."""
    ids, att = batch["input_ids"], batch["attention_mask"]
    start = prompt_len - 1  # position t of the [B, L-1] tensors scores token t + 1
    return {
        "prompt_ids": ids[:, :prompt_len], "prompt_mask": att[:, :prompt_len],
        "completion_ids": ids[:, prompt_len:], "completion_mask": att[:, prompt_len:],
        "advantages": batch["advantages"],
        "old_per_token_logps": batch["old_logprobs"][:, start:],
        "num_items_in_batch": batch["mask"].sum(),
    }  # fmt: skip


def trl_backward(side: dict[str, Any], inputs: list[dict[str, torch.Tensor]]) -> list[float]:
    """``training_step`` returns the loss already divided by the accumulation steps."""
    trainer, model = side["trainer"], side["model"]
    return [float(trainer.training_step(model, x, None)) * len(inputs) for x in inputs]


def trl_step(side: dict[str, Any]) -> None:
    side["trainer"].accelerator.clip_grad_norm_(side["model"].parameters(), 1.0)
    side["optimizer"].step()
    side["optimizer"].zero_grad(set_to_none=True)


def build(cfg: dict[str, Any], sides: tuple[str, ...], outdir: str) -> dict[str, Any]:
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    ours = ours_setup(cfg)
    rollouts = make_rollouts(cfg, ours["model"], ours["tok"])
    batches = micro_batches(rollouts, cfg["micro"], ours["tok"].pad_token_id)
    built = {"cfg": cfg, "batches": batches, "tokens": int(sum(b["mask"].sum() for b in batches))}
    if "ours" in sides:
        built["ours"] = ours
    if "trl" in sides:
        path = model_source(cfg["model_dir"]).path
        built["trl"] = trl_setup(cfg, path, ours, outdir)
        built["trl_inputs"] = [trl_inputs(b, cfg["prompt_len"]) for b in batches]
    return built


def update(built: dict[str, Any], side: str, step: bool = True) -> tuple[float, list[float]]:
    """One update of ``side`` (``step=False``: gradients only); seconds and micro-batch losses."""
    start = time.perf_counter()
    if side == "ours":
        losses = ours_backward(built["ours"], built["batches"])
        if step:
            ours_step(built["ours"])
    else:
        losses = trl_backward(built["trl"], built["trl_inputs"])
        if step:
            trl_step(built["trl"])
    return time.perf_counter() - start, losses


def grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return grads


def compare(built: dict[str, Any]) -> dict[str, float]:
    """Losses and gradients of the same minibatch on both sides, from the same weights."""
    _, ours_losses = update(built, "ours", step=False)
    _, trl_losses = update(built, "trl", step=False)
    mine = grads(built["ours"]["model"])
    theirs = {trl_name(k): g for k, g in grads(built["trl"]["model"]).items()}
    if mine.keys() != theirs.keys():
        raise RuntimeError(f"different trainable parameters: {sorted(mine.keys() ^ theirs.keys())}")
    scale = max(g.abs().max().item() for g in mine.values())
    diff = max((g - theirs[k]).abs().max().item() for k, g in mine.items())
    loss_diff = max(abs(a - b) for a, b in zip(ours_losses, trl_losses, strict=True))
    return {"loss_max_abs_diff": loss_diff, "grad_max_rel_diff": diff / max(scale, 1e-30)}


def timings(cfg: dict[str, Any]) -> dict[str, Any]:
    """Both sides in one process: equality check, one warm-up, then alternating repeats."""
    with tempfile.TemporaryDirectory() as outdir:
        built = build(cfg, ("ours", "trl"), outdir)
        result = compare(built)
        update(built, "ours")  # warm-up (first optimizer step allocates Adam's state)
        update(built, "trl")
        times: dict[str, list[float]] = {"ours": [], "trl": []}
        for r in range(cfg["repeats"]):
            for side in ("ours", "trl") if r % 2 == 0 else ("trl", "ours"):
                times[side].append(update(built, side)[0])
    result.update(
        rows=len(built["batches"]) * cfg["micro"] if built["batches"] else 0,
        completion_tokens=built["tokens"],
        ours_s=statistics.median(times["ours"]),
        trl_s=statistics.median(times["trl"]),
        ours_all=times["ours"],
        trl_all=times["trl"],
    )
    result["ratio"] = result["ours_s"] / result["trl_s"]
    return result


def memory_of(cfg: dict[str, Any], side: str) -> dict[str, float]:
    """Run in this (fresh) process: peak RSS of the process, and its rise during 2 updates."""
    with tempfile.TemporaryDirectory() as outdir:
        built = build(cfg, (side,) if side == "trl" else ("ours",), outdir)
        with PeakRSS() as peak:
            update(built, side)
            update(built, side)
    return {"rise_mb": peak.rise_mb, "peak_rss_mb": peak.process_peak_mb}


def memory(cfg: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Each side alone in a fresh interpreter, so neither inherits the other's pages."""
    out = {}
    for side in ("ours", "trl"):
        cmd = [sys.executable, os.path.abspath(__file__), "--memory-side", side, "--json"]
        for key, value in cfg.items():
            cmd += [f"--{key.replace('_', '-')}", str(value)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"memory run of {side} failed:\n{done.stderr[-2000:]}")
        out[side] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def run(cfg: dict[str, Any] | None = None, with_memory: bool = True) -> dict[str, Any]:
    cfg = {**defaults(), **(cfg or {})}
    result = {"config": cfg, **timings(cfg)}
    if with_memory:
        result["memory"] = memory(cfg)
    return result


def table(result: dict[str, Any]) -> str:
    cfg = result["config"]
    lines = [
        f"GRPO update: {cfg['prompts']} prompts x G {cfg['group']} = {result['rows']} rollouts, "
        f"micro-batch {cfg['micro']}, {result['completion_tokens']} completion tokens, "
        f"median of {cfg['repeats']}, "
        + (f"LoRA r {cfg['lora_rank']}" if cfg["lora_rank"] else "full fine-tuning"),
        f"  rzero-pl {result['ours_s']:.3f} s | TRL {result['trl_s']:.3f} s | "
        f"ratio {result['ratio']:.2f}x (target <= 1.0)",
        f"  same update: largest loss difference {result['loss_max_abs_diff']:.1e}, "
        f"largest gradient difference {result['grad_max_rel_diff']:.1e} of the largest gradient",
    ]
    for side, mem in result.get("memory", {}).items():
        lines.append(
            f"  memory {side}: rise during update {mem['rise_mb']:.0f} MB, "
            f"process peak RSS {mem['peak_rss_mb']:.0f} MB"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for key, value in defaults().items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--memory-side", choices=("ours", "trl"), default=None)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = vars(parser.parse_args())
    side, as_json, no_memory = args.pop("memory_side"), args.pop("json"), args.pop("no_memory")
    result = memory_of(args, side) if side else run(args, with_memory=not no_memory)
    print(json.dumps(result) if as_json else table(result))


if __name__ == "__main__":
    main()
