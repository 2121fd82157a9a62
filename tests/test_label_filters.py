"""The curriculum's text filters: rzero-pl's rules or the released code's, by hand-written cases."""

from __future__ import annotations

import json

import pytest
from test_curriculum import ScriptedEngine, _actor, _curriculum, _vote

from rzero_pl.curriculum import drop_reason
from rzero_pl.label_filters import TextFilters

OURS, RELEASED = TextFilters(), TextFilters(proof="release", text_label="release")


@pytest.mark.parametrize(
    ("question", "ours", "released"),
    [
        ("Prove that 7 is prime.", True, False),
        ("Give a proof of the bound, then its value.", True, False),
        ("Show that x = 2 and give x.", True, False),
        ("SHOW THAT the sum is 3.", True, False),
        ("请证明 x = 2。", True, True),  # the Chinese word: both rules
        ("What do the proofs' authors approve?", False, False),  # not whole words
        ("Find x.", False, False),
    ],
)
def test_proof_rule(question, ours, released):
    assert OURS.asks_for_proof(question) is ours
    assert RELEASED.asks_for_proof(question) is released


@pytest.mark.parametrize(
    ("label", "ours", "released"),
    [
        ("\\text{two}", True, True),
        ("\\textbf{(C)}", True, True),
        ("\\TEXT{two}", False, True),  # any case, as released
        ("Text", False, True),
        ("context", False, True),  # the release's substring rule catches words too
        ("\\mathrm{cm}", False, False),
        ("12", False, False),
    ],
)
def test_text_label_rule(label, ours, released):
    assert OURS.has_text(label) is ours
    assert RELEASED.has_text(label) is released


def test_drop_reason_takes_the_rules():
    band = (0.3, 0.8)
    assert drop_reason("Prove that 1 = 1", "1", 0.5, band, OURS) == "asks_for_proof"
    assert drop_reason("Prove that 1 = 1", "1", 0.5, band, RELEASED) == "kept"
    assert drop_reason("1+1", "Text", 0.5, band, RELEASED) == "text_label"
    assert drop_reason("1+1", "Text", 0.5, band, OURS) == "kept"
    assert drop_reason("Put it in a BOX", "1", 0.5, band, RELEASED) == "mentions_box"
    assert drop_reason("Prove that 1 = 1", "Text", 0.5, band, None) == "kept"


def test_curriculum_filters_with_the_configured_rules(tmp_path):
    questions = [f"<question>{q}</question> \\boxed{{0}}" for q in ("Prove that 2+2", "3+3")]
    votes = {"Prove that 2+2": ["\\boxed{4}", "\\boxed{5}"], "3+3": ["\\boxed{Text}", "\\boxed{6}"]}
    reasons = {}
    for name, rules in (("ours", OURS), ("released", RELEASED), ("none", None)):
        folder = tmp_path / name
        curriculum = _curriculum(candidates=2, text_filters=rules)
        curriculum.build(_actor(ScriptedEngine(questions, votes)), _vote(2), str(folder))
        rows = (folder / "questions.jsonl").read_text().splitlines()
        reasons[name] = [json.loads(r)["reason"] for r in rows]
    assert reasons == {
        "ours": ["asks_for_proof", "kept"],
        "released": ["kept", "text_label"],
        "none": ["kept", "kept"],  # text_filters null: none of them
    }
