"""``rzero-pl analyze RUN_DIR --reference MODEL`` end to end: a second model judges the labels.

Both models are tiny Llamas built here whose greedy and sampled answers are known in advance:
with a word-level tokenizer, one-hot embeddings, zeroed attention and MLP outputs and an
``lm_head`` that maps each token to one successor, a model is a bigram table. A question's last
word picks its answer (``\\boxed{7}``, ``\\boxed{5}`` … or nothing), so the reference's answers,
the run's labels and the run's solver answers are set by hand, and every agreement number of
the analysis is computed by hand from them. The run folder is hand-built: the toy
configuration with the solver model swapped and no truth, and two iterations' curricula.
"""

from __future__ import annotations

import copy
import json
import os

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
WORDS = ("alpha", "beta", "gamma", "delta")
BOXES = ("\\boxed{3}", "\\boxed{5}", "\\boxed{7}")
VOCAB = (PAD, EOS, UNK, *WORDS, *BOXES)

# A question ends with its key word; each model answers it with a box or nothing (None).
REFERENCE = {"alpha": "7", "beta": "5", "gamma": "7", "delta": None}
SOLVER = {"alpha": "7", "beta": "5", "gamma": "3", "delta": "5"}


def bigram_model(folder: str, answers: dict[str, str | None]) -> str:
    """A Llama that answers a prompt ending in word ``w`` with ``\\boxed{answers[w]}`` then
    EOS (EOS at once for None), saved with its tokenizer to ``folder``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    ids = {token: i for i, token in enumerate(VOCAB)}
    core = Tokenizer(models.WordLevel(ids, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token=EOS, pad_token=PAD, unk_token=UNK, padding_side="left"
    )
    hidden = 16  # >= the vocabulary: embeddings are one-hot
    config = LlamaConfig(
        vocab_size=len(VOCAB),
        hidden_size=hidden,
        intermediate_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=False,
        eos_token_id=ids[EOS],
        pad_token_id=ids[PAD],
        bos_token_id=None,
    )
    model = LlamaForCausalLM(config)
    successor = {token: EOS for token in VOCAB}
    for word, answer in answers.items():
        successor[word] = EOS if answer is None else f"\\boxed{{{answer}}}"
    with torch.no_grad():
        model.model.embed_tokens.weight.copy_(torch.eye(len(VOCAB), hidden))
        for layer in model.model.layers:  # the residual stream stays the token's one-hot
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        head = torch.zeros(len(VOCAB), hidden)
        for token, after in successor.items():
            head[ids[after], ids[token]] = 20.0  # x sqrt(16) after the norm: 80 logits apart
        model.lm_head.weight.copy_(head)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def greedy_answers(folder: str, questions: list[str]) -> list[str | None]:
    """The model's greedy answers by transformers' own ``generate`` (not the engine)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rzero_pl.grading.answers import extract_final

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    found = []
    for question in questions:
        ids = tokenizer(f"Solve: {question}\n", return_tensors="pt")
        out = model.generate(**ids, max_new_tokens=4, do_sample=False)
        text = tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
        found.append(extract_final(text, "boxed"))
    return found


def curriculum(labels: dict[str, str], kept: set[str]) -> list[dict]:
    """One curriculum row per key word, its label and whether it was kept."""
    return [
        {
            "question": f"What is {word}",
            "label": labels[word],
            "share": 0.5,
            "kept": word in kept,
            "votes": [labels[word]] * 2,
        }
        for word in WORDS
    ]


ITERATIONS = {
    1: curriculum({"alpha": "7", "beta": "3", "gamma": "7", "delta": "5"}, {"alpha", "beta"}),
    2: curriculum({"alpha": "7", "beta": "5", "gamma": "7", "delta": "5"}, {"beta", "delta"}),
}


