"""Where an iteration's time goes: generation, training, grading, I/O, start-up and the rest.

    OMP_NUM_THREADS=1 python bench/phase_shares.py toy        # toy.yaml, one iteration
    OMP_NUM_THREADS=1 python bench/phase_shares.py smollm2    # the SmolLM2 iteration test's run
    OMP_NUM_THREADS=1 python bench/phase_shares.py smollm2_cpu  # smollm2_cpu.yaml on vLLM

One ``rzero-pl fit`` runs in this process with timers around the functions that do each kind of
work (``TARGETS``: the engines' ``generate``, ``training_step``, the optimizer step, the
log-prob recomputation, the majority vote, the graders, the checkpoint and file writes, the
weight pushes to the engine, model loading). Timed calls nest (a vote's generation runs inside
no grading timer, but an optimizer step runs ``training_step`` inside its closure, and the
merged engine streams weights inside ``generate``), so each call is charged its own time only:
its duration minus that of the timed calls inside it (``exclusive``). Wall and CPU time (this
process's, all its threads; child processes such as math-verify workers or a vLLM engine
process are not in it) are both charged. Whatever no timer covers is ``rest``; imports before
the run starts are ``startup.imports``. Only the main thread's calls are charged.

``toy``: ``cli_configs/toy.yaml`` with ``--evolution.iterations=1`` (the baseline evaluation,
then iteration 1 at the toy's real sizes: 5 challenger steps, N = 1000, 20 solver steps, the
evaluation). ``smollm2``: ``cli_configs/octothinker.yaml`` on SmolLM2-135M with
``tests/real_config.py``'s sizes, merged-weight serving, no compilation, as
``tests/test_real_model.py`` runs it (16 tokens, N = 2, m = 2: start-up heavy).
``smollm2_cpu``: ``cli_configs/smollm2_cpu.yaml`` at its own sizes (N = 32, m = 4, G = 4, 8
slots, up to 128/192 tokens) served and read as the test does (``smollm2_cpu_args``). The
machine's load (``uptime``) is printed before and after; read the shares (ratios within one
run), not the seconds, on a shared machine.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

START_WALL, START_CPU = time.perf_counter(), time.process_time()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (module, attribute path) -> category; a category's first word is the table's group.
TARGETS: dict[tuple[str, str], str] = {
    ("rzero_pl.engines.hf", "HFEngine.generate"): "generation",
    ("rzero_pl.engines.vllm", "VLLMEngine.generate"): "generation",
    ("rzero_pl.engines.vllm", "VLLMEngine.start"): "startup.engine",
    ("rzero_pl.engines.vllm", "VLLMEngine._serve"): "io.weights_to_engine",
    ("rzero_pl.engines.vllm", "VLLMEngine.push"): "io.weights_to_engine",
    ("rzero_pl.engines.hf", "HFEngine.push"): "io.weights_to_engine",
    ("rzero_pl.grpo.module", "GRPOModule.training_step"): "training.forward_loss",
    ("lightning.pytorch.core.module", "LightningModule.backward"): "training.backward",
    ("lightning.pytorch.core.optimizer", "LightningOptimizer.step"): "training.optimizer",
    ("rzero_pl.grpo.module", "GRPOModule._record_logprobs"): "training.logprobs",
    ("rzero_pl.grading.votes", "majority_votes"): "grading.votes",
    ("rzero_pl.grading.answers", "matches_many"): "grading.matches",
    ("rzero_pl.grading.answers", "equivalent_many"): "grading.matches",
    ("rzero_pl.grpo.solver", "correctness_rewards"): "grading.correctness",
    ("rzero_pl.rewards.repetition", "RepetitionPenalty.score"): "rest.repetition_penalty",
    ("lightning.pytorch.trainer.trainer", "Trainer.save_checkpoint"): "io.checkpoint",
    ("rzero_pl.models.policy", "Policy.save_role"): "io.weights_save",
    ("rzero_pl.models.policy", "Policy.load_role"): "io.weights_load",
    ("rzero_pl.ground.io", "write_text_atomic"): "io.files",
    ("rzero_pl.ground.io", "write_jsonl_atomic"): "io.files",
    ("rzero_pl.ground.io", "write_json_atomic"): "io.files",
    ("rzero_pl.models.sources", "PretrainedModel.load"): "startup.model",
    ("rzero_pl.models.sources", "GGUFModel.load"): "startup.model",
    ("rzero_pl.toy.model", "ToyModel.load"): "startup.model",
}
GROUPS = ("generation", "training", "grading", "io", "startup", "rest")


@dataclass(frozen=True)
class Call:
    """One timed call: its category and its wall and CPU interval (seconds)."""

    category: str
    wall: tuple[float, float]
    cpu: tuple[float, float]


def exclusive(calls: Sequence[Call]) -> dict[str, tuple[float, float]]:
    """Each category's own (wall, CPU) seconds: a call's time minus the timed calls inside it.

    ``calls`` come from one thread, so they nest (or follow each other); a call is inside
    another when its wall interval lies within it. The outermost calls' own times plus those of
    every nested call add up to the outermost calls' total time.
    """
    ordered = sorted(calls, key=lambda c: (c.wall[0], -c.wall[1]))
    own = {id(c): [c.wall[1] - c.wall[0], c.cpu[1] - c.cpu[0]] for c in ordered}
    stack: list[Call] = []
    for call in ordered:
        while stack and call.wall[0] >= stack[-1].wall[1]:
            stack.pop()
        if stack:  # charge the enclosing call only for what it did itself
            parent = own[id(stack[-1])]
            parent[0] -= call.wall[1] - call.wall[0]
            parent[1] -= call.cpu[1] - call.cpu[0]
        stack.append(call)
    totals: dict[str, tuple[float, float]] = {}
    for call in ordered:
        wall, cpu = totals.get(call.category, (0.0, 0.0))
        totals[call.category] = (wall + own[id(call)][0], cpu + own[id(call)][1])
    return totals


def share_table(
    totals: dict[str, tuple[float, float]], wall: float, cpu: float
) -> list[tuple[str, float, float, float, float]]:
    """Rows (category, wall s, wall share, CPU s, CPU share): every category, then one row per
    group of ``GROUPS`` (``rest`` takes what no timer covered), shares of the run's total."""
    rows = []
    for name in sorted(totals, key=lambda n: (GROUPS.index(n.split(".")[0]), n)):
        w, c = totals[name]
        rows.append((name, w, w / wall, c, c / cpu))
    grouped = {g: [0.0, 0.0] for g in GROUPS}
    for name, (w, c) in totals.items():
        grouped[name.split(".")[0]][0] += w
        grouped[name.split(".")[0]][1] += c
    grouped["rest"][0] += wall - sum(w for w, _ in totals.values())
    grouped["rest"][1] += cpu - sum(c for _, c in totals.values())
    for group, (w, c) in grouped.items():
        rows.append((f"**{group}**", w, w / wall, c, c / cpu))
    return rows


