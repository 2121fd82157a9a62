"""One toy iteration end to end, its wall time split by phase from what the run already logs.

Runs ``rzero-pl fit --config cli_configs/toy.yaml --evolution.iterations=1`` in a fresh run
folder (a subprocess), with fewer rollout steps, candidates and evaluation problems than
toy.yaml when asked (every other setting is toy.yaml's), then reads the phases back:

- ``state.json``: each role phase's seconds (``iter1/challenger``, ``iter1/solver``);
- TensorBoard scalars, per rollout step: ``<role>/rollout_seconds`` (generate + score +
  log-probs), ``<role>/gen_tokens_per_s`` and ``<role>/response_length_mean`` (so generation
  seconds = rollouts x mean length / rate), ``challenger/vote/seconds`` (the solver's m votes
  and their labelling), ``challenger/repetition/seconds``;
- ``iter1/curriculum/curriculum.json`` ``seconds``; ``eval.json`` ``seconds`` per benchmark.

A phase's update time is its seconds minus its rollout seconds (optimizer steps, Lightning's
loop, checkpoints and the weights saved at the end). ``--profile`` records the run with py-spy.

    python bench/bench_e2e.py [--challenger-steps 1 --solver-steps 2 --candidates 256]
    python bench/bench_e2e.py --full     # toy.yaml's own steps, candidates and benchmark
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOY = os.path.join(ROOT, "cli_configs", "toy.yaml")


def defaults() -> dict[str, Any]:
    return {
        "challenger_steps": 1,
        "solver_steps": 2,
        "candidates": 256,
        "eval_samples": 100,
        "threads": 0,
        "profile": "",
        "run_dir": "",
        "full": False,
        "model_dir": "",
        "extra": [],
    }


def command(cfg: dict[str, Any], run_dir: str) -> list[str]:
    args = [
        sys.executable, "-m", "rzero_pl", "fit", "--config", TOY,
        "--trainer.enable_progress_bar=false", "--evolution.iterations=1",
        f"--evolution.run_dir={run_dir}",
    ]  # fmt: skip
    if not cfg["full"]:
        args += [
            f"--evolution.challenger_steps={cfg['challenger_steps']}",
            f"--evolution.solver_steps={cfg['solver_steps']}",
            f"--evolution.curriculum.candidates={cfg['candidates']}",
            "--evolution.curriculum.max_rounds=1",
            f"--evolution.evaluation.init_args.max_samples={cfg['eval_samples']}",
        ]
    if cfg["model_dir"]:  # a local model instead of the toy base (the smoke test)
        model = "--actor.policy.init_args.model"
        args += [f"{model}.class_path=rzero_pl.models.sources.PretrainedModel",
                 f"{model}.init_args.name_or_path={cfg['model_dir']}"]  # fmt: skip
    args += list(cfg["extra"])
    if cfg["profile"]:
        args = ["py-spy", "record", "--rate", "20", "--subprocesses", "--format",
                "raw", "-o", cfg["profile"], "--", *args]  # fmt: skip
    return args


def scalars(run_dir: str) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, list[float]] = {}
    for path in sorted(glob.glob(os.path.join(run_dir, "tensorboard", "events.out.tfevents.*"))):
        events = EventAccumulator(path, size_guidance={"scalars": 0})
        events.Reload()
        for tag in events.Tags()["scalars"]:
            out.setdefault(tag, []).extend(e.value for e in events.Scalars(tag))
    return out


def role_split(s: dict[str, list[float]], role: str, rows: int) -> dict[str, float]:
    """Generation and the rest of the rollout seconds of one role's rollout steps."""
    rate = s.get(f"{role}/gen_tokens_per_s", [])
    lengths = s.get(f"{role}/response_length_mean", [])
    gen = sum(rows * n / r for n, r in zip(lengths, rate, strict=True) if r > 0)
    return {"rollout": sum(s.get(f"{role}/rollout_seconds", [])), "generation": gen}


def eval_seconds(path: str) -> float:
    if not os.path.exists(path):
        return 0.0
    with open(path) as f:
        return sum(b.get("seconds", 0.0) for b in json.load(f)["benchmarks"].values())


