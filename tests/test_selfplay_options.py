"""Issue 28's self-play options together in one shrunk toy evolution (2 iterations): the
cross-iteration memory of the repetition term, label-confidence advantages, the solver
restarting from the base on the union of the curricula (with as many steps as a solver that
never restarted: ``cumulative_steps``), the challenger's vocabulary
dropout, and replay relabelled by the current solver's vote (``curriculum.revote``). Each option's maths is tested by hand
in its own file (test_rewards.py, test_curriculum.py, test_solver.py; replay, which excludes
the union, there too); this checks that the evolution wires them."""

from __future__ import annotations

import json
import os

import pytest
from builders import tensorboard_scalars
from toy_runs import shrunk_toy_config

pytestmark = pytest.mark.slow

OPTIONS = [
    "--evolution.challenger.init_args.repetition.init_args.memory_max=0.5",
    "--evolution.challenger.init_args.repetition.init_args.memory_mean=0.5",
    "--model.init_args.label_confidence=1.0",
    "--evolution.solver_from_base=true",
    "--evolution.cumulative_steps=true",
    "--data.init_args.union=true",
    "--evolution.curriculum.revote=0.5",
    "--evolution.challenger.init_args.vocab_dropout="
    '{rate: 0.3, keep: ["<question>", "</question>", " \\\\boxed{}", "What is?"]}',
]


def test_the_options_run_remember_and_restart_the_solver_from_the_base(tmp_path, monkeypatch):
    from rzero_pl.cli import main
    from rzero_pl.models.actor import Actor

    loaded: list[tuple[str, str]] = []
    original = Actor.load_role

    def load_role(self, role, folder):
        loaded.append((role, os.path.relpath(folder, tmp_path / "run")))
        return original(self, role, folder)

    monkeypatch.setattr(Actor, "load_role", load_role)
    main(["fit", "--config", shrunk_toy_config(tmp_path), *OPTIONS])
    # The solver's two phases each start from the base, saved before any training.
    base = os.path.join("base", "solver")
    assert os.path.isfile(os.path.join(tmp_path, "run", base, "model.safetensors"))
    assert [f for role, f in loaded if role == "solver"] == [base, base]
    # cumulative_steps: iteration k trains k x solver_steps (2) rollout steps: 2, then 4.
    scalars = tensorboard_scalars(os.path.join(tmp_path, "run", "tensorboard"))
    assert len(scalars["solver/reward_mean"]) == 2 + 4
    # The memory term is logged once something is remembered: iteration 2's 2 challenger steps.
    memory = scalars["challenger/repetition/memory_max_similarity"]
    assert len(memory) == 2 and all(0.0 < e.value <= 1.0 for e in memory)
    # Vocabulary dropout reached the curriculum: iteration 1's candidates were written under
    # round 0's mask (Curriculum.build's round seed: 1009 x the iteration), so no question
    # holds a masked digit or operator. (The toy's words and spaces are kept: without its
    # space the toy model writes no valid question at all.)
    from rzero_pl.toy.tokenizer import build_tokenizer
    from rzero_pl.vocab_dropout import VocabularyDropout

    tok = build_tokenizer()
    dropout = VocabularyDropout(
        rate=0.3, keep=("<question>", "</question>", " \\boxed{}", "What is?")
    )
    masked = set(tok.convert_ids_to_tokens(list(dropout.banned(tok, 1009))))
    path = tmp_path / "run" / "iter1" / "curriculum" / "questions.jsonl"
    questions = [json.loads(line)["question"] for line in path.read_text().splitlines()]
    written = "".join(q for q in questions if q)
    assert written and masked & set("0123456789+-*()") and not masked & set(written)
    # Replay relabelled: iteration 2 votes again on iteration 1's kept questions (half of N).
    rows = (tmp_path / "run" / "iter2" / "curriculum" / "questions.jsonl").read_text()
    revoted = [json.loads(line) for line in rows.splitlines() if '"revoted"' in line]
    kept_before = (tmp_path / "run" / "iter1" / "curriculum" / "curriculum.jsonl").read_text()
    assert revoted and {r["question"] for r in revoted} <= {
        json.loads(line)["problem"] for line in kept_before.splitlines()
    }
