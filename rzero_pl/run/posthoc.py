"""``rzero-pl analyze RUN_DIR``: the paper's self-play analysis of a run, iteration by iteration.

Analyses a finished (or stopped) run folder after the fact, with ``rzero_pl.analysis.analyze``
(the rows, the table, the ``analysis/…`` scalars at each iteration's evaluation step). The run
is rebuilt from its ``config.yaml`` (or ``--config``, e.g. when class paths changed since the
run) by ``rzero_pl.run.build.build_run``, as ``fit`` built it, so the model, engine, vote and
truth are the run's own; the configured model is the base solver (the fixed one unless
``--fixed`` names other weights). Each iteration's solver is loaded from
``iterK/solver/weights`` (the newest earlier one when a phase was skipped).
"""

from __future__ import annotations

import argparse
import os

import yaml

from rzero_pl.analysis.analyze import Analysis, latest_solver, write_table
from rzero_pl.analysis.dynamics import scalars, write_row
from rzero_pl.ground.io import read_json
from rzero_pl.run.build import build_run


def iterations_of(run_dir: str) -> list[int]:
    """The iterations whose curriculum is written, in order."""
    found = []
    for name in os.listdir(run_dir):
        path = os.path.join(run_dir, name, "curriculum", "questions.jsonl")
        if name.startswith("iter") and name[4:].isdigit() and os.path.exists(path):
            found.append(int(name[4:]))
    return sorted(found)


def eval_step(run_dir: str, it: int) -> int:
    """The step at which iteration ``it`` was evaluated (its scalars go there too)."""
    state = read_json(os.path.join(run_dir, "state.json")) or {"phases": {}}
    phase = state["phases"].get(f"iter{it}/eval") or state["phases"].get(f"iter{it}/solver")
    return int(phase["step_end"]) if phase else 0


def analyze_run(args: argparse.Namespace) -> str:
    """Analyse every iteration of ``args.run_dir``; return the markdown table."""
    from lightning.pytorch.loggers import TensorBoardLogger

    from rzero_pl.models.sources import PretrainedModel

    run_dir = args.run_dir
    config = args.config or os.path.join(run_dir, "config.yaml")
    if not os.path.isfile(config):
        raise FileNotFoundError(f"{config}: no run configuration; pass --config")
    with open(config) as f:
        settings = yaml.safe_load(f)
    run = build_run(settings, args.threads)
    evolution, solver, actor = run.evolution, run.model, run.actor
    if evolution is None:
        raise ValueError(f"{config}: no evolution section, nothing to analyse")
    vote = evolution.vote.bound_to(solver.reading())
    reference = PretrainedModel(args.reference) if args.reference else None
    analysis = Analysis(args.sample, fixed_solver=args.fixed, reference=reference)
    analysis.keep_base(actor, run_dir)  # the configured model: the run's base solver
    logger = TensorBoardLogger(save_dir=run_dir, name="tensorboard", version="")
    for it in iterations_of(run_dir):
        weights = latest_solver(run_dir, it) or analysis.base_folder(run_dir)
        actor.load_role("solver", weights)
        kept = read_json(os.path.join(run_dir, "analysis", f"iter{it}.json"))
        if args.probe_only and kept is not None:  # only the probe columns, added to the row
            row = {**kept, **analysis.probe(run_dir, actor, vote, weights)}
            write_row(os.path.join(run_dir, "analysis"), row)
        else:
            row = analysis.iteration(it, run_dir, actor, vote, evolution.curriculum.truth, weights)
        logger.log_metrics(scalars(row), step=eval_step(run_dir, it))
        print(f"[analyze] iter{it}: {row['questions']} questions", flush=True)
    logger.finalize("success")
    table = write_table(run_dir)
    print(table)
    return table


def main(argv: list[str]) -> int:
    """``rzero-pl analyze RUN_DIR [--config FILE] [--sample N] [--fixed WEIGHTS]``."""
    parser = argparse.ArgumentParser(prog="rzero-pl analyze", description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--config", help="default: RUN_DIR/config.yaml")
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--fixed", help="saved solver weights of the fixed solver (default: base)")
    parser.add_argument("--reference", help="a model folder or hub id: the reference solver")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--probe-only",
        action="store_true",
        help="add the label-free probe columns to rows already analysed (the rest is kept)",
    )
    analyze_run(parser.parse_args(argv))
    return 0
