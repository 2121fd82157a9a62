"""The embedded toy model: shipped with the package, or pretrained here and cached on disk.

The package ships the default toy base (``rzero_pl/toy/base``: weights, tokenizer and the
settings that built it, about 1.7 MB), so ``ToyModel().path`` is that folder at once, and
every machine starts from the same weights. Why ship it: the build is seeded, but CPU kernels
differ between machines, so a build here gives slightly different weights (greedy accuracy
on the toy benchmark a few points apart) and every toy number would be one machine's.

Any other settings, or ``build=True``, train the model here once (a few CPU minutes) under a
cache folder named by a hash of everything that shapes it (size, steps, level mix, seed, the
optimisation recipe, the levels, the prompts), and return that folder on every later call.
``python -m rzero_pl.toy.model --build --ship`` rebuilds the default and replaces the
shipped copy. Each folder is a plain Hugging Face checkpoint:
``AutoModelForCausalLM.from_pretrained`` and ``AutoTokenizer.from_pretrained`` load it
without rzero-pl.

A build is written to a temporary folder and renamed into place when complete, so a
half-built folder is never used; a file lock keeps two processes from training the same model
at once (the second waits, then finds the finished folder).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from typing import Any, Literal

from rzero_pl.errors import MAX_STEPS, check_number
from rzero_pl.models.sources import ModelSource
from rzero_pl.prompts import RolePrompt
from rzero_pl.roles import check_role
from rzero_pl.toy import arithmetic, corpus
from rzero_pl.toy.arithmetic import DEFAULT_MIX, normalize_mix
from rzero_pl.toy.pretrain import SIZES, Recipe, pretrain
from rzero_pl.toy.prompts import TOY_CHALLENGER, TOY_SOLVER
from rzero_pl.toy.tokenizer import ALPHABET

DEFAULT_STEPS = 1500
RECIPE_VERSION = 4  # bump when the corpus or training code changes in a way the key misses
MARKER = "toy_model.json"  # written last, inside the temporary folder, before the rename
SHIPPED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "base")  # the packaged base


def default_cache_dir() -> str:
    """``$RZERO_PL_CACHE``, else ``~/.cache/rzero_pl``."""
    return os.environ.get("RZERO_PL_CACHE") or os.path.join("~", ".cache", "rzero_pl")


class ToyModel(ModelSource):
    """The toy arithmetic model, built from scratch on first use and cached.

    Args:
        size: ``xs`` (d128, 2 layers, 0.4M parameters; the default) or ``s`` (d192, 4 layers).
        steps: Optimizer steps of pretraining (batch 32 x 192 tokens); the default 1500
            took 5.2 minutes on two free CPU cores (bench/TOY.md). A budget in steps, not
            seconds, so that the same settings give the same model on any machine.
        levels: Weights of levels L1..L5 in the pretraining corpus.
        seed: Seed of the corpus and of the initial weights.
        cache_dir: Where built models are kept; default ``$RZERO_PL_CACHE`` or
            ``~/.cache/rzero_pl``.
        progress: Show a progress bar while building.
        build: Train the model on this machine (into the cache) even when the package ships
            one with these settings; the shipped default base is used otherwise.
    """

    def __init__(
        self,
        size: Literal["xs", "s"] = "xs",
        steps: int = DEFAULT_STEPS,
        levels: tuple[float, float, float, float, float] = DEFAULT_MIX,
        seed: int = 0,
        cache_dir: str | None = None,
        progress: bool = True,
        build: bool = False,
    ) -> None:
        if size not in SIZES:
            raise ValueError(f"model.size: expected one of {list(SIZES)}, got {size!r}")
        if steps < 1:
            raise ValueError(f"model.steps must be >= 1, got {steps}")
        check_number("model.steps", steps, at_most=MAX_STEPS)
        self.size = size
        self.steps = steps
        self.levels = normalize_mix(levels)
        self.seed = seed
        self.cache_dir = os.path.abspath(os.path.expanduser(cache_dir or default_cache_dir()))
        self.progress = progress
        self.build_here = build
        self.recipe = Recipe()

    def settings(self) -> dict[str, Any]:
        """Everything that shapes the weights: the cache key is a hash of this."""
        return {
            "recipe_version": RECIPE_VERSION,
            "size": self.size,
            "architecture": SIZES[self.size],
            "steps": self.steps,
            "levels": [round(w, 6) for w in self.levels],
            "seed": self.seed,
            "recipe": dataclasses.asdict(self.recipe),
            "world": repr(arithmetic.LEVELS),
            "max_solution_chars": arithmetic.MAX_SOLUTION_CHARS,
            "held_out_buckets": arithmetic.HELD_OUT_BUCKETS,
            "challenger_share": corpus.CHALLENGER_SHARE,
            "rewrite_share": corpus.REWRITE_SHARE,
            "direct_shares": list(corpus.DIRECT_SHARES),
            "prompts": [_prompt_key(TOY_SOLVER), _prompt_key(TOY_CHALLENGER)],
            "alphabet": ALPHABET,
        }

    @property
    def key(self) -> str:
        text = json.dumps(self.settings(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def folder(self) -> str:
        """The cache folder of these settings (it may not exist yet)."""
        name = f"toy-{self.size}-{self.steps}steps-seed{self.seed}-{self.key}"
        return os.path.join(self.cache_dir, name)

    def shipped(self) -> str | None:
        """The packaged base folder when it was built with exactly these settings, else None."""
        if self.build_here or not _complete(SHIPPED):
            return None
        with open(os.path.join(SHIPPED, MARKER)) as f:
            recorded = json.load(f)["settings"]
        wanted = json.loads(json.dumps(self.settings()))  # tuples as JSON lists
        return SHIPPED if recorded == wanted else None

    @property
    def path(self) -> str:
        """The shipped base for its settings, else the cached folder (built now if missing)."""
        shipped = self.shipped()
        if shipped is not None:
            return shipped
        if not _complete(self.folder):
            self.build()
        return self.folder

    def build(self) -> str:
        """Pretrain into a temporary folder and rename it into place (under a file lock)."""
        os.makedirs(self.cache_dir, exist_ok=True)
        with _lock(self.folder + ".lock"):
            if _complete(self.folder):  # another process finished it while we waited
                return self.folder
            prefix = f".{os.path.basename(self.folder)}.tmp-"
            for name in os.listdir(self.cache_dir):  # left by a killed build: we hold the lock
                if name.startswith(prefix):
                    shutil.rmtree(os.path.join(self.cache_dir, name), ignore_errors=True)
            tmp = tempfile.mkdtemp(prefix=prefix, dir=self.cache_dir)
            try:
                stats = pretrain(
                    tmp, self.size, self.steps, self.levels, self.seed, self.recipe, self.progress
                )
                with open(os.path.join(tmp, MARKER), "w") as f:
                    json.dump({"settings": self.settings(), "stats": stats}, f, indent=2)
                if os.path.exists(self.folder):  # an incomplete leftover from outside
                    shutil.rmtree(self.folder)
                os.rename(tmp, self.folder)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return self.folder

    def prompt(self, role: str) -> RolePrompt:
        """The prompt the toy model was pretrained to answer for ``role`` (``TOY_SOLVER``,
        ``TOY_CHALLENGER``): what a toy config's ``prompt: null`` means."""
        return TOY_SOLVER if check_role(role) == "solver" else TOY_CHALLENGER

    def load(self, **overrides: Any) -> tuple[Any, Any]:
        """``(model, tokenizer)`` from the cached folder; ``overrides`` go to the model."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = self.path
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, **overrides)
        return model, tokenizer

    def __repr__(self) -> str:
        return f"ToyModel(size={self.size!r}, steps={self.steps}, seed={self.seed})"


def _prompt_key(prompt: Any) -> list[Any]:
    return [prompt.system, prompt.user, prompt.use_chat_template, prompt.fallback]


def _complete(folder: str) -> bool:
    names = (MARKER, "config.json", "model.safetensors", "tokenizer.json")
    return all(os.path.isfile(os.path.join(folder, name)) for name in names)


def _lock(path: str) -> Any:
    try:
        from filelock import FileLock  # installed with huggingface_hub
    except ImportError:  # pragma: no cover - the rename alone still keeps folders whole
        return contextlib.nullcontext()
    return FileLock(path)


def ship(folder: str, target: str = SHIPPED) -> str:
    """Copy a built toy model folder to ``target`` (the package's shipped base), whole."""
    if not _complete(folder):
        raise FileNotFoundError(f"{folder!r} is not a complete toy model folder")
    tmp = tempfile.mkdtemp(prefix=".ship-", dir=os.path.dirname(target))
    os.chmod(tmp, 0o755)  # package data: readable by everyone
    for name in sorted(os.listdir(folder)):
        shutil.copy2(os.path.join(folder, name), os.path.join(tmp, name))
        os.chmod(os.path.join(tmp, name), 0o644)
    old = target + ".old"
    if os.path.exists(target):
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def main(argv: list[str] | None = None) -> None:
    """``python -m rzero_pl.toy.model [--build] [--ship]``: print the default toy model's folder.

    ``--build`` trains it here (into the cache) instead of using the shipped base; ``--ship``
    then copies the result over the package's shipped base (for maintainers: commit it with
    the change to the corpus or recipe that made a rebuild necessary).
    """
    parser = argparse.ArgumentParser(prog="python -m rzero_pl.toy.model")
    parser.add_argument("--build", action="store_true", help="train here, into the cache")
    parser.add_argument("--ship", action="store_true", help="copy the build to the package")
    args = parser.parse_args(argv)
    source = ToyModel(build=args.build or args.ship)
    path = source.path
    print(ship(path) if args.ship else path)


if __name__ == "__main__":
    main()
