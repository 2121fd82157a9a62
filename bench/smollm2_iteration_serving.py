"""Wall time of tests/test_real_model.py's SmolLM2 iteration (``octothinker.yaml`` on CPU, the
test's own sizes) under each ``engine.lora_serving``, one run after the other, with the load.

    OMP_NUM_THREADS=1 python bench/smollm2_iteration_serving.py merged_eager adapter merged

Each variant runs ``rzero-pl fit`` in a new process (as the test does), then the test's own
checks of the run folder. The variants add only command-line overrides of the engine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

TESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")
ENGINE = "--actor.engine.init_args"
VARIANTS = {
    "adapter": [],
    "merged": [f"{ENGINE}.lora_serving=merged"],
    "merged_eager": [f"{ENGINE}.lora_serving=merged", f"{ENGINE}.enforce_eager=true"],
}


def run(name: str, folder: str) -> dict:
    import test_real_model as real
    import yaml
    from real_config import MODEL, derive, tiny_sizes

    run_dir = os.path.join(folder, "run")
    model = {**real.SMOLLM2, "init_args": {**real.SMOLLM2["init_args"], "dtype": "bfloat16"}}
    changes = {
        "trainer.accelerator": "cpu",
        MODEL: model,
        "model.init_args.answer_rule": "flexible",
    }
    sizes = tiny_sizes(run_dir, real.QUESTIONS, real.BENCHMARKS)
    path = os.path.join(folder, "config.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(derive("octothinker.yaml", {**changes, **sizes}), f, sort_keys=False)
    command = [sys.executable, "-m", "rzero_pl", "fit", "--config", path]
    command += [f"--trainer.default_root_dir={folder}", *VARIANTS[name]]
    load, start = os.getloadavg()[0], time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{name}: rzero-pl fit failed:\n{done.stderr[-3000:]}")
    real.check_iteration(run_dir)
    return {"variant": name, "wall_s": round(wall, 1), "load": [load, os.getloadavg()[0]]}


def main() -> None:
    sys.path.insert(0, TESTS)
    for name in sys.argv[1:] or list(VARIANTS):
        with tempfile.TemporaryDirectory(prefix=f"smollm2-{name}-") as folder:
            print(json.dumps(run(name, folder)), flush=True)


if __name__ == "__main__":
    main()
