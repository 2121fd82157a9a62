"""CurriculumDataModule: the solver's questions, written by the challenger, labelled by votes.

Each iteration ``build`` asks the challenger for N candidate questions, asks the solver for
m answers to each, takes the majority vote as the pseudo-label, and keeps the questions
whose vote share lies in the band. Every candidate goes to ``questions.jsonl`` (with its
votes, label, share and the reason it was kept or dropped) and the kept ones to
``curriculum.jsonl``; both are written atomically, and a folder that already holds a
finished curriculum is reused instead of regenerated. The module then serves
``(problem, label)`` pairs to ``SolverGRPO``.
"""

from __future__ import annotations

import os
import re
import time
import warnings
from dataclasses import dataclass, replace
from typing import Any

from rzero_pl.datamodules.base import RolloutDataModule

from rzero_pl import distributed
from rzero_pl import prompts as role_prompts
from rzero_pl.answers import majority_votes
from rzero_pl.distributed import barrier, gather_lists, gather_objects, is_rank_zero, on_rank_zero
from rzero_pl.engines.base import SamplingParams
from rzero_pl.errors import check_number
from rzero_pl.extraction import AnswerRule, extract_final
from rzero_pl.io import read_json, write_json_atomic, write_jsonl_atomic
from rzero_pl.prompts import RolePrompt
from rzero_pl.questions import QuestionSource, Truth, read_jsonl
from rzero_pl.rewards import QuestionFormat, bleu_distance_matrix

PROOF = re.compile(r"\bprove\b|\bproof\b|\bshow that\b|证明", re.IGNORECASE)


def drop_reason(
    question: str | None, label: str | None, share: float, band: tuple[float, float], filters: bool
) -> str:
    """Why a candidate is dropped, or ``kept``: the curriculum's filter as one pure rule."""
    if question is None:
        return "malformed"
    if filters and PROOF.search(question):
        return "asks_for_proof"
    if filters and "box" in question.lower():
        return "mentions_box"
    if label is None:
        return "no_answer"
    if filters and "\\text" in label:
        return "text_label"
    if share < band[0]:
        return "below_band"
    if share > band[1]:
        return "above_band"
    return "kept"


