"""Run the benchmark suite, one fresh subprocess per benchmark, and print one table.

Each benchmark's peak RSS is its own process tree's (``os.wait4``). ``--quick`` shrinks the
workloads so that the whole suite takes well under 15 minutes on 2 busy cores; without it each
benchmark runs at its documented size (the end-to-end run then takes toy.yaml's full steps).

    python bench/run_all.py --quick [--only grpo_step generation]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version

HERE = os.path.dirname(os.path.abspath(__file__))

QUICK = {
    "grpo_step": ["--repeats", "3"],
    "generation": ["--repeats", "3"],
    "e2e": [
        "--challenger-steps",
        "1",
        "--solver-steps",
        "1",
        "--candidates",
        "64",
        "--eval-samples",
        "50",
    ],  # fmt: skip
    "repetition": ["--sample-pairs", "5000", "--repeats", "1"],
    "majority_vote": ["--questions", "1000", "--naive", "100"],
}
FULL = {"e2e": ["--full"], "repetition": ["--full-max", "1024"], "majority_vote": []}
if all(importlib.util.find_spec(m) for m in ("mathruler", "pylatexenc")):  # the released labeller
    QUICK["majority_vote"] += ["--mathruler", "1000"]
    FULL["majority_vote"] += ["--mathruler", "8000"]
JSON = {"grpo_step", "generation", "e2e"}  # the others print their own markdown tables


def run_one(name: str, extra: list[str]) -> dict:
    """Run ``bench_<name>.py``; its output, wall time and peak RSS."""
    cmd = [sys.executable, os.path.join(HERE, f"bench_{name}.py"), *extra]
    if name in JSON:
        cmd.append("--json")
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out_file, tempfile.TemporaryFile("w+") as err_file:
        proc = subprocess.Popen(cmd, stdout=out_file, stderr=err_file, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # reaped here: rusage of this child alone
        proc.returncode = os.waitstatus_to_exitcode(status)
        out_file.seek(0)
        err_file.seek(0)
        out, err = out_file.read(), err_file.read()
    wall = time.perf_counter() - start
    row = {"name": name, "command": " ".join(cmd[1:]), "wall_s": wall, "rc": proc.returncode}
    row["peak_rss_mb"] = usage.ru_maxrss / 1024
    if proc.returncode:
        row["error"] = err.strip().splitlines()[-1] if err.strip() else "failed"
    elif name in JSON:
        row["result"] = json.loads(out.strip().splitlines()[-1])
    else:
        row["text"] = out.strip()
    return row


def summary(row: dict) -> str:
    """One line: the benchmark's headline ratio against its target."""
    if row.get("error"):
        return f"FAILED: {row['error']}"
    r = row.get("result", {})
    if row["name"] == "grpo_step":
        mem = r.get("memory", {})
        rise = {k: f"{v['rise_mb']:.0f}" for k, v in mem.items()}
        return (f"rzero-pl/TRL time {r['ratio']:.2f}x (target <= 1.0); update memory MB "
                f"{rise.get('ours')} vs {rise.get('trl')}; grad diff {r['grad_max_rel_diff']:.0e}")  # fmt: skip
    if row["name"] == "generation":
        return (f"HFEngine/bare generate {r['ratio']:.2f}x (target >= 0.95); "
                f"{r['engine_tok_s']:.0f} vs {r['bare_tok_s']:.0f} tok/s")  # fmt: skip
    if row["name"] == "e2e":
        slowest = max(r["phases"], key=r["phases"].get)
        return f"slowest phase: {slowest} {r['phases'][slowest]:.0f} s of {r['wall_s']:.0f} s"
    lines = [x for x in row.get("text", "").splitlines() if x.startswith("| ") and "---" not in x]
    return f"{len(lines) - 1} table rows (below)" if lines else "see output"


def versions() -> str:
    names = ("torch", "transformers", "lightning", "trl", "math-verify", "nltk", "scikit-learn")
    found = []
    for n in names:
        try:
            found.append(f"{n} {version(n)}")
        except PackageNotFoundError:
            found.append(f"{n} (not installed)")
    return f"python {platform.python_version()}, " + ", ".join(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="+", choices=list(QUICK), default=list(QUICK))
    parser.add_argument("--json", default="", help="also write all results to this file")
    args = parser.parse_args()
    print(f"{versions()}; {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.1f} at start")
    rows = []
    for name in args.only:
        extra = QUICK[name] if args.quick else FULL.get(name, [])
        rows.append(run_one(name, extra))
        row = rows[-1]
        rss = f"{row['peak_rss_mb']:.0f} MB" if row["peak_rss_mb"] else "?"
        print(f"  done {name}: {row['wall_s']:.0f} s, load {os.getloadavg()[0]:.1f}", flush=True)
        row["load_after"] = os.getloadavg()[0]
        row["rss"] = rss
    print("\n| benchmark | wall | peak RSS | result |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['name']} | {row['wall_s']:.0f} s | {row['rss']} | {summary(row)} |")
    for row in rows:
        if row.get("text"):
            print(f"\n{row['name']}:\n{row['text']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
