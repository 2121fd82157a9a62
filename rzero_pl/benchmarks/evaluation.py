"""Score a role on benchmarks through an engine: prompts, samples, grades, summary.

Greedy decoding gives pass@1 (one sample per problem). With ``temperature > 0`` each
problem gets ``k`` real samples (the benchmark's own ``k`` unless overridden: 32 for AMC and
AIME, as in the paper) and the score is mean@k. Every figure and every graded sample is
returned, so the caller can write ``eval.json`` and a samples JSONL.

Under ``torch.distributed`` each rank generates and grades its own shard of every benchmark
(problems ``rank, rank + W, …`` of W ranks: ``distributed.strided_indices``, for load
balance); each benchmark's figures come from a
:class:`~rzero_pl.benchmarks.BenchmarkAccuracy` that torchmetrics sums across ranks, and the
samples are gathered back into file order, so every rank returns the same result and rank 0
alone writes it. Greedy results are identical to one process; sampled ones follow the same
distribution but not the same draws (the engine seeds per batch, and batches differ).
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.distributed as dist
from lightning.pytorch.utilities import rank_zero_info

from rzero_pl.benchmarks import (
    Benchmark,
    BenchmarkAccuracy,
    BenchmarkRow,
    extract_answer,
    get_benchmark,
    grade_many,
    known_benchmarks,
    load_rows,
    role_prompt,
    score_entry,
    summarize,
)
from rzero_pl.benchmarks.general_prompt import BenchmarkPrompt, question_text
from rzero_pl.engines.base import Sampler, SamplingParams
from rzero_pl.errors import MAX_ITEMS, MAX_SAMPLES, MAX_TOKENS, check_number
from rzero_pl.grading.answers import ANSWER_TIMEOUT
from rzero_pl.grading.extraction import ANSWER_RULES, AnswerRule
from rzero_pl.ground.io import write_json_atomic, write_jsonl_atomic
from rzero_pl.ground.seeds import derive
from rzero_pl.progress import Progress
from rzero_pl.prompts import RolePrompt
from rzero_pl.rewards import SolverReading
from rzero_pl.scale.distributed import (
    gather_objects,
    is_rank_zero,
    merge_strided,
    strided_indices,
    world,
)


@dataclass
class EvaluationResult:
    """What one evaluation produced: the ``eval.json`` summary and every graded sample."""

    summary: dict[str, Any]
    samples: dict[str, list[dict]] = field(default_factory=dict)

    def accuracies(self) -> dict[str, float]:
        return {name: b["accuracy"] for name, b in self.summary["benchmarks"].items()}

    def write(self, folder: str) -> None:
        """Write ``eval.json`` and ``samples/<benchmark>.jsonl`` (atomically, file by file)."""
        for name, rows in self.samples.items():
            write_jsonl_atomic(os.path.join(folder, "samples", f"{name}.jsonl"), rows)
        write_json_atomic(os.path.join(folder, "eval.json"), self.summary)


# ----------------------------------------------------------------------------- ranks


def _metric_device() -> torch.device:
    # NCCL only moves CUDA tensors; the metric's sums must live where the collective works.
    if world()[1] > 1 and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


# ----------------------------------------------------------------------------- scoring


def _grade(
    bench: Benchmark,
    responses: list[str],
    golds: list[str],
    problems: list[int],
    n: int,
    reference_compat: bool,
    seed: int,
    rule: AnswerRule = "boxed",
    timeout: float = ANSWER_TIMEOUT,
) -> list[bool]:
    if not (reference_compat and bench.kind == "multiple_choice"):
        return grade_many(bench, responses, golds, timeout, rule=rule)
    # The reference's random guesses, seeded per problem: the same on any number of ranks.
    return [
        ok
        for j, problem in enumerate(problems)
        for ok in grade_many(
            bench,
            responses[j * n : (j + 1) * n],
            golds[j * n : (j + 1) * n],
            reference_compat=True,
            seed=derive(seed, problem),
        )
    ]


def score_problems(
    sampler: Sampler,
    tokenizer: Any,
    bench: Benchmark,
    rows: Sequence[BenchmarkRow],
    problems: list[int],
    *,
    role: str,
    params: SamplingParams,
    template: RolePrompt,
    reference_compat: bool = False,
    seed: int = 0,
    rule: AnswerRule = "boxed",
    report_rules: bool = False,
    timeout: float = ANSWER_TIMEOUT,
) -> list[list[dict]]:
    """Generate ``params.n`` responses for each of ``rows[problems]`` and grade them.

    Returns, per problem, one samples-file record per response: ``id``, ``prompt``,
    ``response``, ``extracted`` (what the grader read under ``rule``), ``gold``, ``correct``;
    with ``report_rules`` on a math benchmark also ``correct_by_rule`` (every answer rule).
    ``timeout``: seconds per math-verify check (the solver's ``answer_timeout`` in a run).
    """
    mine = [rows[i] for i in problems]
    texts = [
        template.render(tokenizer, problem=question_text(bench, row, template)) for row in mine
    ]
    with Progress(len(problems) * params.n, f"{bench.name} scoring", "answers"):
        generations = sampler.generate(texts, role=role, params=params)  # every rank joins it
    if not problems:
        return []
    n = params.n
    responses = [c.text for g in generations for c in g.completions]
    golds = [row.answer for row in mine for _ in range(n)]
    correct = _grade(bench, responses, golds, problems, n, reference_compat, seed, rule, timeout)
    by_rule = {}
    if report_rules and bench.kind == "math":
        by_rule = {r: grade_many(bench, responses, golds, timeout, rule=r) for r in ANSWER_RULES}
    records = [
        [
            {
                "id": row.id,
                "prompt": text,
                "response": responses[j * n + s],
                "extracted": extract_answer(bench, responses[j * n + s], rule),
                "gold": row.answer,
                "correct": bool(correct[j * n + s]),
            }
            for s in range(n)
        ]
        for j, (row, text) in enumerate(zip(mine, texts, strict=True))
    ]
    for r, verdicts in by_rule.items():
        for j, problem in enumerate(records):
            for s, record in enumerate(problem):
                record.setdefault("correct_by_rule", {})[r] = bool(verdicts[j * n + s])
    return records


def evaluate(
    sampler: Sampler,
    tokenizer: Any,
    benchmarks: Sequence[str],
    *,
    role: str = "solver",
    sampling: SamplingParams | None = None,
    k: int | None = None,
    max_samples: int | None = None,
    seed: int = 0,
    root: str | None = None,
    prompt: RolePrompt | None = None,
    reference_compat: bool = False,
    answer_rules: dict[str, AnswerRule] | None = None,
    report_rules: bool = False,
    math_prompt: RolePrompt | None = None,
    general_prompts: dict[str, BenchmarkPrompt] | None = None,
    timeout: float = ANSWER_TIMEOUT,
) -> EvaluationResult:
    """Evaluate ``role`` on each benchmark; see the module docstring for k, sampling, ranks.

    ``answer_rules`` names a math benchmark's answer rule (default ``boxed``, the paper's);
    ``report_rules`` adds ``accuracy_by_rule`` (every rule) to each math benchmark's entry.
    ``prompt`` wraps every benchmark's text; else ``math_prompt`` the math benchmarks' and
    ``general_prompts`` a general benchmark's, by name (its question, options and wording).
    Every rank must call it with the same arguments (it joins collectives).
    """
    sampling = sampling or SamplingParams(temperature=0.0, max_new_tokens=4096)
    rank, world_size = world()
    entries: dict[str, Any] = {}
    samples: dict[str, list[dict]] = {}
    for name in benchmarks:
        bench = get_benchmark(name)
        rows = load_rows(bench, root=root, max_samples=max_samples, seed=seed)
        n = 1 if sampling.temperature == 0 else (k or bench.k)
        start = time.perf_counter()
        mine = score_problems(
            sampler,
            tokenizer,
            bench,
            rows,
            strided_indices(len(rows), rank, world_size),  # for load balance
            role=role,
            params=replace(sampling, n=n, seed=seed),
            template=prompt
            or (general_prompts or {}).get(name)
            or (math_prompt if bench.kind == "math" else None)
            or role_prompt(bench),
            reference_compat=reference_compat,
            seed=seed,
            rule=(answer_rules or {}).get(name, "boxed"),
            report_rules=report_rules,
            timeout=timeout,
        )
        seconds = time.perf_counter() - start
        metric = BenchmarkAccuracy().to(_metric_device())
        metric.update([[s["correct"] for s in problem] for problem in mine])
        entries[name] = score_entry(metric.compute())  # summed over ranks by torchmetrics
        gathered = gather_objects((mine, seconds))
        samples[name] = [s for problem in merge_strided([g[0] for g in gathered]) for s in problem]
        entries[name]["seconds"] = max(g[1] for g in gathered)
        if samples[name] and "correct_by_rule" in samples[name][0]:
            entries[name]["accuracy_by_rule"] = {
                r: sum(s["correct_by_rule"][r] for s in samples[name]) / len(samples[name])
                for r in ANSWER_RULES
            }
    return EvaluationResult(summarize(entries), samples)


def check_general_prompts(
    key: str, prompts: dict[str, RolePrompt] | None, prompt: RolePrompt | None
) -> None:
    """Refuse in one line naming ``key`` a name that is no general benchmark, a prompt with
    no ``{problem}`` slot, or any of them beside ``prompt`` (which wraps every benchmark)."""
    if prompts and prompt is not None:
        raise ValueError(
            f"{key}: prompt already wraps every benchmark; remove one of prompt and general_prompts"
        )
    for name, given in (prompts or {}).items():
        known = [n for n in known_benchmarks() if get_benchmark(n).kind != "math"]
        if name not in known:
            raise ValueError(
                f"{key}: {name!r} is not a general benchmark; use one of {sorted(known)} "
                "(the math benchmarks take math_prompt)"
            )
        given.check_problem_slot(f"{key}.{name}")


class Evaluation:
    """A benchmark suite run through the actor, logged as ``eval/<bench>/…``.

    Results go to the logger (the scalars of :func:`eval_metrics`, computed by torchmetrics)
    and to ``eval.json`` with a samples JSONL per benchmark. The evolution calls ``run`` on
    the base solver and after every solver phase; the ``BenchmarkEvaluation`` callback calls
    it around a single fit. Every rank must call ``run``; rank 0 alone logs and writes.

    Args:
        benchmarks: Registered benchmark names (``rzero_pl.benchmarks.known_benchmarks()``).
        max_samples: Score a fixed-seed subset of this many problems per benchmark.
        seed: Seed of that subset and of sampling.
        root: Folder of the local benchmark files (default: ``$RZERO_PL_BENCHMARKS``, else
            ``../shared/benchmarks``; see ``rzero_pl.benchmarks.registry``).
        temperature: 0 for greedy pass@1; above 0 for mean@k with real samples.
        top_p: Nucleus sampling when ``temperature > 0``.
        max_new_tokens: Longest response; null (the default): the solver's (its
            ``sampling.max_new_tokens``), handed over by ``bound_to`` (the evolution, ``rzero-pl
            test`` and the ``BenchmarkEvaluation`` callback bind it to the run's solver).
        k: Samples per problem when sampling (default: the benchmark's own k).
        prompt: Prompt override for every benchmark (e.g. the toy world's short prompt).
        math_prompt: Prompt override for the math benchmarks only (the general ones keep
            theirs: one user message, as released), e.g. the released evaluation prompt
            (``rzero_pl.released.ReleasedPrompt``); not with ``prompt``.
        general_prompts: A general benchmark's whole prompt by name (``supergpqa``,
            ``mmlu_pro``, ``bbeh``): its wording and option layout
            (``rzero_pl.benchmarks.general_prompt.BenchmarkPrompt``), e.g. the released
            evaluation scripts' (``rzero_pl.released.ReleasedBenchmarkPrompt``); not with
            ``prompt``. A name left out keeps rzero-pl's.
        baseline: Also evaluate before the first update.
        output_dir: Where results go (default: the logger's folder, else the working folder),
            under ``eval/<tag>``.
        role: The role to evaluate.
        reference_compat: Read multiple-choice letters the reference's way, guessing a random
            letter when none is found (for comparison with published numbers only).
        answer_rules: A math benchmark's answer rule by name (``rzero_pl.grading.extraction``):
            ``boxed`` (the default and the paper's: the last ``\\boxed{}``) or ``flexible``
            (a box, else ``#### X``, an answer phrase, the last number).
        report_rules: Also score every math benchmark under every answer rule
            (``accuracy_by_rule`` in ``eval.json``, like lm-evaluation-harness's strict-match
            and flexible-extract).
    """

    def __init__(
        self,
        benchmarks: list[str],
        max_samples: int | None = None,
        seed: int = 0,
        root: str | None = None,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_new_tokens: int | None = None,
        k: int | None = None,
        prompt: RolePrompt | None = None,
        baseline: bool = True,
        output_dir: str | None = None,
        role: str = "solver",
        reference_compat: bool = False,
        answer_rules: dict[str, AnswerRule] | None = None,
        report_rules: bool = False,
        math_prompt: RolePrompt | None = None,
        general_prompts: dict[str, BenchmarkPrompt] | None = None,
    ) -> None:
        name = type(self).__name__
        check_number(
            f"{name}.max_samples", max_samples, at_least=1, at_most=MAX_ITEMS, optional=True
        )
        check_number(f"{name}.k", k, at_least=1, at_most=MAX_SAMPLES, optional=True)
        check_number(
            f"{name}.max_new_tokens", max_new_tokens, at_least=1, at_most=MAX_TOKENS, optional=True
        )
        check_number(f"{name}.temperature", temperature, at_least=0)
        check_number(f"{name}.top_p", top_p, above=0, at_most=1)
        for name in benchmarks:
            bench = get_benchmark(name)  # an unknown name fails now, listing the known ones
            if root is not None and bench.rows is None and not bench.local_path(root).is_file():
                # A root given on purpose never falls back to the Hub (33 s, then a Hub error).
                raise FileNotFoundError(
                    f"{type(self).__name__}.root: no file {bench.local_path(root)} for "
                    f"benchmark {name!r}; put it there, or unset root to look elsewhere"
                )
        if prompt is not None and math_prompt is not None:
            raise ValueError(
                f"{type(self).__name__}.math_prompt: prompt already wraps every benchmark; "
                "remove one of prompt and math_prompt"
            )
        for key, given in (("prompt", prompt), ("math_prompt", math_prompt)):
            if given is not None:
                given.check_problem_slot(f"{type(self).__name__}.{key}")
        check_general_prompts(f"{type(self).__name__}.general_prompts", general_prompts, prompt)
        for name, rule in (answer_rules or {}).items():
            if name not in benchmarks or rule not in ANSWER_RULES:
                raise ValueError(
                    f"{type(self).__name__}.answer_rules: {name!r}: {rule!r} must name one of "
                    f"the benchmarks and one of {ANSWER_RULES}"
                )
        self.benchmarks = list(benchmarks)
        self.max_samples = max_samples
        self.seed = seed
        self.root = root
        self.temperature = temperature
        self.top_p = top_p
        self.max_new_tokens = max_new_tokens
        self.k = k
        self.prompt = prompt
        self.baseline = baseline
        self.output_dir = output_dir
        self.role = role
        self.reference_compat = reference_compat
        self.answer_rules = dict(answer_rules or {})
        self.report_rules = report_rules
        self.math_prompt = math_prompt
        self.general_prompts = dict(general_prompts or {})
        self._reading: SolverReading | None = None  # set on the copy ``bound_to`` returns

    def bound_to(self, reading: SolverReading) -> Evaluation:
        """A copy that samples with the solver's budget (unless ``max_new_tokens`` is set)
        and grades with its timeout: the run's one grading timeout."""
        bound = copy.copy(self)
        bound._reading = reading
        return bound

    @property
    def sampling(self) -> SamplingParams:
        """How responses are sampled (``n`` and ``seed`` are set per benchmark)."""
        budget = self.max_new_tokens
        if budget is None and self._reading is not None:
            budget = self._reading.max_new_tokens
        if budget is None:
            raise ValueError(
                f"{type(self).__name__}.max_new_tokens: not set, and no solver budget was "
                "handed over (bound_to); set it, e.g. 4096"
            )
        return SamplingParams(temperature=self.temperature, top_p=self.top_p, max_new_tokens=budget)

    @property
    def timeout(self) -> float:
        """Seconds per math-verify check: the bound solver's ``answer_timeout``."""
        return ANSWER_TIMEOUT if self._reading is None else self._reading.timeout

    def run(
        self, actor: Any, tag: str, step: int, logger: Any = None, folder: str | None = None
    ) -> EvaluationResult:
        """Evaluate ``actor``'s role now; log under ``eval/`` at ``step``; write ``eval.json``
        into ``folder``.

        ``folder`` defaults to ``<output_dir or the logger's folder>/eval/<tag>``.
        """
        result = evaluate(
            actor,
            actor.tokenizer,
            self.benchmarks,
            role=self.role,
            sampling=self.sampling,
            k=self.k,
            max_samples=self.max_samples,
            seed=self.seed,
            root=self.root,
            prompt=self.prompt,
            reference_compat=self.reference_compat,
            answer_rules=self.answer_rules,
            report_rules=self.report_rules,
            math_prompt=self.math_prompt,
            general_prompts=self.general_prompts,
            timeout=self.timeout,
        )
        if not is_rank_zero():  # also a rank launched before any process group exists
            return result
        if logger is not None:
            logger.log_metrics(eval_metrics(result.summary), step=step)
            logger.save()  # to disk now: `rzero-pl test` exits right after, a daemon thread writes
        if folder is None:
            root = self.output_dir or getattr(logger, "log_dir", None) or "."
            folder = os.path.join(root, "eval", tag)
        result.write(folder)
        line = ", ".join(f"{n} {a:.1%}" for n, a in result.accuracies().items())
        rank_zero_info(f"[eval:{tag}] {line}")
        return result


def eval_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """Flatten an ``eval.json`` summary into ``eval/…`` scalars.

    ``eval/<bench>/accuracy``, ``eval/<bench>/ci95_low``, ``eval/<bench>/ci95_high``, and
    ``eval/math_average``, ``eval/overall_average`` when any of their parts was scored.
    """
    metrics: dict[str, float] = {}
    for name, entry in summary["benchmarks"].items():
        metrics[f"eval/{name}/accuracy"] = entry["accuracy"]
        metrics[f"eval/{name}/ci95_low"], metrics[f"eval/{name}/ci95_high"] = entry["ci95"]
    for key in ("math_average", "overall_average"):
        if summary.get(key, {}).get("accuracy") is not None:
            metrics[f"eval/{key}"] = summary[key]["accuracy"]
    return metrics