@dataclass
class CurriculumReport:
    """What one build produced (also the ``curriculum/…`` metrics)."""

    candidates: int
    valid: int
    kept: int
    rounds: int
    seconds: float
    label_accuracy: float | None = None
    kept_label_accuracy: float | None = None
    reused: bool = False
    share_mean: float | None = None
    question_words_mean: float | None = None
    distinct_fraction: float | None = None
    diversity: float | None = None
    share_histogram: list[int] | None = None
    labelled: int = 0

    def metrics(self) -> dict[str, float]:
        """Scalars to log as ``curriculum/…``; the histogram as ``share_hist/<k>of<m>``."""
        out = {
            k: float(v)
            for k, v in self.__dict__.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        counts = self.share_histogram or []
        total = sum(counts)
        for k, count in enumerate(counts):
            out[f"share_hist/{k}of{len(counts) - 1}"] = count / total if total else 0.0
        return out


def curriculum_stats(records: list[dict], votes: int, sample: int = 512) -> dict[str, Any]:
    """Share histogram, question length and diversity of a round's valid candidates.

    ``share_histogram[k]`` counts questions whose majority won k of the m votes.
    ``distinct_fraction`` is the share of distinct question texts; ``diversity`` the mean
    pairwise BLEU distance (1 − BLEU, the repetition penalty's distance) over at most
    ``sample`` of them (the first ones: the order is the challenger's sampling order).
    """
    valid = [r for r in records if r["question"] is not None]
    if not valid:
        return {"share_histogram": [0] * (votes + 1)}
    histogram = [0] * (votes + 1)
    for r in valid:
        histogram[min(votes, max(0, round(r["share"] * votes)))] += 1
    texts = [r["question"] for r in valid]
    sampled = texts[:sample]
    n = len(sampled)
    distances = bleu_distance_matrix(sampled)
    return {
        "share_mean": sum(r["share"] for r in valid) / len(valid),
        "question_words_mean": sum(len(t.split()) for t in texts) / len(texts),
        "distinct_fraction": len(set(texts)) / len(texts),
        "diversity": float(distances.sum() / (n * (n - 1))) if n > 1 else 0.0,
        "share_histogram": histogram,
    }


class CurriculumDataModule(RolloutDataModule):
    """Regenerate N questions, vote m times, keep the band, serve ``(problem, label)``.

    Args:
        candidates: N, questions the challenger writes per round (reference: 8000).
        votes: m, solver answers per question (paper: 10; released code: 9).
        band: ``[share_min, share_max]`` kept (paper: 3–7 of 10 = [0.3, 0.7]).
        questions_per_step: Questions per solver rollout step (reference: 512).
        min_kept: Fewest kept questions wanted; below it more rounds are generated.
        max_rounds: Most rounds of N candidates per build.
        filters: Drop proof questions, questions mentioning a box, labels with ``\\text``.
        question_format: What counts as a well-formed question (the released rules:
            ``rzero_pl.rewards.QuestionFormat``); a malformed candidate's record names why.
        challenger_prompt: Prompt for writing questions.
        solver_prompt: Prompt for answering them.
        challenger_sampling: Question sampling (reference: T 1.0, top-p 0.95).
        solver_sampling: Vote sampling (reference: T 1.0, top-p 1.0, top-k 40); n is m.
        truth: Exact answers, when the task has them (the toy world): label accuracy.
        labelled: Labelled questions served with the kept ones in every iteration (counted
            in ``kept``; ``labelled`` in the report): e.g. a JSONL of real problems, so that a
            model that writes no valid question still meets real data in its solver phase.
        timeout: Seconds allowed for one answer-equivalence check.
        seed: Seed of generation and of the question order.
        answer_rule: How a vote's answer is read (``rzero_pl.extraction``): ``boxed`` (the
            paper's) or ``flexible``; use the solver's ``answer_rule``.
    """

    def __init__(
        self,
        candidates: int = 8000,
        votes: int = 10,
        band: tuple[float, float] = (0.3, 0.7),
        questions_per_step: int = 512,
        min_kept: int = 1,
        max_rounds: int = 3,
        filters: bool = True,
        question_format: QuestionFormat | None = None,
        challenger_prompt: RolePrompt | None = None,
        solver_prompt: RolePrompt | None = None,
        challenger_sampling: SamplingParams | None = None,
        solver_sampling: SamplingParams | None = None,
        truth: Truth | None = None,
        timeout: float = 5.0,
        seed: int = 0,
        labelled: QuestionSource | None = None,
        answer_rule: AnswerRule = "boxed",
    ) -> None:
        check_number("CurriculumDataModule.questions_per_step", questions_per_step, at_least=1)
        super().__init__(questions_per_step, seed)
        for key, value in (("candidates", candidates), ("max_rounds", max_rounds)):
            check_number(f"CurriculumDataModule.{key}", value, at_least=1)
        check_number("CurriculumDataModule.votes (m)", votes, at_least=2)
        check_number("CurriculumDataModule.min_kept", min_kept, at_least=0)
        check_number("CurriculumDataModule.timeout", timeout, above=0)
        if not 0 <= band[0] <= band[1] <= 1:
            raise ValueError(f"curriculum band must satisfy 0 <= min <= max <= 1, got {band}")
        if votes < 2:
            raise ValueError(f"curriculum votes (m) must be >= 2, got {votes}")
        if candidates < 1 or max_rounds < 1:
            raise ValueError("curriculum candidates and max_rounds must be >= 1")
        self.candidates = candidates
        self.votes = votes
        self.band = (float(band[0]), float(band[1]))
        self.min_kept = min_kept
        self.max_rounds = max_rounds
        self.filters = filters
        self.question_format = question_format or QuestionFormat()
        self.challenger_prompt = challenger_prompt or role_prompts.challenger_prompt()
        self.solver_prompt = solver_prompt or role_prompts.solver_prompt()
        self.challenger_sampling = challenger_sampling or SamplingParams(
            top_p=0.95, max_new_tokens=4096
        )
        self.solver_sampling = solver_sampling or SamplingParams(top_k=40, max_new_tokens=4096)
        self.truth = truth
        self.timeout = timeout
        self.labelled = labelled
        self.answer_rule = answer_rule
        self.folder: str | None = None
        self._pool: list[dict] | None = None

    # ---- building -----------------------------------------------------------------------

    def build(self, engine: Any, tokenizer: Any, folder: str, seed: int = 0) -> CurriculumReport:
        """Write (or reuse) ``folder/questions.jsonl`` and ``folder/curriculum.jsonl``.

        Collective: under several ranks each one writes and votes on its share of the N
        candidates, rank 0 gathers the records and writes the files, and every rank returns
        the same report once they are written.
        """
        self.folder, self._pool = folder, None
        done = on_rank_zero(lambda: self._finished(folder))
        if done is not None:
            return CurriculumReport(**{**done, "reused": True})
        start = time.perf_counter()
        records: list[dict] = []
        extra = self.labelled.load() if self.labelled is not None else []
        rounds = 0
        while rounds < self.max_rounds:
            # The datamodule's own seed enters too: seed 0 keeps the numbers recorded before it did.
            round_seed = (self.seed * 1_000_003 + seed) * 1009 + rounds
            mine = self._round(engine, tokenizer, round_seed, len(records))
            records += gather_lists(mine)[0]  # rank order is candidate order
            rounds += 1
            kept = len(extra) + sum(r["kept"] for r in records)
            if kept >= self.min_kept:
                break
            if rounds < self.max_rounds:
                warnings.warn(
                    f"curriculum: {kept} kept after {rounds} round(s), fewer than min_kept="
                    f"{self.min_kept}; generating another {self.candidates} candidates",
                    stacklevel=2,
                )
        kept_rows = [
            {"problem": r["question"], "answer": r["label"], "share": r["share"]}
            for r in records
            if r["kept"]
        ]
        kept_rows += [
            {"problem": q["problem"], "answer": q["answer"], "share": None} for q in extra
        ]
        judged = [r["label_correct"] for r in records if r.get("label_correct") is not None]
        judged_kept = [
            r["label_correct"] for r in records if r["kept"] and r.get("label_correct") is not None
        ]
        report = CurriculumReport(
            candidates=len(records),
            valid=sum(r["question"] is not None for r in records),
            kept=len(kept_rows),
            rounds=rounds,
            seconds=time.perf_counter() - start,
            label_accuracy=sum(judged) / len(judged) if judged else None,
            kept_label_accuracy=sum(judged_kept) / len(judged_kept) if judged_kept else None,
            labelled=len(extra),
            **curriculum_stats(records, self.votes),
        )
        if is_rank_zero():
            write_jsonl_atomic(os.path.join(folder, "questions.jsonl"), records)
            write_jsonl_atomic(os.path.join(folder, "curriculum.jsonl"), kept_rows)
            write_json_atomic(os.path.join(folder, "curriculum.json"), report.__dict__)
        barrier()  # the other ranks serve from the files rank 0 wrote
        return report

    @staticmethod
    def _finished(folder: str) -> dict | None:
        """The report of a curriculum already written whole in ``folder``, else None."""
        done = read_json(os.path.join(folder, "curriculum.json"))
        if done is not None and os.path.exists(os.path.join(folder, "curriculum.jsonl")):
            return done
        return None

    def _round(self, engine: Any, tokenizer: Any, seed: int, offset: int) -> list[dict]:
        """This rank's share of one round's N candidates: written, voted on, judged."""
        rank, world = distributed.world()
        first, stop = distributed.shard_bounds(self.candidates, rank, world, even=False)
        count = stop - first
        prompt = self.challenger_prompt.render(tokenizer)
        # One prompt, n samples: sample k of the round is seeded seed + k on any rank count.
        params = replace(self.challenger_sampling, n=max(count, 1), seed=seed + first)
        prompts_written = [prompt] if count else []
        written = engine.generate(prompts_written, role="challenger", params=params)
        written = written[0].completions if written else []
        parsed = [self.question_format.parse(c.text) for c in written]
        questions = [question for question, _ in parsed]
        valid = [i for i, q in enumerate(questions) if q is not None]
        prompts = [self.solver_prompt.render(tokenizer, problem=questions[i]) for i in valid]
        before = sum(gather_objects(len(valid))[:rank])  # valid questions of lower ranks
        params = replace(self.solver_sampling, n=self.votes, seed=seed + 1 + before * self.votes)
        generations = engine.generate(prompts, role="solver", params=params)
        rule = self.answer_rule
        answers = [[extract_final(c.text, rule) for c in g.completions] for g in generations]
        votes = dict(zip(valid, majority_votes(answers, timeout=self.timeout), strict=True))
        answers_of = dict(zip(valid, answers, strict=True))
        records = []
        for i, question in enumerate(questions):
            vote = votes.get(i)
            label, share = (vote.label, vote.share) if vote else (None, 0.0)
            reason = drop_reason(question, label, share, self.band, self.filters)
            record = {
                "id": offset + first + i,
                "question": question,
                "votes": answers_of.get(i, []),
                "label": label,
                "share": share,
                "kept": reason == "kept",
                "reason": reason,
            }
            if question is None:
                record["completion"] = written[i].text
                record["malformed"] = parsed[i][1]
            if self.truth is not None and question is not None and label is not None:
                record["label_correct"] = self.truth.check(question, label)
            records.append(record)
        return records

    # ---- serving ------------------------------------------------------------------------

    def pool(self) -> list[dict]:
        if self._pool is None:
            if self.folder is None:
                raise RuntimeError("CurriculumDataModule.build() must run before serving questions")
            path = os.path.join(self.folder, "curriculum.jsonl")
            self._pool = list(read_jsonl(path, ("problem", "answer")))
        return self._pool

    def state_dict(self) -> dict[str, Any]:
        return {"folder": self.folder}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.folder, self._pool = state.get("folder"), None
