"""Toy iteration speed (issue 28 item 1): the generation steps and whole runs, back to back.

``gen`` times one toy iteration's kinds of generation on the shipped toy base, one thread,
for each stage of ``rzero_pl.engines.hf_decode`` (stages alternate within each round; the
best CPU seconds of the rounds are kept) and checks that every stage returns the tokens of
``generate``:

- ``generate``: transformers' ``generate`` (``drop_finished=False``, the old engine);
- ``drop``: finished rows leave the batch;
- ``+prefill``: and the n samples of a prompt share one prefill.

(A KV cache that grows in place instead of by ``torch.cat`` was tried as a fourth stage and
was slower: votes 4.44 against 3.75 CPU seconds, load 2.5-2.8; attention on the strided views
costs more than the copies saved.)

``run`` runs ``rzero-pl fit --config cli_configs/toy.yaml --threads 1`` with
``drop_finished`` false and true in turn (``--pairs`` times), one process at a time, and
prints each phase's seconds (state.json), the process's CPU seconds and the load; the run
folders' weights and curricula must be identical.

    python bench/toy_speed.py gen [--rounds 3]
    python bench/toy_speed.py run [--pairs 1] [--root /tmp/toy_speed]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

STAGES = ("generate", "drop", "+prefill")
PHASES = ("challenger", "curriculum", "solver", "eval")


def load() -> str:
    """The 1-minute load average, as ``uptime`` prints it."""
    return f"{os.getloadavg()[0]:.2f}"


@contextmanager
def stage(name: str) -> Any:
    """The engine as it was at ``name`` (later stages' parts patched out)."""
    from rzero_pl.engines import hf_decode

    saved = hf_decode.distinct_rows
    if name == "drop":
        hf_decode.distinct_rows = lambda ids: None
    try:
        yield name != "generate"
    finally:
        hf_decode.distinct_rows = saved


def workloads(questions: list[str]) -> list[tuple[str, list[str], Any, str]]:
    """A toy iteration's generation kinds: votes, solver rollouts, candidate questions."""
    from rzero_pl.engines import SamplingParams

    solve = [f"Solve: {q}\n" for q in questions]
    return [
        ("votes 256x10", solve[:256], SamplingParams(n=10, top_k=40, max_new_tokens=96), "solver"),
        ("solver 64x8", solve[:64], SamplingParams(n=8, max_new_tokens=96), "solver"),
        (
            "questions 1000",
            ["Write a question.\n"],
            SamplingParams(n=1000, top_p=0.95, max_new_tokens=64),
            "challenger",
        ),
    ]


def toy_questions(count: int) -> list[str]:
    from rzero_pl.toy.benchmark import toy_questions as questions

    return [row["problem"] for row in questions(count)]


def time_generation(rounds: int) -> None:
    import torch

    from rzero_pl.engines import HFEngine
    from rzero_pl.models.policy import Policy
    from rzero_pl.toy import ToyModel

    torch.set_num_threads(1)
    policy = Policy(ToyModel(), lora=None)
    best: dict[tuple[str, str], float] = {}
    tokens: dict[tuple[str, str], list] = {}
    for r in range(rounds):
        for name, prompts, params, role in workloads(toy_questions(256)):
            for s in STAGES:
                with stage(s) as drop:
                    engine = HFEngine(max_batch_tokens=16384, drop_finished=drop)
                    engine.attach(policy)
                    start = time.process_time()
                    out = engine.generate(prompts, role=role, params=replace(params, seed=r))
                    seconds = time.process_time() - start
                best[name, s] = min(best.get((name, s), seconds), seconds)
                got = [c.token_ids for g in out for c in g.completions]
                if s != "generate" and got != tokens[name, "generate"]:
                    raise SystemExit(f"{name}: stage {s} changed the tokens")
                tokens[name, s] = got
        print(f"round {r + 1}/{rounds} done, load {load()}", flush=True)
    print(f"| workload | {' | '.join(STAGES)} | ratio |")
    print(f"|---|{'---|' * len(STAGES)}---|")
    for name, *_ in workloads([""] * 256):
        cells = [f"{best[name, s]:.2f}" for s in STAGES]
        ratio = best[name, STAGES[-1]] / best[name, STAGES[0]]
        print(f"| {name} | {' | '.join(cells)} | {ratio:.2f} |")


def fit(folder: str, drop: bool) -> dict[str, Any]:
    """One toy run; its phases' seconds, CPU seconds, load before and after, records."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start_load = load()
    cmd = [
        sys.executable, "-m", "rzero_pl", "fit", "--config", "cli_configs/toy.yaml",
        "--threads", "1", f"--evolution.run_dir={folder}",
        f"--actor.engine.init_args.drop_finished={str(drop).lower()}",
    ]  # fmt: skip
    start = time.perf_counter()
    with open(f"{folder}.log", "w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(os.path.join(folder, "state.json")) as f:
        phases = json.load(f)["phases"]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "load": f"{start_load}-{load()}", "phases": phases}


def records(phases: dict[str, Any]) -> dict[str, Any]:
    """What must not change: accuracies, kept counts, curriculum and weights hashes."""
    keys = ("accuracy", "kept", "sha256", "weights")
    return {p: {k: v[k] for k in keys if k in v} for p, v in phases.items()}


def time_runs(pairs: int, root: str) -> None:
    os.makedirs(root, exist_ok=True)
    results = []
    for p in range(pairs):
        for drop in (False, True):
            folder = os.path.join(root, f"pair{p}-{'drop' if drop else 'generate'}")
            subprocess.run(["rm", "-rf", folder], check=True)
            results.append((drop, fit(folder, drop)))
            print(f"pair {p} drop_finished={drop}: {results[-1][1]['wall']:.0f} s", flush=True)
    reference = records(results[0][1]["phases"])
    for _, r in results:
        if records(r["phases"]) != reference:
            raise SystemExit("a run's accuracies, curricula or weights differ")
    print("| engine | load | " + " | ".join(f"iter{i} {p}" for i in (1, 2) for p in PHASES)
          + " | iteration mean | run wall | run CPU |")  # fmt: skip
    print("|---" * (5 + 2 * len(PHASES)) + "|")
    for drop, r in results:
        ph = r["phases"]
        cells = [f"{ph[f'iter{i}/{p}']['seconds']:.1f}" for i in (1, 2) for p in PHASES]
        mean = sum(ph[f"iter{i}/{p}"]["seconds"] for i in (1, 2) for p in PHASES) / 2
        name = "drop_finished" if drop else "generate"
        print(f"| {name} | {r['load']} | {' | '.join(cells)} | {mean:.1f} | {r['wall']:.0f} | "
              f"{r['cpu']:.0f} |")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    gen = sub.add_parser("gen")
    gen.add_argument("--rounds", type=int, default=3)
    run = sub.add_parser("run")
    run.add_argument("--pairs", type=int, default=1)
    run.add_argument("--root", default="/tmp/toy_speed")
    args = parser.parse_args(argv)
    if args.mode == "gen":
        time_generation(args.rounds)
    else:
        time_runs(args.pairs, args.root)


if __name__ == "__main__":
    main()
