"""A projection, not a measurement: generated tokens per iteration of each shipped GPU config.

From each config's own settings (N, m, G, slots and questions per step, steps, benchmarks):

- challenger phase: steps x slots x G questions, each voted on m times by the solver;
- curriculum: N questions, each voted on m times;
- solver phase: steps x questions_per_step x G answers;
- evaluation: one greedy answer per benchmark row (the local benchmark files' row counts).

Two lengths per completion: the budget (every completion runs to ``max_new_tokens``, an upper
bound) and an assumed mean (``--question-tokens``, ``--answer-tokens``; assumptions, not
measured). Hours = tokens / (GPUs x ``--tokens-per-gpu-s``), generation only (training and
grading excluded), with the stated GPU rate an assumption too.

    python bench/projection.py [--tokens-per-gpu-s 2500 --question-tokens 300 --answer-tokens 1000]
"""

from __future__ import annotations

import argparse
import glob
import os

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS = {  # rows of /work/shared/benchmarks/<name>/test.jsonl
    "aime2024": 30,
    "aime2025": 30,
    "amc23": 40,
    "bbeh": 4520,
    "gsm8k": 1319,
    "math500": 500,
    "minerva_math": 272,
    "mmlu_pro": 12032,
    "olympiadbench": 675,
    "supergpqa": 300,
}


def completions(config: dict) -> dict[str, tuple[int, int, int, int]]:
    """Per phase: (questions written, answers written, question budget, answer budget)."""
    data = config["data"]["init_args"]
    evo = config["evolution"]
    solver = config["model"]["init_args"]
    challenger = evo["challenger"]["init_args"]
    vote = evo["vote"]
    # A budget left out is the role's own (rzero_pl.rewards.RoleSampling, Evaluation.bound_to).
    solver_budget = solver["sampling"]["max_new_tokens"]
    challenger_budget = challenger["sampling"]["max_new_tokens"]
    votes = vote["samples"]
    vote_budget = vote["sampling"].get("max_new_tokens") or solver_budget
    curriculum = evo["curriculum"]
    slots = evo["challenger_data"]["init_args"]["slots_per_step"]
    written = evo["challenger_steps"] * slots * challenger["group_size"]
    bench = evo["evaluation"]["init_args"]
    rows = sum(ROWS[b] for b in bench["benchmarks"])
    return {
        "challenger": (
            written,
            written * votes,
            challenger_budget,
            vote_budget,
        ),
        "curriculum": (
            curriculum["candidates"],
            curriculum["candidates"] * votes,
            curriculum["challenger_sampling"].get("max_new_tokens") or challenger_budget,
            vote_budget,
        ),
        "solver": (
            0,
            evo["solver_steps"] * data["questions_per_step"] * solver["group_size"],
            0,
            solver_budget,
        ),
        "evaluation": (0, rows, 0, bench.get("max_new_tokens") or solver_budget),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens-per-gpu-s", type=float, default=2500.0)
    parser.add_argument("--question-tokens", type=int, default=300)
    parser.add_argument("--answer-tokens", type=int, default=1000)
    args = parser.parse_args()
    print(
        f"PROJECTION (assumed: {args.tokens_per_gpu_s:,.0f} generated tokens/s per GPU; mean "
        f"question {args.question_tokens} tokens, mean answer {args.answer_tokens} tokens)"
    )
    print(
        "| config | GPUs | phase | completions | tokens (mean) | tokens (budget) | hours (mean) |"
    )
    print("|---|---|---|---|---|---|---|")
    for path in sorted(glob.glob(os.path.join(ROOT, "cli_configs", "*.yaml"))):
        config = yaml.safe_load(open(path))
        trainer = config.get("trainer", {})
        if trainer.get("accelerator") != "gpu" or "evolution" not in config:
            continue
        gpus = int(trainer.get("devices", 1)) * int(trainer.get("num_nodes", 1))
        rate = gpus * args.tokens_per_gpu_s
        total_mean = total_budget = 0
        name = os.path.basename(path)
        for phase, (q, a, qb, ab) in completions(config).items():
            mean = q * args.question_tokens + a * args.answer_tokens
            budget = q * qb + a * ab
            total_mean, total_budget = total_mean + mean, total_budget + budget
            print(
                f"| {name} | {gpus} | {phase} | {q + a:,} | {mean / 1e6:.1f} M | "
                f"{budget / 1e6:.1f} M | {mean / rate / 3600:.1f} |"
            )
        print(
            f"| {name} | {gpus} | **one iteration** | | {total_mean / 1e6:.1f} M | "
            f"{total_budget / 1e6:.1f} M | **{total_mean / rate / 3600:.1f}** "
            f"(budget: {total_budget / rate / 3600:.1f}) |"
        )


if __name__ == "__main__":
    main()