def rows_per_step(run_dir: str) -> tuple[int, int]:
    """Rollouts per challenger and per solver rollout step, from the run's saved config."""
    import yaml

    with open(os.path.join(run_dir, "config.yaml")) as f:
        cfg = yaml.safe_load(f)
    evo = cfg["evolution"]["init_args"]
    challenger = evo["challenger"]["init_args"]["group_size"]
    challenger *= evo["challenger_data"]["init_args"]["slots_per_step"]
    solver = cfg["model"]["init_args"]["group_size"]
    return challenger, solver * cfg["data"]["init_args"]["questions_per_step"]


def phases(run_dir: str) -> dict[str, float]:
    """Seconds per phase of the finished run in ``run_dir``."""
    with open(os.path.join(run_dir, "state.json")) as f:
        state = json.load(f)["phases"]
    with open(os.path.join(run_dir, "iter1", "curriculum", "curriculum.json")) as f:
        curriculum = json.load(f)
    s = scalars(run_dir)
    challenger_rows, solver_rows = rows_per_step(run_dir)
    ch = role_split(s, "challenger", challenger_rows)
    so = role_split(s, "solver", solver_rows)
    vote = sum(s.get("challenger/vote/seconds", []))
    penalty = sum(s.get("challenger/repetition/seconds", []))
    return {
        "baseline evaluation": eval_seconds(os.path.join(run_dir, "eval", "baseline", "eval.json")),
        "challenger generation": ch["generation"],
        "challenger voting (solver votes + labels)": vote,
        "challenger repetition penalty": penalty,
        "challenger other rollout work": ch["rollout"] - ch["generation"] - vote - penalty,
        "challenger update": state["iter1/challenger"].get("seconds", 0.0) - ch["rollout"],
        "curriculum": curriculum["seconds"],
        "solver generation": so["generation"],
        "solver other rollout work": so["rollout"] - so["generation"],
        # a phase skipped (an empty curriculum) records no seconds
        "solver update": state["iter1/solver"].get("seconds", 0.0) - so["rollout"],
        "evaluation": eval_seconds(os.path.join(run_dir, "iter1", "eval", "eval.json")),
    }


def run(cfg: dict[str, Any] | None = None) -> dict[str, Any]:
    cfg = {**defaults(), **(cfg or {})}
    run_dir = cfg["run_dir"] or tempfile.mkdtemp(prefix="rzero-e2e-")
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
    if cfg["threads"]:
        env["OMP_NUM_THREADS"] = str(cfg["threads"])
    start = time.perf_counter()
    done = subprocess.run(command(cfg, run_dir), cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"toy run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    try:
        result = {"config": cfg, "wall_s": wall, "phases": phases(run_dir)}
    finally:
        if not cfg["run_dir"]:
            shutil.rmtree(run_dir, ignore_errors=True)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return result


def table(result: dict[str, Any]) -> str:
    cfg, ph = result["config"], result["phases"]
    steps = "toy.yaml" if cfg["full"] else (
        f"{cfg['challenger_steps']} challenger + {cfg['solver_steps']} solver rollout steps, "
        f"{cfg['candidates']} candidates, {cfg['eval_samples']} eval problems"
    )  # fmt: skip
    total = sum(ph.values())
    lines = [f"End to end, one toy iteration ({steps}): wall {result['wall_s']:.0f} s, "
             f"peak RSS {result['peak_rss_mb']:.0f} MB"]  # fmt: skip
    lines += [f"  {name:<42} {sec:8.1f} s {100 * sec / total:5.1f} %" for name, sec in ph.items()]
    lines.append(f"  {'(sum of phases; the rest is start-up)':<42} {total:8.1f} s")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for key, value in defaults().items():
        flag = f"--{key.replace('_', '-')}"
        if isinstance(value, bool):
            parser.add_argument(flag, action="store_true")
        elif isinstance(value, list):
            parser.add_argument(flag, nargs="*", default=value, help="raw CLI overrides")
        else:
            parser.add_argument(flag, type=type(value), default=value)
    parser.add_argument("--json", action="store_true")
    args = vars(parser.parse_args())
    as_json = args.pop("json")
    result = run(args)
    print(json.dumps(result) if as_json else table(result))


if __name__ == "__main__":
    main()