def markdown(rows: Iterable[tuple[str, float, float, float, float]]) -> str:
    lines = ["| category | wall s | wall share | CPU s | CPU share |", "|---|---|---|---|---|"]
    for name, w, ws, c, cs in rows:
        lines.append(f"| {name} | {w:.1f} | {100 * ws:.1f} % | {c:.1f} | {100 * cs:.1f} % |")
    return "\n".join(lines)


class Recorder:
    """Timers wrapped around ``TARGETS``; the main thread's calls land in ``calls``."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.counts: dict[str, int] = {}
        self.main = threading.get_ident()

    def wrap(self, category: str, name: str, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            if threading.get_ident() != self.main:
                return fn(*args, **kwargs)
            w0, c0 = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                role = kwargs.get("role") if category == "generation" else None
                named = f"{category}.{role}" if role else category  # the engines' role=
                self.calls.append(Call(named, (w0, time.perf_counter()), (c0, time.process_time())))
                self.counts[name] = self.counts.get(name, 0) + 1

        return timed

    def install(self) -> None:
        """Wrap every target where it is defined and wherever it was imported by name."""
        for (module_name, path), category in TARGETS.items():
            module = importlib.import_module(module_name)
            *owner_path, attr = path.split(".")
            owner = functools.reduce(getattr, owner_path, module)
            original = owner.__dict__[attr]
            timed = self.wrap(category, path, original)
            setattr(owner, attr, timed)
            if owner_path:
                continue
            for other in list(sys.modules.values()):  # `from module import function` copies
                if getattr(other, "__name__", "").startswith(("rzero_pl", "callbacks")):
                    if getattr(other, attr, None) is original:
                        setattr(other, attr, timed)

    def warm_pool_before_votes(self) -> None:
        """Start the math-verify workers as each vote begins generating (before its
        ``actor.generate``), as a one-line ``shared_pool().start()`` in ``MajorityVote.vote``
        would: the workers' start-up then overlaps the solver's votes."""
        from rzero_pl.grading.verify_pool import shared_pool
        from rzero_pl.rewards.majority_vote import MajorityVote

        original = MajorityVote.vote

        @functools.wraps(original)
        def vote(*args, **kwargs):
            shared_pool().start()
            return original(*args, **kwargs)

        MajorityVote.vote = vote

    def count_pool_pairs(self) -> None:
        """Count the pairs sent to the math-verify workers (any thread)."""
        from rzero_pl.grading.verify_pool import VerifyPool

        original = VerifyPool.submit_many

        def submit_many(pool, pairs, timeout):
            self.counts["VerifyPool pairs"] = self.counts.get("VerifyPool pairs", 0) + len(pairs)
            return original(pool, pairs, timeout)

        VerifyPool.submit_many = submit_many


def toy_args(folder: str) -> list[str]:
    return [
        "fit",
        "--config",
        os.path.join(ROOT, "cli_configs", "toy.yaml"),
        "--evolution.iterations=1",
        f"--evolution.run_dir={folder}/run",
        f"--trainer.default_root_dir={folder}",
        "--threads=1",
    ]


def smollm2_args(folder: str) -> list[str]:
    """tests/test_real_model.py's SmolLM2 iteration as a config file."""
    import yaml

    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import test_real_model as real
    from real_config import derive, tiny_sizes

    sizes = tiny_sizes(f"{folder}/run", real.QUESTIONS, real.BENCHMARKS)
    changes = {**real.SMOLLM2_ITERATION, **sizes}
    path = os.path.join(folder, "config.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(derive("octothinker.yaml", changes), f, sort_keys=False)
    return ["fit", "--config", path, f"--trainer.default_root_dir={folder}", "--threads=1"]


def smollm2_cpu_args(folder: str) -> list[str]:
    """cli_configs/smollm2_cpu.yaml at its own sizes, served as the SmolLM2 test serves it
    (vLLM, merged weights, no compilation), read as the test reads it (the flexible rule; its 4
    labelled questions, so that the solver phase runs; its 2 local GSM8K rows: no hub here)."""
    import yaml

    tests = os.path.join(ROOT, "tests")
    with open(os.path.join(ROOT, "cli_configs", "smollm2_cpu.yaml")) as f:
        config = yaml.safe_load(f)
    engine = {"lora_serving": "merged", "enforce_eager": True}
    config["actor"]["engine"] = {"class_path": "rzero_pl.engines.VLLMEngine", "init_args": engine}
    config["model"]["init_args"]["answer_rule"] = "flexible"
    questions = os.path.join(tests, "data", "real_questions.jsonl")
    config["evolution"]["curriculum"]["labelled"] = {
        "class_path": "rzero_pl.questions.JsonlQuestions",
        "init_args": {"path": questions},
    }
    evaluation = config["evolution"]["evaluation"]["init_args"]
    evaluation.update(benchmarks=["gsm8k"], root=os.path.join(tests, "data", "real_benchmarks"))
    config["evolution"]["run_dir"] = f"{folder}/run"
    path = os.path.join(folder, "config.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return ["fit", "--config", path, f"--trainer.default_root_dir={folder}", "--threads=1"]


RUNS = {"toy": toy_args, "smollm2": smollm2_args, "smollm2_cpu": smollm2_cpu_args}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", choices=list(RUNS))
    parser.add_argument("--json", help="also write the table and counts here")
    parser.add_argument(
        "--warm-pool", action="store_true", help="start the math-verify workers as a vote begins"
    )
    options, overrides = parser.parse_known_args()  # the rest: rzero-pl fit's --key=value
    print("load at start:", uptime(), flush=True)
    sys.path.insert(0, ROOT)  # the checkout this script sits in, before any installed copy
    import rzero_pl.cli

    imports = Call(
        "startup.imports", (START_WALL, time.perf_counter()), (START_CPU, time.process_time())
    )
    recorder = Recorder()
    recorder.install()
    recorder.count_pool_pairs()
    if options.warm_pool:
        recorder.warm_pool_before_votes()
    with tempfile.TemporaryDirectory(prefix=f"phase-shares-{options.run}-") as folder:
        args = RUNS[options.run](folder) + overrides
        print("rzero_pl from", os.path.dirname(rzero_pl.cli.__file__), "args:", *args, flush=True)
        sys.argv[1:] = []  # the run's arguments are ``args``, not this script's
        try:
            rzero_pl.cli.main(args)
        except SystemExit as stop:
            if stop.code not in (0, None):
                raise
    wall, cpu = time.perf_counter() - START_WALL, time.process_time() - START_CPU
    rows = share_table(exclusive([*recorder.calls, imports]), wall, cpu)
    print("load at end:", uptime())
    print(f"total: wall {wall:.1f} s, CPU {cpu:.1f} s (this process)")
    print(markdown(rows))
    print("calls:", json.dumps(recorder.counts, sort_keys=True))
    grading = [  # (category, started at s, wall s with nested calls): where the waits are
        (c.category, round(c.wall[0] - START_WALL, 2), round(c.wall[1] - c.wall[0], 3))
        for c in recorder.calls
        if c.category.startswith("grading")
    ]
    print("grading calls:", json.dumps(grading))
    if options.json:
        with open(options.json, "w") as f:
            out = {"wall": wall, "cpu": cpu, "rows": rows, "counts": recorder.counts}
            json.dump({**out, "grading_calls": grading}, f)


if __name__ == "__main__":
    main()
