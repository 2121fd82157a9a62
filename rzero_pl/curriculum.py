"""The curriculum: N challenger questions, labelled by the solver's majority vote, filtered.

Each iteration ``Curriculum.build`` asks the challenger for N candidate questions, has the
solver vote m times on each (``MajorityVote``: the winning answer is the pseudo-label, its
share p̂), and keeps the questions whose share lies in the band (``drop_reason`` says why
one is not kept). Every candidate goes to ``questions.jsonl`` (with its votes, label, share
and reason) and the kept ones to ``curriculum.jsonl``; ``curriculum.json`` holds the
``CurriculumReport``. All three are written atomically, and a folder that already holds a
finished curriculum is reused. ``rzero_pl.datamodules.CurriculumDataModule`` serves
``curriculum.jsonl`` to the solver.
"""

from __future__ import annotations

import copy
import os
import random
import time
import warnings
from collections.abc import Sequence
from dataclasses import MISSING, dataclass, fields, replace
from typing import Any

from rzero_pl.engines.base import SamplingParams
from rzero_pl.errors import MAX_ITEMS, MAX_ITERATIONS, check_number
from rzero_pl.grading.answers import matches_many
from rzero_pl.ground.io import read_json, read_jsonl, write_json_atomic, write_jsonl_atomic
from rzero_pl.ground.seeds import derive
from rzero_pl.label_filters import LabelFilter, TextFilters
from rzero_pl.progress import Progress
from rzero_pl.prompts import RolePrompt
from rzero_pl.questions import QuestionSource, Truth
from rzero_pl.rewards import MajorityVote, QuestionFormat, RoleSampling, bleu_distance_matrix
from rzero_pl.scale import distributed
from rzero_pl.scale.distributed import (
    barrier,
    gather_lists,
    gather_objects,
    is_rank_zero,
    on_rank_zero,
)
from rzero_pl.vocab_dropout import VocabularyDropout


def drop_reason(
    question: str | None,
    label: str | None,
    share: float,
    band: tuple[float, float],
    rules: TextFilters | None,
) -> str:
    """Why a candidate is dropped, or ``kept``: the curriculum's filter as one pure rule
    (``rules``: the text filters; None for none)."""
    if question is None:
        return "malformed"
    if rules and rules.asks_for_proof(question):
        return "asks_for_proof"
    if rules and rules.mentions_box(question):
        return "mentions_box"
    if label is None:
        return "no_answer"
    if rules and rules.has_text(label):
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

    @classmethod
    def from_record(cls, record: Any, folder: str) -> CurriculumReport:
        """The report ``folder/curriculum.json`` holds; a record that is not one (a key
        missing or unknown) is one line naming the file."""
        path = os.path.join(folder, "curriculum.json")
        known = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING}
        keys = set(record) if isinstance(record, dict) else set()
        unknown, missing = sorted(keys - known), sorted(required - keys)
        if unknown or missing:
            problem = f"unknown key {unknown[0]!r}" if unknown else f"missing {missing[0]!r}"
            raise ValueError(
                f"{path}: not a curriculum report ({problem}); restore it, or delete its "
                "phase's entry (and every later one) from state.json to redo them"
            )
        return cls(**record)

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


DEFAULT_TEXT_FILTERS = TextFilters()  # rzero-pl's rules (frozen: one shared default)
UNBOUND = (
    "Curriculum is not bound to a challenger: use curriculum.bound_to(ChallengerWriting(...)) "
    "(the evolution binds its curriculum itself)"
)


@dataclass(frozen=True)
class ChallengerWriting:
    """How the challenger is asked for a question, how its candidates are masked (vocabulary
    dropout) and how they are read, and its budget (its ``sampling.max_new_tokens``; None: not
    known): what the curriculum needs from the challenger module, handed over by
    ``Curriculum.bound_to``."""

    prompt: RolePrompt
    question_format: QuestionFormat
    vocab_dropout: VocabularyDropout | None = None
    max_new_tokens: int | None = None


