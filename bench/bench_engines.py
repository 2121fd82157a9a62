"""Generation speed on the toy world: VLLMEngine vs raw ``vllm.LLM.generate`` vs HFEngine.

One solver rollout step of ``cli_configs/toy.yaml``: ``--prompts`` toy questions, ``--n``
samples each, up to ``--max-new-tokens`` tokens, temperature 1, on the cached toy base model
(``rzero_pl.toy.ToyModel``, full weights, float32). The raw vLLM call sends exactly the
requests VLLMEngine builds (token ids, per-prompt sampling parameters) to the engine's own
``vllm.LLM``, so the ratio is the engine's overhead. Tokens/s counts generated tokens (EOS
included) over wall time; each backend runs ``--repeats`` times, interleaved, best kept.

    python bench/bench_engines.py [--prompts 64] [--n 8] [--max-new-tokens 96] [--lora]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from rzero_pl.engines import HFEngine, SamplingParams
from rzero_pl.engines.vllm import VLLMEngine
from rzero_pl.engines.vllm_support import request_seeds, vllm_sampling_kwargs
from rzero_pl.models.policy import LoraSettings, Policy
from rzero_pl.toy import ToyModel
from rzero_pl.toy.arithmetic import generate_problems
from rzero_pl.toy.prompts import TOY_SOLVER


def raw_vllm(engine: VLLMEngine, prompts: list[str], params: SamplingParams) -> int:
    """The requests VLLMEngine would send, straight to ``vllm.LLM.generate``."""
    from vllm import SamplingParams as VLLMSampling

    from rzero_pl.engines.hf import encode_prompt

    tok = engine.policy.tokenizer
    seeds = request_seeds(params.seed, len(prompts), params.n)
    sampling = [VLLMSampling(**vllm_sampling_kwargs(params, s, False)) for s in seeds]
    requests = [{"prompt_token_ids": encode_prompt(tok, p)} for p in prompts]
    lora = engine._adapters.get("solver")
    outputs = engine.llm.generate(requests, sampling, lora_request=lora, use_tqdm=False)
    return sum(len(c.token_ids) for out in outputs for c in out.outputs)


def through_engine(engine, prompts: list[str], params: SamplingParams) -> int:
    gens = engine.generate(prompts, role="solver", params=params)
    return sum(len(c.token_ids) for g in gens for c in g.completions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lora", action="store_true", help="serve a rank-16 solver adapter")
    parser.add_argument("--kv-cache-mib", type=int, default=256)
    args = parser.parse_args()

    source = ToyModel(progress=False)
    lora = LoraSettings(r=16, alpha=32) if args.lora else None
    policy = Policy(source, lora=lora)
    tok = policy.tokenizer
    problems = generate_problems(args.prompts, seed=0)
    prompts = [TOY_SOLVER.render(tok, problem=p.question) for p in problems]
    params = SamplingParams(
        n=args.n, temperature=1.0, top_p=1.0, max_new_tokens=args.max_new_tokens, seed=0
    )

    start = time.perf_counter()
    vllm_engine = VLLMEngine(
        dtype="float32", kv_cache_memory_bytes=args.kv_cache_mib << 20, enforce_eager=True
    )
    vllm_engine.attach(policy)
    vllm_engine.start()
    startup = time.perf_counter() - start
    hf_engine = HFEngine()
    hf_engine.attach(policy)
    through_engine(vllm_engine, prompts[:2], params)  # first call loads the role's weights

    backends = {
        "raw vllm.LLM.generate": lambda: raw_vllm(vllm_engine, prompts, params),
        "VLLMEngine.generate": lambda: through_engine(vllm_engine, prompts, params),
        "HFEngine.generate": lambda: through_engine(hf_engine, prompts, params),
    }
    best: dict[str, tuple[float, int]] = {}
    for _ in range(args.repeats):
        for name, run in backends.items():
            t = time.perf_counter()
            tokens = run()
            seconds = time.perf_counter() - t
            if name not in best or tokens / seconds > best[name][1] / best[name][0]:
                best[name] = (seconds, tokens)
    vllm_engine.close()

    import transformers
    import vllm

    load = os.getloadavg()[0]
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {load:.1f}; python {platform.python_version()}, torch {torch.__version__}, "
        f"vllm {vllm.__version__}, transformers {transformers.__version__}"
    )
    print(
        f"workload: {args.prompts} prompts x n={args.n}, max_new_tokens={args.max_new_tokens}, "
        f"{'LoRA r=16' if args.lora else 'full weights'}, fp32; engine start-up {startup:.1f} s"
    )
    raw = best["raw vllm.LLM.generate"]
    print("| backend | generated tokens | best wall time | tokens/s | vs raw vLLM |")
    print("|---|---|---|---|---|")
    for name, (seconds, tokens) in best.items():
        ratio = (tokens / seconds) / (raw[1] / raw[0])
        print(f"| {name} | {tokens:,} | {seconds:.2f} s | {tokens / seconds:,.0f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
