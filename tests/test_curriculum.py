"""Curriculum building and serving: filter rule, statistics, rounds, reuse (scripted engine)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from rzero_pl.datamodules.pseudo_labelled import CurriculumDataModule, replay_count

from rzero_pl.curriculum import (
    ChallengerWriting,
    Curriculum,
    CurriculumReport,
    curriculum_stats,
    drop_reason,
)
from rzero_pl.engines.base import Completion, Generation
from rzero_pl.label_filters import TextFilters
from rzero_pl.prompts import RolePrompt
from rzero_pl.rewards import MajorityVote, QuestionFormat, SolverReading

PLAIN = dict(system="", use_chat_template=False, fallback="{user}\n")


class ScriptedEngine:
    """Answers from fixed scripts: questions for the challenger, votes per question."""

    def __init__(self, questions: list[str], votes: dict[str, list[str]]) -> None:
        self.questions, self.votes, self.calls = questions, votes, []

    def generate(self, prompts, *, role, params):
        self.calls.append((role, len(prompts), params.n))
        if role == "challenger":
            texts = [self.questions[i % len(self.questions)] for i in range(params.n)]
            return [_generation(prompts[0], texts)]
        return [_generation(p, self.votes[p.split("Q: ")[1].strip()][: params.n]) for p in prompts]


def _generation(prompt: str, texts: list[str]) -> Generation:
    return Generation(prompt, [1], [Completion(t, [2], "stop", 0) for t in texts])


def _curriculum(**kwargs) -> Curriculum:
    writing = ChallengerWriting(RolePrompt(user="Write.", **PLAIN), QuestionFormat(), None, 8)
    return Curriculum(**kwargs).bound_to(writing)


def _vote(votes: int, band: tuple[float, float] = (0.3, 0.7)) -> MajorityVote:
    return MajorityVote(votes, band=band).bound_to(
        SolverReading(RolePrompt(user="Q: {problem}", **PLAIN), max_new_tokens=8)
    )


def _actor(engine: ScriptedEngine) -> SimpleNamespace:
    return SimpleNamespace(tokenizer=None, generate=engine.generate)


def _served(folder) -> list[dict]:
    data = CurriculumDataModule(questions_per_step=1)
    data.serve(str(folder))
    return data.pool()


RULES = TextFilters()  # rzero-pl's text filters, the curriculum's default


def test_drop_reason_covers_every_rule():
    band = (0.3, 0.7)
    assert drop_reason(None, None, 0.0, band, RULES) == "malformed"
    assert drop_reason("Prove that 1 = 1", "1", 0.5, band, RULES) == "asks_for_proof"
    assert drop_reason("Put it in a box", "1", 0.5, band, RULES) == "mentions_box"
    assert drop_reason("1+1", None, 0.0, band, RULES) == "no_answer"
    assert drop_reason("1+1", "\\text{two}", 0.5, band, RULES) == "text_label"
    assert drop_reason("1+1", "\\text{two}", 0.5, band, None) == "kept"
    assert drop_reason("1+1", "2", 0.2, band, RULES) == "below_band"
    assert drop_reason("1+1", "2", 0.8, band, RULES) == "above_band"
    assert drop_reason("1+1", "2", 0.3, band, RULES) == "kept"
    assert drop_reason("1+1", "2", 0.7, band, RULES) == "kept"


def test_curriculum_stats_by_hand():
    records = [
        {"question": "a b c d", "share": 0.5},
        {"question": "a b c d", "share": 1.0},
        {"question": "w x y z", "share": 0.0},
        {"question": None, "share": 0.0},  # malformed: not counted
    ]
    stats = curriculum_stats(records, votes=2)
    assert stats["share_histogram"] == [1, 1, 1]
    assert stats["share_mean"] == pytest.approx(0.5)
    assert stats["question_words_mean"] == pytest.approx(4.0)
    assert stats["distinct_fraction"] == pytest.approx(2 / 3)
    # pairs: identical (distance 0) once, disjoint (distance 1) twice; 6 ordered pairs
    assert stats["diversity"] == pytest.approx(4 / 6)


def test_curriculum_stats_without_valid_questions():
    assert curriculum_stats([{"question": None, "share": 0.0}], votes=3) == {
        "share_histogram": [0, 0, 0, 0]
    }


def test_report_metrics_are_scalars_and_histogram_fractions():
    report = CurriculumReport(
        candidates=4, valid=3, kept=1, rounds=1, seconds=0.5, share_histogram=[1, 1, 2]
    )
    metrics = report.metrics()
    assert metrics["kept"] == 1.0 and metrics["candidates"] == 4.0
    assert "reused" not in metrics and "label_accuracy" not in metrics  # bool and None
    assert metrics["share_hist/0of2"] == 0.25
    assert metrics["share_hist/2of2"] == 0.5


def test_build_writes_both_files_and_is_reused(tmp_path):
    engine = ScriptedEngine(
        ["<question>1+1</question> \\boxed{2}", "<question>2+2</question> \\boxed{4}", "no tags"],
        {"1+1": ["\\boxed{2}", "\\boxed{3}"], "2+2": ["\\boxed{4}", "\\boxed{4}"]},
    )
    report = _curriculum(candidates=3, min_kept=1).build(_actor(engine), _vote(2), str(tmp_path))
    assert (report.candidates, report.valid, report.kept) == (3, 2, 1)
    assert report.share_histogram == [0, 1, 1]
    rows = [json.loads(x) for x in (tmp_path / "questions.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in rows] == ["kept", "above_band", "malformed"]
    assert rows[2]["malformed"] == "no_question" and "malformed" not in rows[0]
    assert _served(tmp_path) == [{"problem": "1+1", "answer": "2", "share": 0.5}]
    calls = len(engine.calls)
    again = _curriculum(candidates=3).build(_actor(engine), _vote(2), str(tmp_path))
    assert again.reused and again.kept == 1 and len(engine.calls) == calls


def test_build_generates_more_rounds_up_to_the_budget(tmp_path):
    engine = ScriptedEngine(["<question>2+2</question>\\boxed{4}"], {"2+2": ["\\boxed{4}"] * 2})
    curriculum = _curriculum(candidates=2, min_kept=1, max_rounds=3)
    with pytest.warns(UserWarning, match="fewer than min_kept"):
        report = curriculum.build(_actor(engine), _vote(2), str(tmp_path))
    assert report.rounds == 3 and report.candidates == 6 and report.kept == 0
    assert [c[0] for c in engine.calls] == ["challenger", "solver"] * 3


def test_labelled_questions_are_served_with_the_kept_ones(tmp_path, toy_questions_file):
    """A model that writes no valid question still meets real data in its solver phase."""
    from rzero_pl.questions import JsonlQuestions

    engine = ScriptedEngine(["no tags"], {})
    labelled = JsonlQuestions(toy_questions_file)
    curriculum = _curriculum(candidates=2, min_kept=3, max_rounds=3, labelled=labelled)
    report = curriculum.build(_actor(engine), _vote(2), str(tmp_path))
    assert (report.valid, report.labelled, report.kept, report.rounds) == (0, 20, 20, 1)
    assert _served(tmp_path)[0] == {"problem": "What is 0 + 0?", "answer": "0", "share": None}
    assert report.metrics()["labelled"] == 20.0


def test_vote_margin_and_the_margin_rule_by_hand():
    from rzero_pl.grading.votes import Vote
    from rzero_pl.label_filters import MarginRule, vote_margin

    split = Vote("4", 0.4, 4, [("4", 4), ("5", 3), ("6", 3)], num_answers=10)
    assert vote_margin(split) == pytest.approx(0.1)  # 4 - 3 of 10
    alone = Vote("4", 0.5, 5, [("4", 5)], num_answers=10, num_missing=5)
    assert vote_margin(alone) == pytest.approx(0.5)
    assert vote_margin(Vote(None, 0.0, 0, [], num_answers=10, num_missing=10)) == 0.0
    assert not MarginRule(0.2).keeps(split, None) and MarginRule(0.1).keeps(split, None)
    with pytest.raises(ValueError, match="MarginRule.min_margin"):
        MarginRule(1.5)


def test_label_filters_drop_doubtful_labels_inside_the_band(tmp_path):
    from rzero_pl.label_filters import GreedyAgreement, MarginRule

    questions = [f"<question>{q}</question> \\boxed{{0}}" for q in ("1+1", "2+2", "3+3")]
    votes = {  # m = 4: shares 0.5, 0.5 and 0.5; the greedy answer is the first vote
        "1+1": ["\\boxed{2}", "\\boxed{2}", "\\boxed{3}", "\\boxed{4}"],  # margin 1/4
        "2+2": ["\\boxed{5}", "\\boxed{4}", "\\boxed{4}", "\\boxed{5}"],  # 2-2 tie: margin 0
        "3+3": ["\\boxed{7}", "\\boxed{6}", "\\boxed{6}", None],  # greedy 7 disagrees
    }
    votes["3+3"][3] = "no box"
    engine = ScriptedEngine(questions, votes)
    filters = [MarginRule(0.25), GreedyAgreement()]
    curriculum = _curriculum(candidates=3, label_filters=filters)
    curriculum.build(_actor(engine), _vote(4), str(tmp_path))
    rows = [json.loads(x) for x in (tmp_path / "questions.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in rows] == ["kept", "low_margin", "greedy_disagrees"]
    assert rows[0]["greedy_agrees"] is True and rows[2]["greedy_agrees"] is False
    assert ("solver", 3, 1) in engine.calls  # one greedy answer per candidate in the band
    assert _served(tmp_path) == [{"problem": "1+1", "answer": "2", "share": 0.5}]


def test_replay_count_by_hand():
    assert replay_count(60, 0.0) == 0
    assert replay_count(60, 0.25) == 20  # 20 of 80 served: a quarter
    assert replay_count(60, 0.5) == 60
    assert replay_count(7, 0.3) == 3  # 0.3 * 7 / 0.7 = 3


def _write_kept(folder, rows) -> str:
    folder.mkdir(parents=True)
    (folder / "curriculum.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(folder)


def test_replay_serves_earlier_kept_questions_with_their_stored_labels(tmp_path):
    old = [{"problem": f"old {k}", "answer": str(k), "share": 0.5} for k in range(10)]
    new = [{"problem": f"new {k}", "answer": str(k), "share": 0.6} for k in range(6)]
    earlier = [_write_kept(tmp_path / "iter1", old[:4]), _write_kept(tmp_path / "iter2", old[4:])]
    current = _write_kept(tmp_path / "iter3", new)
    data = CurriculumDataModule(questions_per_step=4, replay=0.25)
    data.serve(current, earlier)
    pool = data.pool()
    assert pool[:6] == new and len(pool) == 8  # 2 of 8 replayed: round(0.25 * 6 / 0.75)
    assert all(r["replayed"] and r in [{**o, "replayed": True} for o in old] for r in pool[6:])
    again = CurriculumDataModule(questions_per_step=4, replay=0.25)
    again.load_state_dict(data.state_dict())  # a resumed phase draws the same questions
    assert again.pool() == pool
    plain = CurriculumDataModule(questions_per_step=4)
    plain.serve(current, earlier)
    assert plain.pool() == new  # off by default


def test_replay_share_is_bounded():
    for bad in (-0.1, 0.95, float("nan")):
        with pytest.raises(ValueError, match="CurriculumDataModule.replay"):
            CurriculumDataModule(replay=bad)


def test_union_serves_every_earlier_kept_question(tmp_path):
    old = [{"problem": f"old {k}", "answer": str(k), "share": 0.5} for k in range(5)]
    new = [{"problem": "new", "answer": "1", "share": 0.6}]
    earlier = [_write_kept(tmp_path / "iter1", old[:2]), _write_kept(tmp_path / "iter2", old[2:])]
    data = CurriculumDataModule(questions_per_step=2, union=True)
    data.serve(_write_kept(tmp_path / "iter3", new), earlier)
    pool = data.pool()
    assert pool[0] == new[0] and len(pool) == 6
    assert sorted(r["problem"] for r in pool[1:]) == [o["problem"] for o in old]
    with pytest.raises(ValueError, match="replay or union"):
        CurriculumDataModule(replay=0.2, union=True)


def _kept_row(problem: str, answer: str, share: float | None) -> dict:
    return {"problem": problem, "answer": answer, "share": share}


def test_revote_sample_takes_distinct_kept_questions_seeded(tmp_path):
    from rzero_pl.curriculum import revote_sample

    one, two = tmp_path / "iter1", tmp_path / "iter2"
    _write_kept(
        one, [_kept_row("1+1", "2", 0.5), _kept_row("2+2", "4", 0.6), _kept_row("real", "9", None)]
    )
    _write_kept(two, [_kept_row("2+2", "5", 0.4), _kept_row("3+3", "6", 0.5)])
    folders = [str(one), str(two), str(tmp_path / "iter3")]  # iter3 has no curriculum yet
    # the labelled extras (share None) are not replayed; 2+2 counts once
    assert sorted(revote_sample(folders, 10, seed=1)) == ["1+1", "2+2", "3+3"]
    picked = revote_sample(folders, 2, seed=1)
    assert len(picked) == 2 and picked == revote_sample(folders, 2, seed=1)
    assert revote_sample(folders, 0, seed=1) == []


def test_revote_labels_earlier_questions_by_the_current_vote(tmp_path):
    earlier = tmp_path / "iter1"
    _write_kept(earlier, [_kept_row("3+3", "6", 0.5)])  # stored label 6: the current solver says 7
    engine = ScriptedEngine(
        ["<question>1+1</question> \\boxed{2}"],
        {"1+1": ["\\boxed{2}", "\\boxed{3}"], "3+3": ["\\boxed{7}", "\\boxed{5}"]},
    )
    folder = tmp_path / "iter2"
    report = _curriculum(candidates=2, revote=0.5).build(
        _actor(engine), _vote(2), str(folder), seed=2, earlier=[str(earlier)]
    )
    rows = [json.loads(x) for x in (folder / "questions.jsonl").read_text().splitlines()]
    assert [r["question"] for r in rows] == ["1+1", "1+1", "3+3"]  # round(0.5 * 2) = 1 revoted
    assert rows[2]["revoted"] and rows[2]["label"] == "7" and rows[2]["share"] == 0.5
    assert rows[2]["kept"] and "revoted" not in rows[0]
    assert {"problem": "3+3", "answer": "7", "share": 0.5} in _served(folder)
    assert report.kept == 3


def test_revote_is_a_share():
    with pytest.raises(ValueError, match="Curriculum.revote"):
        Curriculum(revote=1.5)


def test_an_unbound_vote_or_curriculum_refuses_in_one_line(tmp_path):
    engine = ScriptedEngine(["<question>1+1</question> \\boxed{2}"], {"1+1": ["\\boxed{2}"] * 2})
    with pytest.raises(ValueError, match="not bound to a solver: use vote.bound_to"):
        MajorityVote(2).vote(["1+1"], _actor(engine), 0)
    with pytest.raises(ValueError, match="not bound to a challenger"):
        Curriculum(candidates=1).build(_actor(engine), _vote(2), str(tmp_path))