class Curriculum:
    """Write N questions, vote m times on each, keep the band (one ``build`` per iteration).

    The challenger's prompt, question format, vocabulary dropout and budget are the challenger
    module's (a ``ChallengerWriting``, handed over by ``bound_to``),
    the vote's settings the evolution's ``MajorityVote`` (``evolution.label_vote``, else
    ``evolution.vote``): neither is configured here.

    Args:
        candidates: N, questions the challenger writes per round (reference: 8000).
        min_kept: Fewest kept questions wanted; below it more rounds are generated.
        max_rounds: Most rounds of N candidates per build.
        challenger_sampling: Question sampling (reference: T 1.0, top-p 0.95);
            ``max_new_tokens`` null (the default): the challenger's budget (its
            ``sampling.max_new_tokens``, handed over by ``bound_to``).
        truth: Exact answers, when the task has them (the toy world): label accuracy.
        labelled: Labelled questions served with the kept ones in every iteration (counted
            in ``kept``; ``labelled`` in the report): e.g. a JSONL of real problems, so that a
            model that writes no valid question still meets real data in its solver phase.
        seed: Seed of the candidates' sampling (with the iteration).
        text_filters: Drop proof questions, questions mentioning a box, labels with
            ``\\text`` (``TextFilters``: rzero-pl's rules by default; ``{proof: release,
            text_label: release}`` for the released code's); null: none of them.
        label_filters: Rules beyond the band that drop doubtful labels
            (``rzero_pl.label_filters``: ``MarginRule``, ``GreedyAgreement``); none by default.
        revote: Share of N: that many questions kept by earlier iterations' curricula (a
            seeded sample) are voted on again by the current solver, labelled by its
            majority and kept by the same band and filters (R-Diverse's replay, relabelled;
            ``revoted`` in ``questions.jsonl``). 0: none.
    """

    def __init__(
        self,
        candidates: int = 8000,
        min_kept: int = 1,
        max_rounds: int = 3,
        challenger_sampling: RoleSampling | None = None,
        truth: Truth | None = None,
        labelled: QuestionSource | None = None,
        seed: int = 0,
        label_filters: list[LabelFilter] | None = None,
        text_filters: TextFilters | None = DEFAULT_TEXT_FILTERS,
        revote: float = 0.0,
    ) -> None:
        check_number("Curriculum.candidates", candidates, at_least=1, at_most=MAX_ITEMS)
        check_number("Curriculum.max_rounds", max_rounds, at_least=1, at_most=MAX_ITERATIONS)
        check_number("Curriculum.min_kept", min_kept, at_least=0, at_most=MAX_ITEMS)
        self.candidates = candidates
        self.min_kept = min_kept
        self.max_rounds = max_rounds
        self.settings = RoleSampling.of(challenger_sampling or RoleSampling(top_p=0.95))
        self.truth = truth
        self.labelled = labelled
        self.seed = seed
        self.label_filters = list(label_filters or [])
        check_number("Curriculum.revote", revote, at_least=0, at_most=1)
        self.text_filters = text_filters
        self.revote = revote
        self._writing: ChallengerWriting | None = None  # set on the copy ``bound_to`` returns
        self._sampling: SamplingParams | None = None  # likewise: with the budget resolved

    def bound_to(self, writing: ChallengerWriting) -> Curriculum:
        """A copy that asks for, samples and reads questions as the challenger's training
        does (its budget where ``challenger_sampling`` sets none)."""
        bound = copy.copy(self)
        bound._sampling = self.settings.with_budget(
            writing.max_new_tokens, "Curriculum.challenger_sampling"
        )
        bound._writing = writing
        return bound

    @property
    def challenger_sampling(self) -> SamplingParams:
        """How questions are sampled, with the challenger's budget where none was set."""
        if self._sampling is None:
            raise ValueError(UNBOUND)
        return self._sampling

    @property
    def writing(self) -> ChallengerWriting:
        """The challenger's writing this curriculum was bound to (one line when it was not)."""
        if self._writing is None:
            raise ValueError(UNBOUND)
        return self._writing

    def build(
        self,
        actor: Any,
        vote: MajorityVote,
        folder: str,
        seed: int = 0,
        earlier: Sequence[str] = (),
    ) -> CurriculumReport:
        """Write (or reuse) ``folder/questions.jsonl`` and ``folder/curriculum.jsonl``;
        with ``revote``, earlier curricula's kept questions (``earlier``: their folders) are
        voted on again.

        Collective: under several ranks each one writes and votes on its share of the N
        candidates, rank 0 gathers the records and writes the files, and every rank returns
        the same report once they are written.
        """
        done = on_rank_zero(lambda: finished_report(folder))
        if done is not None:
            return replace(CurriculumReport.from_record(done, folder), reused=True)
        start = time.perf_counter()
        records: list[dict] = []
        extra = self.labelled.load() if self.labelled is not None else []
        rounds = 0
        while rounds < self.max_rounds:
            # The curriculum's own seed enters too: seed 0 keeps the numbers recorded before.
            round_seed = derive(self.seed, seed) * 1009 + rounds
            records += gather_lists(self.round(actor, vote, round_seed, len(records)))[0]
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
        again = revote_sample(earlier, round(self.revote * self.candidates), seed)
        if again:
            revote_seed = derive(self.seed, seed) * 1009 + 1000  # apart from the rounds
            records += gather_lists(
                self.round(actor, vote, revote_seed, len(records), given=again)
            )[0]
        report = self._report(records, extra, rounds, vote.samples, time.perf_counter() - start)
        if is_rank_zero():
            kept_rows = [
                {"problem": r["question"], "answer": r["label"], "share": r["share"]}
                for r in records
                if r["kept"]
            ]
            kept_rows += [
                {"problem": q["problem"], "answer": q["answer"], "share": None} for q in extra
            ]
            write_jsonl_atomic(os.path.join(folder, "questions.jsonl"), records)
            write_jsonl_atomic(os.path.join(folder, "curriculum.jsonl"), kept_rows)
            write_json_atomic(os.path.join(folder, "curriculum.json"), report.__dict__)
        barrier()  # the other ranks serve from the files rank 0 wrote
        return report

    @staticmethod
    def _report(
        records: list[dict], extra: list[dict], rounds: int, votes: int, seconds: float
    ) -> CurriculumReport:
        judged = [r["label_correct"] for r in records if r.get("label_correct") is not None]
        judged_kept = [
            r["label_correct"] for r in records if r["kept"] and r.get("label_correct") is not None
        ]
        return CurriculumReport(
            candidates=len(records),
            valid=sum(r["question"] is not None for r in records),
            kept=len(extra) + sum(r["kept"] for r in records),
            rounds=rounds,
            seconds=seconds,
            label_accuracy=sum(judged) / len(judged) if judged else None,
            kept_label_accuracy=sum(judged_kept) / len(judged_kept) if judged_kept else None,
            labelled=len(extra),
            **curriculum_stats(records, votes),
        )

    def round(
        self,
        actor: Any,
        vote: MajorityVote,
        seed: int,
        offset: int,
        given: Sequence[str] | None = None,
    ) -> list[dict]:
        """This rank's share of one round's N candidates: written, voted on, judged. With
        ``given``, those questions are voted on and judged instead (``revoted`` in their
        records), nothing is written."""
        rank, world = distributed.world()
        count = self.candidates if given is None else len(given)
        first, stop = distributed.shard_bounds(count, rank, world, even=False)
        if given is None:
            written = self.write_questions(actor, stop - first, seed + first, seed)
            parsed = [self.writing.question_format.parse(c.text) for c in written]
        else:
            parsed = [(q, None) for q in given[first:stop]]
        questions = [question for question, _ in parsed]
        valid = [i for i, q in enumerate(questions) if q is not None]
        before = sum(gather_objects(len(valid))[:rank])  # valid questions of lower ranks
        with Progress(len(valid), "curriculum votes", "questions", per=vote.samples):
            votes, answers = vote.vote(
                [questions[i] for i in valid], actor, seed + 1 + before * vote.samples
            )
        voted = {i: (v, a) for i, v, a in zip(valid, votes, answers, strict=True)}
        reasons = {
            i: drop_reason(questions[i], v.label, v.share, vote.band, self.text_filters)
            for i, (v, _) in voted.items()
        }
        agrees = self.greedy_agreement(actor, vote, questions, voted, reasons)
        records = []
        for i, question in enumerate(questions):
            v, answers_i = voted.get(i, (None, []))
            label, share = (v.label, v.share) if v else (None, 0.0)
            reason = reasons.get(i) or drop_reason(
                question, label, share, vote.band, self.text_filters
            )
            if reason == "kept":
                refused = [f for f in self.label_filters if not f.keeps(v, agrees.get(i))]
                reason = refused[0].reason if refused else reason
            record = {
                "id": offset + first + i,
                "question": question,
                "votes": answers_i,
                "label": label,
                "share": share,
                "kept": reason == "kept",
                "reason": reason,
            }
            if i in agrees:
                record["greedy_agrees"] = agrees[i]
            if given is not None:
                record["revoted"] = True
            if question is None:
                record["completion"] = written[i].text
                record["malformed"] = parsed[i][1]
            if self.truth is not None and question is not None and label is not None:
                record["label_correct"] = self.truth.check(question, label)
            records.append(record)
        return records

    def greedy_agreement(
        self, actor: Any, vote: MajorityVote, questions: list, voted: dict, reasons: dict
    ) -> dict[int, bool]:
        """Whether the solver's greedy answer matches the label, for the candidates the
        band keeps, when a filter asks (a collective: every rank joins the engine)."""
        if not any(f.needs_greedy for f in self.label_filters):
            return {}
        index = [i for i, reason in reasons.items() if reason == "kept"]
        greedy = vote.greedy([questions[i] for i in index], actor)
        pairs = [(voted[i][0].label, answer) for i, answer in zip(index, greedy, strict=True)]
        return dict(zip(index, matches_many(pairs, timeout=vote.timeout), strict=True))

    def write_questions(self, actor: Any, count: int, seed: int, round_seed: int) -> list[Any]:
        """``count`` challenger completions of one prompt; sample k is seeded ``seed + k``
        (a collective: a rank with no candidates still joins the engine)."""
        prompt = self.writing.prompt.render(actor.tokenizer)
        # One mask per round: the round's seed, shared by every rank (not the shard's offset).
        dropout = self.writing.vocab_dropout
        banned = () if dropout is None else dropout.banned(actor.tokenizer, round_seed)
        params = replace(
            self.challenger_sampling, n=max(count, 1), seed=seed, banned_token_ids=banned
        )
        with Progress(count, "curriculum questions", "written"):
            written = actor.generate([prompt] if count else [], role="challenger", params=params)
        return written[0].completions if written else []


def revote_sample(folders: Sequence[str], count: int, seed: int) -> list[str]:
    """A seeded sample of at most ``count`` distinct questions kept by the curricula in
    ``folders`` (R-Diverse's replay, to be labelled by the current solver's vote)."""
    if count <= 0:
        return []
    seen: dict[str, None] = {}
    for folder in folders:
        path = os.path.join(folder, "curriculum.jsonl")
        if os.path.exists(path):
            for row in read_jsonl(path):
                if row.get("problem") and row.get("share") is not None:  # not labelled extras
                    seen.setdefault(row["problem"])
    questions = list(seen)
    return random.Random(f"revote-{seed}").sample(questions, min(count, len(questions)))


def finished_report(folder: str) -> dict | None:
    """The report of a curriculum already written whole in ``folder``, else None."""
    done = read_json(os.path.join(folder, "curriculum.json"))
    if done is not None and os.path.exists(os.path.join(folder, "curriculum.jsonl")):
        return done
    return None
