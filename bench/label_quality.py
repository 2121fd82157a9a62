"""Label quality on the toy world: kept count against kept-label accuracy, per label filter.

Reads finished runs' curricula (``iterK/curriculum/questions.jsonl``: every candidate's m
votes, its label and whether the label is true) and re-applies the band with and without the
``MarginRule`` at several margins, so the frontier costs no generation. The options that need
new generations (``GreedyAgreement``) and the solver's accuracy after training on each
filtered curriculum come from the runs made with the option set (``--trained``).

    python bench/label_quality.py /work/runs_dyn/loop_s0 /work/runs_dyn/loop_s1 ...
    python bench/label_quality.py --trained /work/runs_dyn/lq_margin /work/runs_dyn/lq_greedy
"""

from __future__ import annotations

import argparse
import json
import os

from rzero_pl.curriculum import drop_reason
from rzero_pl.grading.votes import majority_votes
from rzero_pl.ground.io import read_jsonl
from rzero_pl.label_filters import MarginRule

MARGINS = (0.0, 0.1, 0.2, 0.3, 0.4)
BAND = (0.3, 0.7)


def frontier(path: str) -> list[dict]:
    """For each margin: candidates kept and their labels' accuracy (truth recorded)."""
    rows = [r for r in read_jsonl(path) if r.get("question") is not None and r.get("votes")]
    votes = majority_votes([r["votes"] for r in rows])
    out = []
    for margin in MARGINS:
        rule = MarginRule(margin)
        kept = [
            r
            for r, v in zip(rows, votes, strict=True)
            if drop_reason(r["question"], v.label, v.share, BAND, True) == "kept"
            and rule.keeps(v, None)
        ]
        right = [bool(r.get("label_correct")) for r in kept]
        out.append(
            {
                "margin": margin,
                "kept": len(kept),
                "kept_label_accuracy": sum(right) / len(right) if right else None,
            }
        )
    return out


def trained(run_dir: str) -> dict:
    """What a one-iteration run with a label filter kept, and what its solver scored."""
    state = json.load(open(os.path.join(run_dir, "state.json")))
    report = json.load(open(os.path.join(run_dir, "iter1", "curriculum", "curriculum.json")))
    return {
        "run": os.path.basename(run_dir),
        "kept": report["kept"],
        "kept_label_accuracy": report["kept_label_accuracy"],
        "accuracy_after": state["phases"]["iter1/eval"]["accuracy"]["toy"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--trained", action="store_true")
    args = parser.parse_args()
    if args.trained:
        print("| run | kept | kept-label accuracy | toy accuracy after iteration 1 |")
        print("|---|---|---|---|")
        for run in args.runs:
            t = trained(run)
            print(
                f"| {t['run']} | {t['kept']} | {100 * t['kept_label_accuracy']:.1f} % | "
                f"{100 * t['accuracy_after']:.1f} % |"
            )
        return
    print("| run | iteration | " + " | ".join(f"margin {m}" for m in MARGINS) + " |")
    print("|---|---|" + "---|" * len(MARGINS))
    for run in args.runs:
        k = 1
        while os.path.exists(
            path := os.path.join(run, f"iter{k}", "curriculum", "questions.jsonl")
        ):
            cells = [
                f"{f['kept']} / {100 * f['kept_label_accuracy']:.1f} %"
                if f["kept_label_accuracy"] is not None
                else f"{f['kept']} / –"
                for f in frontier(path)
            ]
            print(f"| {os.path.basename(run)} | {k} | " + " | ".join(cells) + " |")
            k += 1


if __name__ == "__main__":
    main()
