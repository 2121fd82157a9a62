"""Benchmark evaluation without a model: the suite, its rows and prompts, graders, scores.

* :mod:`~rzero_pl.benchmarks.registry`: :class:`Benchmark`, the registry of the R-Zero suite,
  :func:`benchmark_prompt`, :func:`role_prompt`.
* :mod:`~rzero_pl.benchmarks.graders`: one pure grader per kind, :func:`grade_many`.
* :mod:`~rzero_pl.benchmarks.hub`: :func:`load_rows` (the local JSONL, else the Hub) and
  :func:`rows_from_table`, the Hub column mapping.
* :mod:`~rzero_pl.benchmarks.evaluation`: :class:`Evaluation`, a suite run through the actor.
* :mod:`~rzero_pl.benchmarks.metrics`: :func:`score` (accuracy, 95 % interval) and
  :func:`summarize` (the ``eval.json`` structure with the paper's averages).
* :mod:`~rzero_pl.benchmarks.accuracy`: :class:`BenchmarkAccuracy`, the same figures as a
  torchmetrics ``Metric`` that sums across ranks.

A runner loads rows, renders ``role_prompt(b).render(tokenizer, benchmark_prompt(b, row))``,
samples ``b.k`` responses per row, calls :func:`grade_many` with each row's gold repeated k
times, regroups the verdicts per row and passes them to :func:`summarize`.
"""

from rzero_pl.benchmarks.accuracy import BenchmarkAccuracy, score_entry
from rzero_pl.benchmarks.graders import (
    bbeh_fuzzy_match,
    bbeh_preprocess_reference,
    bbeh_preprocess_sample,
    extract_answer,
    extract_choice,
    extract_choice_reference,
    grade,
    grade_bbeh,
    grade_many,
    grade_math,
    grade_multiple_choice,
)
from rzero_pl.benchmarks.hub import load_rows, rows_from_table
from rzero_pl.benchmarks.metrics import (
    accuracy_interval,
    mean_interval,
    mean_interval_from_sums,
    score,
    summarize,
    wilson_interval,
)
from rzero_pl.benchmarks.registry import (
    BBEH_INSTRUCTION,
    ENV_ROOT,
    GENERAL_BENCHMARKS,
    MATH_BENCHMARKS,
    MULTIPLE_CHOICE_INSTRUCTION,
    Benchmark,
    BenchmarkRow,
    HubSource,
    UnknownBenchmarkError,
    benchmark_prompt,
    benchmark_root,
    get_benchmark,
    known_benchmarks,
    read_benchmark_jsonl,
    register_benchmark,
    role_prompt,
)

__all__ = [
    "BBEH_INSTRUCTION",
    "ENV_ROOT",
    "GENERAL_BENCHMARKS",
    "MATH_BENCHMARKS",
    "MULTIPLE_CHOICE_INSTRUCTION",
    "Benchmark",
    "BenchmarkAccuracy",
    "BenchmarkRow",
    "HubSource",
    "UnknownBenchmarkError",
    "accuracy_interval",
    "bbeh_fuzzy_match",
    "bbeh_preprocess_reference",
    "bbeh_preprocess_sample",
    "benchmark_prompt",
    "benchmark_root",
    "extract_answer",
    "extract_choice",
    "extract_choice_reference",
    "get_benchmark",
    "grade",
    "grade_bbeh",
    "grade_many",
    "grade_math",
    "grade_multiple_choice",
    "known_benchmarks",
    "load_rows",
    "mean_interval",
    "mean_interval_from_sums",
    "read_benchmark_jsonl",
    "register_benchmark",
    "role_prompt",
    "rows_from_table",
    "score",
    "score_entry",
    "summarize",
    "wilson_interval",
]
