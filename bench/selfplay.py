"""Self-play experiments on the toy world: arms × seeds × iterations, one command, resumable.

    python bench/selfplay.py run --root runs/screen --arms rzero,base_challenger,adpo \\
        --seeds 0,1 --iterations 3 --parallel 2
    python bench/selfplay.py table --root runs/screen --arms rzero,base_challenger,adpo \\
        --seeds 0,1 --iterations 3

``run`` starts one ``rzero-pl fit --config cli_configs/toy.yaml`` per (arm, seed) in
``ROOT/ARM_sSEED`` with one thread each, at most ``--parallel`` at a time; a finished run is
skipped and an interrupted one resumes (the run folder resumes itself), then
``rzero-pl analyze`` adds the analysis columns. ``table`` prints, per arm and iteration, the
mean and 95 % t-interval over seeds of every column of bench/dynamics_table.py, the paired
difference against the ``rzero`` arm (same seed) with its interval, and a per-problem sign test
of the solver's evaluation against ``rzero``'s, pooled over seeds, and Spearman's rho of each
label-free signal with the solver's accuracy over every (run, iteration).

    python bench/selfplay.py probe --root runs/screen --arms … --seeds …    # probe columns
    python bench/selfplay.py ceiling --root runs/confirm --seeds 0,1,2,3,4 --iterations 5
    python bench/selfplay.py ceiling-table --root runs/confirm --arms … --seeds … --iterations 5

``probe`` adds the label-free probe columns to analysed runs (``analyze --probe-only``);
``ceiling`` runs the solver on true labels (cli_configs/toy_solver.yaml) for as many rollout
steps as ``--iterations`` self-play iterations give it, and ``ceiling-table`` compares each
arm's last iteration with it.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shlex
import subprocess
import sys
import time

import yaml
from dynamics_table import COLUMNS, value
from selfplay_stats import (
    format_interval,
    mean_rank_correlation,
    paired_differences,
    rank_correlation,
    sign_test,
    sign_test_p,
    t_interval,
)

from rzero_pl.run.selection import BestIteration

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = "rzero"
# Each arm: the overrides of cli_configs/toy.yaml that define it (issue 28's options).
ARMS: dict[str, list[str]] = {
    "rzero": [],
    "base_challenger": ["--evolution.train_challenger=false"],
    "adpo": ["--model.init_args.label_confidence=1.0"],
    "replay": ["--data.init_args.replay=0.3"],
    # R-Diverse's replay relabelled by the current solver: 300 earlier kept questions voted again
    "replay_vote": ["--evolution.curriculum.revote=0.3"],
    "memory": [
        "--evolution.challenger.init_args.repetition.init_args.memory_max=0.3",
        "--evolution.challenger.init_args.repetition.init_args.memory_mean=0.1",
    ],
    "from_base": ["--evolution.solver_from_base=true", "--data.init_args.union=true"],
    "kl_lowlr": ["--model.init_args.loss.kl_coef=0.01", "--model.init_args.lr=3.0e-5"],
    # The toy question format and its words stay (without its space the toy model writes no
    # valid question); each mask drops ~1 in 10 of the rest: digits, operators, unused signs.
    "vocab_dropout": [
        "--evolution.challenger.init_args.vocab_dropout="
        '{rate: 0.1, keep: ["<question>", "</question>", " \\\\boxed{}", "What is?"]}'
    ],
    "kl_lowlr_from_base": [
        "--model.init_args.loss.kl_coef=0.01",
        "--model.init_args.lr=3.0e-5",
        "--evolution.solver_from_base=true",
        "--data.init_args.union=true",
    ],
    "margin": [
        "--evolution.curriculum.label_filters=[{class_path: rzero_pl.label_filters.MarginRule, "
        "init_args: {min_margin: 0.2}}]"
    ],
}
# Combinations (session 11): the gentle solver restarted from the base, with the question bank's
# memory in the repetition penalty, and with vocabulary dropout on top.
ARMS["kl_base_memory"] = ARMS["kl_lowlr_from_base"] + ARMS["memory"]
ARMS["kl_base_memory_vd"] = ARMS["kl_base_memory"] + ARMS["vocab_dropout"]
# ... with the bank's penalty doubled (near-duplicates were 25.6 % at iteration 2 with 0.3/0.1)
ARMS["kl_base_memory_strong"] = ARMS["kl_lowlr_from_base"] + [
    "--evolution.challenger.init_args.repetition.init_args.memory_max=0.6",
    "--evolution.challenger.init_args.repetition.init_args.memory_mean=0.2",
]
# ... and restarted with as many steps as a solver that never restarted (k x 20 at iteration k)
ARMS["kl_base_memory_cum"] = ARMS["kl_base_memory"] + ["--evolution.cumulative_steps=true"]


def seed_args(seed: int) -> list[str]:
    """Every seed of a toy run (the solver's and challenger's sampling, the curriculum, the
    question order, Lightning's), as bench/RESULTS.md's dynamics runs set them."""
    return [
        f"--model.init_args.seed={seed}",
        f"--evolution.challenger.init_args.seed={seed}",
        f"--evolution.curriculum.seed={seed}",
        f"--data.init_args.seed={seed}",
        f"--seed_everything={seed}",
    ]


def run_dir(root: str, arm: str, seed: int) -> str:
    return os.path.join(root, f"{arm}_s{seed}")


def finished(folder: str, iterations: int) -> bool:
    """Whether the run folder recorded its last evaluation."""
    path = os.path.join(folder, "state.json")
    if not os.path.exists(path):
        return False
    with open(path) as f:
        return f"iter{iterations}/eval" in json.load(f)["phases"]


def command(arm: str, seed: int, iterations: int, folder: str) -> list[str]:
    return [
        sys.executable, "-m", "rzero_pl", "fit",
        "--config", os.path.join(ROOT, "cli_configs", "toy.yaml"),
        f"--evolution.iterations={iterations}",
        f"--evolution.run_dir={folder}",
        "--threads=1",
        "--trainer.enable_progress_bar=false",
        *seed_args(seed),
        *ARMS[arm],
    ]  # fmt: skip


def run_grid(root: str, arms: list[str], seeds: list[int], iterations: int, parallel: int,
             sample: int) -> None:  # fmt: skip
    """Start every unfinished (arm, seed) run, ``parallel`` at a time, then analyse it."""
    jobs = []
    for seed in seeds:
        for arm in arms:
            folder = run_dir(root, arm, seed)
            if finished(folder, iterations):
                continue
            fit = " ".join(shlex.quote(a) for a in command(arm, seed, iterations, folder))
            analyze = (
                f"{sys.executable} -m rzero_pl analyze {shlex.quote(folder)} --sample {sample}"
            )
            jobs.append((folder, f"{fit} && {analyze}"))
    run_jobs(root, jobs, parallel)


def run_probe(root: str, arms: list[str], seeds: list[int], parallel: int, sample: int) -> None:
    """Add the label-free probe columns to every analysed run (``analyze --probe-only``)."""
    jobs = []
    for seed in seeds:
        for arm in arms:
            folder = run_dir(root, arm, seed)
            if os.path.isdir(os.path.join(folder, "analysis")):
                quoted = shlex.quote(folder)
                jobs.append(
                    (
                        folder + "_probe",
                        f"{sys.executable} -m rzero_pl analyze {quoted} --sample {sample} "
                        "--probe-only --threads 1",
                    )
                )
    run_jobs(root, jobs, parallel)


def run_jobs(root: str, jobs: list[tuple[str, str]], parallel: int) -> None:
    """Run each ``(folder, shell command)``, ``parallel`` at a time, one thread each; each
    logs to ``folder.log``."""
    todo = list(jobs)
    running: list[tuple[subprocess.Popen, str, float]] = []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    os.makedirs(root, exist_ok=True)
    while todo or running:
        while todo and len(running) < parallel:
            folder, shell = todo.pop(0)
            log = open(f"{folder}.log", "a")  # noqa: SIM115 - closed with the process
            process = subprocess.Popen(shell, shell=True, env=env, cwd=ROOT, stdout=log, stderr=log)
            running.append((process, folder, time.time()))
            print(f"started {folder}", flush=True)
        time.sleep(5)
        for item in list(running):
            process, folder, start = item
            if process.poll() is not None:
                running.remove(item)
                status = "done" if process.returncode == 0 else f"FAILED ({process.returncode})"
                print(f"{status} {folder} in {time.time() - start:.0f} s", flush=True)


def problem_verdicts(folder: str, it: int) -> dict[str, bool]:
    """``{problem id: correct}`` of the solver's evaluation after iteration ``it``."""
    sub = os.path.join("eval", "baseline") if it == 0 else os.path.join(f"iter{it}", "eval")
    return verdicts_in(os.path.join(folder, sub))


def verdicts_in(eval_folder: str) -> dict[str, bool]:
    """``{problem id: correct}`` of the toy samples an evaluation wrote into ``eval_folder``."""
    path = os.path.join(eval_folder, "samples", "toy.jsonl")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return {row["id"]: bool(row["correct"]) for row in map(json.loads, f)}


# ---- the like-for-like ceiling: the solver on true labels, as many rollout steps -----------

CEILING = "true_labels"


def ceiling_steps(iterations: int) -> int:
    """Solver rollout steps of ``iterations`` self-play iterations (toy.yaml's solver_steps)."""
    with open(os.path.join(ROOT, "cli_configs", "toy.yaml")) as f:
        return yaml.safe_load(f)["evolution"]["solver_steps"] * iterations


def ceiling_command(seed: int, steps: int, folder: str) -> list[str]:
    """cli_configs/toy_solver.yaml (true labels, its own tuned settings) for ``steps`` steps."""
    return [
        sys.executable, "-m", "rzero_pl", "fit",
        "--config", os.path.join(ROOT, "cli_configs", "toy_solver.yaml"),
        f"--trainer.max_epochs={steps}",
        f"--trainer.logger.init_args.save_dir={folder}",
        "--threads=1",
        "--trainer.enable_progress_bar=false",
        f"--model.init_args.seed={seed}",
        f"--data.init_args.seed={seed}",
        f"--seed_everything={seed}",
    ]  # fmt: skip


def ceiling_eval(folder: str) -> str | None:
    """The final evaluation folder of a ceiling run (``eval/stepN`` of the toy_solver logger,
    N its last optimizer step), None until it is written."""
    pattern = os.path.join(folder, "toy_solver", "version_*", "eval", "step*", "eval.json")
    done = [os.path.dirname(p) for p in glob.glob(pattern)]
    return max(done, key=lambda f: int(f.rsplit("step", 1)[1])) if done else None


def ceiling_accuracy(eval_folder: str | None) -> float | None:
    if eval_folder is None:
        return None
    with open(os.path.join(eval_folder, "eval.json")) as f:
        return json.load(f)["benchmarks"]["toy"]["accuracy"]


def run_ceiling(root: str, seeds: list[int], iterations: int, parallel: int) -> None:
    """Start every unfinished true-label run of ``ceiling_steps(iterations)`` steps."""
    steps = ceiling_steps(iterations)
    jobs = []
    for seed in seeds:
        folder = run_dir(root, CEILING, seed)
        if ceiling_eval(folder) is None:
            jobs.append(
                (folder, " ".join(shlex.quote(a) for a in ceiling_command(seed, steps, folder)))
            )
    run_jobs(root, jobs, parallel)


def ceiling_table(root: str, arms: list[str], seeds: list[int], iterations: int) -> str:
    """The true-label solver's accuracy, and each arm's last iteration minus it (paired by
    seed, with the per-problem sign test pooled over seeds)."""
    steps = ceiling_steps(iterations)
    evals = {s: ceiling_eval(run_dir(root, CEILING, s)) for s in seeds}
    truth = {s: ceiling_accuracy(e) for s, e in evals.items() if e is not None}
    lines = [
        f"True labels, {steps} solver rollout steps (cli_configs/toy_solver.yaml): "
        + (format_interval(*t_interval(list(truth.values())), True) if truth else "–")
        + f" over {len(truth)} seeds",
        "",
        f"| arm at iteration {iterations} − true labels | paired difference (points) [95 %] | "
        "seeds | problems won / lost (pooled) | sign test p |",
        "|---|---|---|---|---|",
    ]
    for arm in arms:
        got = {s: value(run_dir(root, arm, s), iterations, "eval", "accuracy") for s in truth}
        diffs = paired_differences({s: v for s, v in got.items() if v is not None}, truth)
        wins = losses = 0
        for s in truth:
            w, lo = sign_test(
                problem_verdicts(run_dir(root, arm, s), iterations), verdicts_in(evals[s])
            )
            wins, losses = wins + w, losses + lo
        interval = format_interval(*t_interval(diffs), True) if diffs else "–"
        lines.append(
            f"| {arm} | {interval} | {len(diffs)} | {wins} / {losses} | "
            f"{sign_test_p(wins, losses):.3g} |"
        )
    return "\n".join(lines)


def table(root: str, arms: list[str], seeds: list[int], iterations: int) -> str:
    """The markdown tables: every column per arm and iteration, then the comparisons."""
    lines = ["| arm | iteration | " + " | ".join(c[0] for c in COLUMNS) + " |"]
    lines.append("|---|---|" + "---|" * len(COLUMNS))
    for arm in arms:
        for it in range(iterations + 1):
            cells = []
            for _, source, key, percent in COLUMNS:
                got = [value(run_dir(root, arm, s), it, source, key) for s in seeds]
                known = [v for v in got if v is not None]
                text = format_interval(*t_interval(known), percent) if known else "–"
                cells.append(text + (f" (n={len(known)})" if 0 < len(known) < len(seeds) else ""))
            lines.append(f"| {arm} | {it or 'base'} | " + " | ".join(cells) + " |")
    lines += ["", comparisons(root, arms, seeds, iterations)]
    if "base_challenger" in arms:  # issue 28's goal compares with the untrained challenger
        lines += ["", comparisons(root, arms, seeds, iterations, "base_challenger")]
    lines += ["", signal_correlations(root, arms, seeds, iterations)]
    lines += ["", within_run_correlations(root, arms, seeds, iterations)]
    lines += ["", guard_table(root, arms, seeds, iterations)]
    return "\n".join(lines)


# Label-free candidates for a collapse signal: rzero-pl analyze's columns that need no truth.
SIGNALS = (
    ("iteration p̂ (the solver's own vote share on its curriculum sample)", "iteration_share_mean"),
    ("labelling p̂ (the previous solver's, when it labelled)", "label_share_mean"),
    ("fixed p̂ (the base solver's: difficulty)", "fixed_share_mean"),
    ("kept of N", "kept"),
    ("probe p̂ (the iteration's solver on a fixed probe: iteration 1's sample)", "probe_share_mean"),
    ("probe agreement with the base's majority answers", "probe_base_agreement"),
)


def signal_correlations(root: str, arms: list[str], seeds: list[int], iterations: int) -> str:
    """Spearman's rho of each label-free signal with the solver's true accuracy over every
    (run, iteration) of the grid."""
    lines = ["| label-free signal | rho with solver accuracy | p | pairs |", "|---|---|---|---|"]
    for name, key in SIGNALS:
        xs, ys = [], []
        for arm in arms:
            for seed in seeds:
                run = run_dir(root, arm, seed)
                for it in range(1, iterations + 1):
                    source = "curriculum" if key == "kept" else "analysis"
                    x, y = value(run, it, source, key), value(run, it, "eval", "accuracy")
                    if x is not None and y is not None:
                        xs.append(x)
                        ys.append(y)
        rho, p = rank_correlation(xs, ys)
        lines.append(f"| {name} | {rho:.2f} | {p:.3g} | {len(xs)} |")
    return "\n".join(lines)


def within_run_correlations(root: str, arms: list[str], seeds: list[int], iterations: int) -> str:
    """Each label-free signal's Spearman rho with accuracy over one run's iterations 1..K,
    averaged over the runs of each arm (a signal for choosing an iteration must track
    accuracy within a run, not only between runs)."""
    lines = [
        "| label-free signal | arm | mean within-run rho [95 %] | runs |",
        "|---|---|---|---|",
    ]
    for name, key in SIGNALS:
        source = "curriculum" if key == "kept" else "analysis"
        for arm in arms:
            runs = []
            for seed in seeds:
                run = run_dir(root, arm, seed)
                its = range(1, iterations + 1)
                pairs = [
                    (value(run, i, source, key), value(run, i, "eval", "accuracy")) for i in its
                ]
                if all(x is not None and y is not None for x, y in pairs):
                    runs.append(pairs)
            rho = mean_rank_correlation(runs)
            cell = format_interval(*rho, False) if rho is not None else "–"
            lines.append(f"| {name} | {arm} | {cell} | {len(runs)} |")
    return "\n".join(lines)


def guard_pick(run: str, iterations: int, patience: int | None) -> tuple[int, int] | None:
    """``(kept iteration, last iteration run)`` of the label-free collapse guard
    (``selection.signal: probe_confidence``) replayed on a finished run: with ``patience``
    the run would have stopped at the first iteration whose decision says stop."""
    guard = BestIteration(patience=patience, signal="probe_confidence")
    try:
        for it in range(1, iterations + 1):
            decision = guard.decide_run(run, it, [])
            if decision.stop:
                return decision.best, it
    except (FileNotFoundError, ValueError):
        return None  # a run without the probe columns
    return decision.best, iterations


def guard_table(root: str, arms: list[str], seeds: list[int], iterations: int) -> str:
    """What the label-free guard keeps, per arm: the kept iteration's accuracy against the
    last iteration's and the best's (hindsight), with 95 % intervals over seeds."""
    lines = [
        "| arm | guard | kept iterations | stopped after | kept accuracy | last | best "
        "(hindsight) | kept − last (points) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arm in arms:
        for patience in (None, 2):
            picks = {s: guard_pick(run_dir(root, arm, s), iterations, patience) for s in seeds}
            picks = {s: p for s, p in picks.items() if p is not None}
            if not picks:
                continue
            acc = {
                s: [
                    value(run_dir(root, arm, s), i, "eval", "accuracy")
                    for i in range(1, iterations + 1)
                ]
                for s in picks
            }
            kept = [acc[s][picks[s][0] - 1] for s in picks]
            last = [acc[s][-1] for s in picks]
            best = [max(acc[s]) for s in picks]
            diff = [k - la for k, la in zip(kept, last, strict=True)]
            cells = [
                ", ".join(str(picks[s][0]) for s in picks),
                ", ".join(str(picks[s][1]) for s in picks),
                format_interval(*t_interval(kept), True),
                format_interval(*t_interval(last), True),
                format_interval(*t_interval(best), True),
                format_interval(*t_interval(diff), True),
            ]
            rule = "no patience" if patience is None else f"patience {patience}"
            lines.append(f"| {arm} | {rule} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparisons(
    root: str, arms: list[str], seeds: list[int], iterations: int, reference: str = REFERENCE
) -> str:
    """Solver accuracy minus the ``reference`` arm's, paired by seed, and the pooled sign test."""
    lines = [
        f"| arm − {reference} | iteration | paired difference (points) [95 %] | seeds | "
        "problems won / lost (pooled) | sign test p |",
        "|---|---|---|---|---|---|",
    ]
    for arm in [a for a in arms if a != reference]:
        for it in range(1, iterations + 1):
            acc = {
                r: {s: value(run_dir(root, r, s), it, "eval", "accuracy") for s in seeds}
                for r in (arm, reference)
            }
            acc = {r: {s: v for s, v in d.items() if v is not None} for r, d in acc.items()}
            diffs = paired_differences(acc[arm], acc[reference])
            wins = losses = 0
            for s in seeds:
                w, lo = sign_test(
                    problem_verdicts(run_dir(root, arm, s), it),
                    problem_verdicts(run_dir(root, reference, s), it),
                )
                wins, losses = wins + w, losses + lo
            interval = format_interval(*t_interval(diffs), True) if diffs else "–"
            lines.append(
                f"| {arm} | {it} | {interval} | {len(diffs)} | {wins} / {losses} | "
                f"{sign_test_p(wins, losses):.3g} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["run", "table", "ceiling", "ceiling-table", "probe"])
    parser.add_argument("--root", default=os.path.join(ROOT, "runs", "selfplay"))
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=2, help="runs at a time, 1 thread each")
    parser.add_argument("--sample", type=int, default=100, help="rzero-pl analyze --sample")
    args = parser.parse_args()
    arms = args.arms.split(",")
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        parser.error(f"--arms: unknown arm {unknown[0]!r}; known: {', '.join(ARMS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    root = os.path.abspath(args.root)
    if args.what == "run":
        run_grid(root, arms, seeds, args.iterations, args.parallel, args.sample)
    elif args.what == "probe":
        run_probe(root, arms, seeds, args.parallel, args.sample)
    elif args.what == "ceiling":
        run_ceiling(root, seeds, args.iterations, args.parallel)
    elif args.what == "ceiling-table":
        print(ceiling_table(root, arms, seeds, args.iterations))
    else:
        print(table(root, arms, seeds, args.iterations))


if __name__ == "__main__":
    main()
