"""``rzero-pl export RUN_DIR``: a trained role as a standalone Hugging Face model folder, or the
run's curricula as a dataset.

    rzero-pl export runs/toy                          # the solver of the best iteration
    rzero-pl export runs/toy --role challenger --iteration 2 --out my_challenger
    rzero-pl export runs/toy --adapter                # a LoRA run's adapter, unmerged
    rzero-pl export runs/toy --curriculum             # every iteration's curriculum (parquet)
    rzero-pl export runs/toy --push-to-hub me/rzero-toy

The model folder holds the weights (a LoRA adapter merged into the base, or full weights),
the tokenizer, ``generation_config.json``, the run's ``config.yaml`` and a model card
(``README.md``) built from the run's files. By default it is written beside the run folder
(``RUN_DIR-solver-iterK``, ``RUN_DIR-curriculum``), never inside it: a run folder holds only
what the run writes. The folder is written under a temporary name and renamed into place.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable
from typing import Any

from rzero_pl.export.card import model_card
from rzero_pl.export.dataset import write_curricula
from rzero_pl.export.hub import hub_token, push
from rzero_pl.export.model import (
    generation_settings,
    weights_kind,
    write_generation_config,
    write_weights,
)
from rzero_pl.export.run_files import Choice, Run, choose, open_run
from rzero_pl.ground.io import fsync_tree, remove_path
from rzero_pl.roles import ROLES

DESCRIPTION = "Write a trained role as a Hugging Face model folder, or the curricula as a dataset."


def export_model(run: Run, choice: Choice, out: str, adapter: bool) -> str:
    """Write ``choice``'s model folder into the empty folder ``out``; return its kind."""
    kind = weights_kind(choice, adapter)
    base = write_weights(run, choice, kind, out)
    generation = generation_settings(run.config, choice.role)
    write_generation_config(out, generation, base)
    with open(os.path.join(out, "rzero_pl_config.yaml"), "w", encoding="utf-8") as f:
        f.write(run.config_text)
    with open(os.path.join(out, "README.md"), "w", encoding="utf-8") as f:
        f.write(model_card(run, choice, kind, generation))
    return kind


def output_folder(run: Run, out: str | None, default: str, overwrite: bool) -> str:
    """Where the export goes: ``out`` or ``RUN_DIR-<default>``, never inside the run folder,
    never over a folder that holds files unless ``overwrite``."""
    out = out or f"{os.path.normpath(run.folder)}-{default}"
    inside = os.path.commonpath([os.path.realpath(out), os.path.realpath(run.folder)])
    if inside == os.path.realpath(run.folder):
        raise ValueError(
            f"--out: {out} is inside the run folder, which holds only what the run writes; "
            "give a folder outside it"
        )
    if os.path.isfile(out) or (os.path.isdir(out) and os.listdir(out) and not overwrite):
        raise FileExistsError(f"--out: {out} already exists; pass --overwrite or another --out")
    return out


def write_atomically(out: str, write: Callable[[str], Any]) -> Any:
    """``write(tmp)`` into a fresh folder beside ``out``, then rename it to ``out``."""
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(out))}.tmp-", dir=parent)
    try:
        result = write(tmp)
        fsync_tree(tmp)
        if os.path.exists(out):  # --overwrite: the old export goes only once the new is whole
            old = tmp + "-old"
            os.replace(out, old)
            os.replace(tmp, out)
            remove_path(old)
        else:
            os.replace(tmp, out)
    finally:
        remove_path(tmp)
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rzero-pl export", description=DESCRIPTION)
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (evolution.run_dir)")
    p.add_argument("--role", default="solver", help=f"one of {', '.join(ROLES)} (default: solver)")
    p.add_argument(
        "--iteration", type=int, default=None, help="K (0: the base); default: best.json's"
    )
    p.add_argument("--adapter", action="store_true", help="LoRA: the adapter alone, unmerged")
    p.add_argument(
        "--curriculum", action="store_true", help="export every curriculum as parquet instead"
    )
    p.add_argument(
        "--out", default=None, help="default: RUN_DIR-<role>-iter<K>, RUN_DIR-curriculum"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--push-to-hub", metavar="REPO", default=None, help="upload to OWNER/NAME")
    p.add_argument("--private", action="store_true", help="a new Hub repository is private")
    return p


def main(argv: list[str] | None = None) -> int:
    """``rzero-pl export RUN_DIR [options]``; returns the exit status (errors: one line)."""
    args = parser().parse_args(argv)
    token = hub_token(args.push_to_hub) if args.push_to_hub else None  # before any work
    run = open_run(args.run_dir)
    if args.curriculum:
        out = output_folder(run, args.out, "curriculum", args.overwrite)
        iterations = write_atomically(out, lambda tmp: write_curricula(run, tmp))
        print(f"wrote {out}: the curricula of iterations {', '.join(map(str, iterations))}")
    else:
        choice = choose(run, args.role, args.iteration)
        default = f"{choice.role}-iter{choice.iteration}"
        out = output_folder(run, args.out, default, args.overwrite)
        kind = write_atomically(out, lambda tmp: export_model(run, choice, tmp, args.adapter))
        print(f"wrote {out}: the {choice.role} of iteration {choice.iteration} ({kind})")
    if token is not None:
        kind = "dataset" if args.curriculum else "model"
        print(f"uploaded: {push(out, args.push_to_hub, token, kind, args.private)}")
    return 0
