"""Generation speed: ``HFEngine.generate`` against a bare ``model.generate`` loop.

Workload (a solver rollout of ``cli_configs/toy.yaml``): the toy solver prompt on
``--questions`` held-out toy questions, ``n = --group`` samples each at temperature 1.0, top-p 1,
at most ``--max-new-tokens`` new tokens, on the cached toy base (``rzero_pl.toy.ToyModel``).

- engine: ``HFEngine(max_batch_tokens=...).generate(prompts, role="solver", params)``: prompt
  encoding, the n-fold expansion, length-sorted packing, seeded sampling, EOS trimming, decoding
  and ``Completion`` records.
- bare: the same prompt ids, each repeated n times, in batches of the engine's largest batch
  size, left-padded, one ``model.generate`` call each; tokens up to the first EOS counted, no
  decoding.

Throughput is generated tokens (up to and including EOS) per second; the sides alternate
(``--repeats``, median). The vLLM engine is measured in ``bench/bench_engines.py``.

    python bench/bench_generation.py [--questions 64 --group 8 --repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memwatch import model_source, process_peak_mb  # noqa: E402


def defaults() -> dict[str, Any]:
    return {
        "questions": 64,
        "group": 8,
        "max_new_tokens": 96,
        "max_batch_tokens": 65536,
        "repeats": 3,
        "seed": 0,
        "threads": 1,
        "model_dir": "",
    }


def setup(cfg: dict[str, Any]) -> dict[str, Any]:
    from rzero_pl.engines import HFEngine
    from rzero_pl.engines.base import SamplingParams
    from rzero_pl.engines.hf import encode_prompt
    from rzero_pl.models.policy import Policy
    from rzero_pl.toy import TOY_SOLVER, toy_questions

    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    policy = Policy(model_source(cfg["model_dir"]), roles=("solver",))
    engine = HFEngine(max_batch_tokens=cfg["max_batch_tokens"])
    engine.attach(policy)
    tok = policy.tokenizer
    questions = toy_questions(cfg["questions"], seed=cfg["seed"])
    prompts = [TOY_SOLVER.render(tok, problem=q["problem"]) for q in questions]
    params = SamplingParams(
        temperature=1.0, top_p=1.0, max_new_tokens=cfg["max_new_tokens"], n=cfg["group"],
        seed=cfg["seed"],
    )  # fmt: skip
    ids = [encode_prompt(tok, p) for p in prompts]
    width = max(len(i) for i in ids) + cfg["max_new_tokens"]
    rows = max(1, min(len(ids) * cfg["group"], cfg["max_batch_tokens"] // width))
    return {"engine": engine, "policy": policy, "prompts": prompts, "params": params, "ids": ids,
            "rows": rows, "model": policy.module("solver"), "tok": tok}  # fmt: skip


def run_engine(s: dict[str, Any]) -> tuple[float, int]:
    before = s["engine"].generated_tokens
    start = time.perf_counter()
    s["engine"].generate(s["prompts"], role="solver", params=s["params"])
    return time.perf_counter() - start, s["engine"].generated_tokens - before


@torch.no_grad()
def run_bare(s: dict[str, Any], cfg: dict[str, Any]) -> tuple[float, int]:
    """Seconds and generated tokens; ``s["slots"]`` gets rows x decoding steps run."""
    tok, model = s["tok"], s["model"]
    expanded = [ids for ids in s["ids"] for _ in range(cfg["group"])]
    model.eval()
    tokens = slots = 0
    start = time.perf_counter()
    for b, i in enumerate(range(0, len(expanded), s["rows"])):
        batch = expanded[i : i + s["rows"]]
        width = max(len(x) for x in batch)
        input_ids = torch.tensor([[tok.pad_token_id] * (width - len(x)) + x for x in batch])
        attention = torch.arange(width) >= width - torch.tensor([len(x) for x in batch])[:, None]
        torch.manual_seed(cfg["seed"] + b)
        out = model.generate(
            input_ids=input_ids, attention_mask=attention.long(), do_sample=True,
            temperature=1.0, top_p=None, top_k=None, max_new_tokens=cfg["max_new_tokens"],
            eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        )  # fmt: skip
        new = out[:, width:]
        is_eos = new == tok.eos_token_id
        ended = is_eos.any(1)
        first = torch.where(ended, is_eos.int().argmax(1) + 1, (new != tok.pad_token_id).sum(1))
        tokens += int(first.sum())
        slots += new.numel()  # a finished row still runs until the batch's longest is done
    s["slots"] = slots
    return time.perf_counter() - start, tokens


def run(cfg: dict[str, Any] | None = None) -> dict[str, Any]:
    cfg = {**defaults(), **(cfg or {})}
    s = setup(cfg)
    rates: dict[str, list[float]] = {"engine": [], "bare": []}
    tokens: dict[str, list[int]] = {"engine": [], "bare": []}
    run_engine(s)  # warm-up
    for r in range(cfg["repeats"]):
        for side in ("engine", "bare") if r % 2 == 0 else ("bare", "engine"):
            seconds, n = run_engine(s) if side == "engine" else run_bare(s, cfg)
            rates[side].append(n / seconds)
            tokens[side].append(n)
    engine, bare = statistics.median(rates["engine"]), statistics.median(rates["bare"])
    return {
        "config": cfg, "rows": len(s["ids"]) * cfg["group"], "batch_rows": s["rows"],
        "engine_tok_s": engine, "bare_tok_s": bare, "ratio": engine / bare,
        "engine_all": rates["engine"], "bare_all": rates["bare"], "tokens": tokens,
        "useful_fraction": tokens["bare"][-1] / max(s.get("slots", 0), 1),
        "peak_rss_mb": process_peak_mb(),
    }  # fmt: skip


def sweep(cfg: dict[str, Any], budgets: list[int]) -> dict[int, float]:
    """HFEngine tokens/s at each ``max_batch_tokens`` in ``budgets``, interleaved, median."""
    s = setup(cfg)
    rates: dict[int, list[float]] = {b: [] for b in budgets}
    for r in range(cfg["repeats"]):
        for budget in budgets if r % 2 == 0 else budgets[::-1]:
            s["engine"].max_batch_tokens = budget
            seconds, n = run_engine(s)
            rates[budget].append(n / seconds)
    return {b: statistics.median(v) for b, v in rates.items()}


def table(result: dict[str, Any]) -> str:
    cfg = result["config"]
    return "\n".join(
        [
            f"Generation: {cfg['questions']} toy questions x n {cfg['group']} = {result['rows']} "
            f"rows, <= {cfg['max_new_tokens']} new tokens, batches of <= {result['batch_rows']} "
            f"rows, median of {cfg['repeats']}",
            f"  HFEngine {result['engine_tok_s']:,.0f} tok/s | bare generate "
            f"{result['bare_tok_s']:,.0f} tok/s | ratio {result['ratio']:.2f} (target >= 0.95)",
            f"  tokens per run: engine {result['tokens']['engine']}, bare "
            f"{result['tokens']['bare']}; process peak RSS {result['peak_rss_mb']:.0f} MB",
            f"  decoding slots (rows x steps) that produced a token, bare: "
            f"{result['useful_fraction']:.0%}",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for key, value in defaults().items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sweep", type=int, nargs="+", help="only: engine at these budgets")
    args = vars(parser.parse_args())
    as_json, budgets = args.pop("json"), args.pop("sweep")
    if budgets:
        rates = sweep(args, budgets)
        print(json.dumps(rates) if as_json else "\n".join(
            f"max_batch_tokens {b}: {r:,.0f} tok/s" for b, r in rates.items()))  # fmt: skip
        return
    result = run(args)
    print(json.dumps(result) if as_json else table(result))


if __name__ == "__main__":
    main()
