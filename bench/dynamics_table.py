"""The toy dynamics table: iterations × (trained challenger, Base Challenger), mean ± spread.

Reads run folders made by ``rzero-pl fit --config cli_configs/toy.yaml
--evolution.iterations=4`` with seeds 0, 1, 2 (and ``--evolution.train_challenger=false``
for the ablation) and analysed by ``rzero-pl analyze RUN_DIR``; prints one markdown table.

    python bench/dynamics_table.py --arm loop=/work/runs_dyn/loop_s0,/work/runs_dyn/loop_s1 \\
        --arm base=/work/runs_dyn/base_s0,/work/runs_dyn/base_s1
"""

from __future__ import annotations

import argparse
import json
import math
import os

COLUMNS = (  # (header, file, key, percent)
    ("solver accuracy", "eval", "accuracy", True),
    ("kept", "curriculum", "kept", False),
    ("kept-label accuracy", "curriculum", "kept_label_accuracy", True),
    ("fixed-solver vote accuracy", "analysis", "fixed_vote_accuracy", True),
    ("fixed p̂", "analysis", "fixed_share_mean", False),
    ("labelling p̂", "analysis", "label_share_mean", False),
    ("label accuracy (sample)", "analysis", "label_accuracy", True),
    ("near-duplicates", "analysis", "near_duplicates", True),
)


def value(run: str, it: int, source: str, key: str) -> float | None:
    """One number of iteration ``it`` of ``run`` (iteration 0: the base's evaluation)."""
    if source == "eval":
        folder = (
            os.path.join(run, "eval", "baseline")
            if it == 0
            else os.path.join(run, f"iter{it}", "eval")
        )
        path = os.path.join(folder, "eval.json")
        return (
            json.load(open(path))["benchmarks"]["toy"]["accuracy"] if os.path.exists(path) else None
        )
    if it == 0:
        return None
    name = "curriculum/curriculum.json" if source == "curriculum" else f"../analysis/iter{it}.json"
    path = os.path.normpath(os.path.join(run, f"iter{it}", name))
    return json.load(open(path)).get(key) if os.path.exists(path) else None


def mean_spread(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def cell(values: list[float | None], percent: bool) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "–"
    mean, sd = mean_spread(known)
    scale, unit = (100, " %") if percent else (1, "")
    digits = 1 if percent else (0 if mean > 10 else 2)
    text = f"{scale * mean:.{digits}f} ± {scale * sd:.{digits}f}{unit}"
    return text + (f" (n={len(known)})" if len(known) < len(values) else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", action="append", required=True, help="name=run,run,...")
    parser.add_argument("--iterations", type=int, default=4)
    args = parser.parse_args()
    print("| arm | iteration | " + " | ".join(c[0] for c in COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for arm in args.arm:
        name, _, runs = arm.partition("=")
        runs = runs.split(",")
        for it in range(args.iterations + 1):
            cells = [
                cell([value(r, it, source, key) for r in runs], percent)
                for _, source, key, percent in COLUMNS
            ]
            print(f"| {name} | {it if it else 'base'} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