def hand_built_run(run_dir: str, solver: str) -> None:
    """The toy configuration with the solver model swapped and no truth, and two curricula."""
    with open(os.path.join(ROOT, "cli_configs", "toy.yaml")) as f:
        settings = yaml.safe_load(f)
    settings = copy.deepcopy(settings)
    settings["actor"]["policy"]["model"] = {
        "class_path": "rzero_pl.models.sources.PretrainedModel",
        "init_args": {"name_or_path": solver},
    }
    # The toy world's solver prompt, which the toy model gave toy.yaml (prompt: null).
    toy_solver = {"system": "", "user": "Solve: {problem}", "use_chat_template": False}
    settings["model"]["init_args"]["prompt"] = {
        "class_path": "rzero_pl.prompts.RolePrompt",
        "init_args": {**toy_solver, "fallback": "{user}\n"},
    }
    evolution = settings["evolution"]
    evolution["run_dir"] = run_dir
    evolution["curriculum"]["truth"] = None  # a real model's run: no exact truth
    evolution["vote"]["samples"] = 2
    evolution["vote"]["sampling"]["max_new_tokens"] = 4
    os.makedirs(run_dir)
    with open(os.path.join(run_dir, "config.yaml"), "w") as f:
        yaml.safe_dump(settings, f)
    for it, rows in ITERATIONS.items():
        folder = os.path.join(run_dir, f"iter{it}", "curriculum")
        os.makedirs(folder)
        with open(os.path.join(folder, "questions.jsonl"), "w") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows)


def mean(values: list[bool]) -> float:
    return sum(values) / len(values)


def expected(rows: list[dict], refs: dict[str, str | None]) -> dict[str, float]:
    """The agreement numbers by hand: a label or an answer is right when it equals the
    reference's answer (no reference answer: wrong)."""
    words = [row["question"].split()[-1] for row in rows]
    right = [
        refs[w] is not None and row["label"] == refs[w] for w, row in zip(words, rows, strict=True)
    ]
    kept = [ok for ok, row in zip(right, rows, strict=True) if row["kept"]]
    solver = [refs[w] is not None and SOLVER[w] == refs[w] for w in words]
    return {
        "label_accuracy": mean(right),
        "kept_label_accuracy": mean(kept),
        "fixed_vote_accuracy": mean(solver),  # every vote gives the same answer
        "iteration_vote_accuracy": mean(solver),  # no trained weights: the base again
    }


def test_analyze_with_a_reference_model_names_it_and_agrees_by_hand(tmp_path):
    from rzero_pl.cli import main

    reference = bigram_model(str(tmp_path / "reference"), REFERENCE)
    solver = bigram_model(str(tmp_path / "solver"), SOLVER)
    questions = [f"What is {w}" for w in WORDS]
    assert greedy_answers(reference, questions) == [REFERENCE[w] for w in WORDS]
    assert greedy_answers(solver, questions) == [SOLVER[w] for w in WORDS]
    run = tmp_path / "run"
    hand_built_run(str(run), solver)

    main(["analyze", str(run), "--sample=8", f"--reference={reference}"])

    name = f"reference solver (PretrainedModel({reference!r}))"
    for it, rows in ITERATIONS.items():
        row = json.loads((run / "analysis" / f"iter{it}.json").read_text())
        assert row["judge"] == name and row["questions"] == len(rows)
        for key, value in expected(rows, REFERENCE).items():
            assert row[key] == pytest.approx(value), (it, key)
    # iteration 1: labels 7 3 7 5 against 7 5 7 None: 2 of 4 right, kept (alpha, beta) 1 of 2;
    # the solver's 7 5 3 5: 2 of 4. Iteration 2: labels 7 5 7 5: 3 of 4, kept (beta, delta) 1/2.
    assert [expected(r, REFERENCE)["label_accuracy"] for r in ITERATIONS.values()] == [0.5, 0.75]
    table = (run / "analysis" / "analysis.md").read_text()
    lines = [line for line in table.splitlines() if line.startswith(("| 1 |", "| 2 |"))]
    assert len(lines) == 2 and all(reference in line for line in lines), table


def test_a_reference_is_refused_where_exact_truth_judges(tmp_path):
    """With exact truth the reference would be dropped without a word: refused in one line."""
    from rzero_pl.analysis.analyze import Analysis
    from rzero_pl.models.sources import PretrainedModel
    from rzero_pl.toy.tasks import ToyTruth

    analysis = Analysis(reference=PretrainedModel(str(tmp_path / "reference")))
    with pytest.raises(ValueError, match=r"^analysis.reference \(--reference\): .*ToyTruth"):
        analysis.judge(ToyTruth())
    assert Analysis().judge(ToyTruth()).name == "truth (ToyTruth)"
