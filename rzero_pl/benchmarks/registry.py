"""The R-Zero benchmark suite: what each benchmark is, where its rows come from, its prompt.

Every benchmark is read into :class:`BenchmarkRow` objects in one uniform schema
(``id, problem, answer, options, extra``), from a local JSONL file or from the Hugging Face
Hub id the released evaluation uses (``evaluation/datasets_loader.py``).

Local files are looked up at ``<root>/<local_dir>/<local_file>`` (by default
``<root>/<name>/test.jsonl``), where the root is, in this order:

1. the ``root`` argument;
2. the environment variable ``RZERO_PL_BENCHMARKS``;
3. ``../shared/benchmarks`` beside the repository (``<repo>/../shared/benchmarks``);
4. ``../shared/benchmarks`` relative to the working directory.

The first that exists is used. Without a local file, ``source="auto"`` falls back to the Hub
(``pip install datasets``); tests never touch the Hub.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rzero_pl.ground.io import iter_jsonl
from rzero_pl.prompts import RolePrompt, solver_prompt
from rzero_pl.toy.benchmark import toy_benchmark
from rzero_pl.toy.prompts import TOY_SOLVER

Kind = Literal["math", "multiple_choice", "bbeh"]
KINDS: tuple[str, ...] = ("math", "multiple_choice", "bbeh")
LETTERS = "ABCDEFGHIJ"
ENV_ROOT = "RZERO_PL_BENCHMARKS"
OPTIONS_HEADER = "\n\nOptions:\n"

# The paper's two averages (Table 1: math average, and overall = mean of four).
MATH_BENCHMARKS: tuple[str, ...] = (
    "gsm8k",
    "math500",
    "amc23",
    "minerva_math",
    "olympiadbench",
    "aime2024",
    "aime2025",
)
GENERAL_BENCHMARKS: tuple[str, ...] = ("supergpqa", "mmlu_pro", "bbeh")

# Our own words. The reference asks for "the final answer option within \boxed{}"
# (Chengsong-Huang/R-Zero at commit 5699329: evaluation/eval_supergpqa.py, eval_mmlupro.py).
MULTIPLE_CHOICE_INSTRUCTION = (
    "Think it through step by step. Exactly one option is correct. Finish with the letter of "
    "that option inside \\boxed{}, and put nothing but the letter in the box."
)
BBEH_INSTRUCTION = "Think it through step by step, then give your final answer inside \\boxed{}."


@dataclass(frozen=True)
class HubSource:
    """Where the reference loads a benchmark from the Hub, and how its columns map.

    Args:
        path: Dataset id, e.g. ``openai/gsm8k``.
        config: Dataset config name, if any.
        split: Split the reference evaluates on.
        problem: Column holding the question.
        answer: Column holding the gold answer.
        options: Column holding the list of options (multiple choice only).
        id: Column holding a row id; the row index when ``None``.
        answer_fn: Turns the raw answer cell into the gold string (default ``str(...).strip()``).
    """

    path: str
    config: str | None = None
    split: str = "test"
    problem: str = "problem"
    answer: str = "answer"
    options: str | None = None
    id: str | None = None
    answer_fn: Callable[[Any], str] | None = None


@dataclass(frozen=True)
class Benchmark:
    """One evaluation set.

    Args:
        name: Registry name; also the local folder unless ``local_dir`` is set.
        kind: Selects prompt and grader: ``math``, ``multiple_choice`` or ``bbeh``.
        k: Samples per problem for mean@k (32 for AMC/AIME, as in the paper; 1 elsewhere).
        hub: The Hub source, or ``None`` for local-only benchmarks.
        local_dir: Folder under the benchmark root (default: ``name``).
        local_file: File in that folder.
        rows: A function that makes the rows (a generated set such as the toy world's);
            when given, no file or Hub is read.
        prompt: The role prompt for this benchmark, replacing the kind's default.
    """

    name: str
    kind: Kind
    k: int = 1
    hub: HubSource | None = None
    local_dir: str | None = None
    local_file: str = "test.jsonl"
    rows: Callable[[], list[BenchmarkRow]] | None = None
    prompt: RolePrompt | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"benchmark {self.name!r}: kind must be one of {KINDS}, not {self.kind!r}"
            )
        if self.k < 1:
            raise ValueError(f"benchmark {self.name!r}: k must be >= 1, not {self.k}")

    def local_path(self, root: str | os.PathLike[str]) -> Path:
        return Path(root) / (self.local_dir or self.name) / self.local_file


@dataclass(frozen=True)
class BenchmarkRow:
    """One problem in the uniform schema (see shared/benchmarks/README.md)."""

    id: str
    problem: str
    answer: str
    options: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _integer_text(value: Any) -> str:
    """``27.0`` → ``27``, ``"025"`` → ``25``; anything else as stripped text."""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if math.isfinite(number) and number.is_integer() else text


def _gsm8k_answer(value: Any) -> str:
    # The reference splits on "#### "; the local file also drops thousands commas.
    return str(value).split("####")[-1].strip().replace(",", "")


def _olympiad_answer(value: Any) -> str:
    first = value[0] if isinstance(value, list | tuple) else value
    return re.sub(r"(?<!\\)\$", "", str(first)).strip()


def _toy_rows() -> list[BenchmarkRow]:
    """The toy world's 500 held-out problems with exact integer answers."""
    return [
        BenchmarkRow(r["id"], r["problem"], r["answer"], extra=r["extra"]) for r in toy_benchmark()
    ]


_REGISTRY: dict[str, Benchmark] = {}


class UnknownBenchmarkError(KeyError, ValueError):
    """No benchmark of that name is registered; the message lists the known names."""

    def __str__(self) -> str:
        return str(self.args[0])


def register_benchmark(benchmark: Benchmark, overwrite: bool = False) -> Benchmark:
    """Add a benchmark of your own so that :func:`get_benchmark` finds it by name."""
    if benchmark.name in _REGISTRY and not overwrite:
        raise ValueError(f"benchmark {benchmark.name!r} is already registered (overwrite=True)")
    _REGISTRY[benchmark.name] = benchmark
    return benchmark


def known_benchmarks() -> list[str]:
    return list(_REGISTRY)


def get_benchmark(name: str | Benchmark) -> Benchmark:
    """The registered benchmark of that name (a :class:`Benchmark` is passed through)."""
    if isinstance(name, Benchmark):
        return name
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownBenchmarkError(
            f"unknown benchmark {name!r}; known: {', '.join(sorted(known_benchmarks()))}"
        ) from None


for _b in (
    Benchmark(
        "gsm8k",
        "math",
        hub=HubSource("openai/gsm8k", "main", "test", "question", answer_fn=_gsm8k_answer),
    ),
    # The reference reads the simple-evals MATH-500 CSV; this is the same 500 problems.
    Benchmark("math500", "math", hub=HubSource("HuggingFaceH4/MATH-500", id="unique_id")),
    Benchmark(
        "amc23",
        "math",
        k=32,
        hub=HubSource("zwhe99/amc23", problem="question", answer_fn=_integer_text),
    ),
    Benchmark("minerva_math", "math", hub=HubSource("zwhe99/simplerl-minerva-math")),
    Benchmark(
        "olympiadbench",
        "math",
        hub=HubSource(
            "zwhe99/simplerl-OlympiadBench",
            problem="question",
            answer="final_answer",
            answer_fn=_olympiad_answer,
        ),
    ),
    Benchmark(
        "aime2024",
        "math",
        k=32,
        hub=HubSource("HuggingFaceH4/aime_2024", split="train", id="id", answer_fn=_integer_text),
    ),
    Benchmark(
        "aime2025",
        "math",
        k=32,
        hub=HubSource("yentinglin/aime_2025", "default", "train", answer_fn=_integer_text),
    ),
    Benchmark(
        "mmlu_pro",
        "multiple_choice",
        hub=HubSource(
            "TIGER-Lab/MMLU-Pro",
            split="test",
            problem="question",
            options="options",
            id="question_id",
        ),
    ),
    # The local test.jsonl is a 300-question random sample; the Hub split has all 26,529.
    Benchmark(
        "supergpqa",
        "multiple_choice",
        hub=HubSource(
            "m-a-p/SuperGPQA",
            split="train",
            problem="question",
            answer="answer_letter",
            options="options",
            id="uuid",
        ),
    ),
    # Local only: 8489 Physics/Chemistry/Biology/Medicine rows, not a random sample; never
    # counted in the averages (see shared/benchmarks/README.md).
    Benchmark(
        "supergpqa_science_medicine",
        "multiple_choice",
        local_dir="supergpqa",
        local_file="subset_science_medicine.jsonl",
    ),
    Benchmark(
        "bbeh", "bbeh", hub=HubSource("MrLight/bbeh-eval", split="train", problem="question")
    ),
    # The toy world's held-out problems (rzero_pl.toy.benchmark), generated, with its prompt.
    Benchmark("toy", "math", rows=_toy_rows, prompt=TOY_SOLVER),
):
    register_benchmark(_b)


def benchmark_root(root: str | os.PathLike[str] | None = None) -> Path | None:
    """The folder of local benchmark files, by the lookup in the module docstring, or ``None``."""
    if root is not None:
        return Path(root)
    if os.environ.get(ENV_ROOT):
        return Path(os.environ[ENV_ROOT])
    for candidate in (
        Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks",
        Path.cwd().parent / "shared" / "benchmarks",
    ):
        if candidate.is_dir():
            return candidate
    return None


def with_options(problem: str, options: list[str] | None) -> str:
    """The question followed by its lettered options, in the local files' layout."""
    if not options or OPTIONS_HEADER in problem:
        return problem
    lines = "\n".join(f"{LETTERS[i]}. {option}" for i, option in enumerate(options))
    return problem.rstrip() + OPTIONS_HEADER + lines


def check_row(benchmark: Benchmark, record: dict, where: str, index: int) -> BenchmarkRow:
    """A uniform-schema row from a parsed JSON object; ``ValueError`` naming ``where`` if bad."""
    problem, answer = record.get("problem"), record.get("answer")
    if not isinstance(problem, str) or not problem.strip():
        raise ValueError(f"{where}: missing or empty 'problem' (a non-empty string is required)")
    if isinstance(answer, int | float) and not isinstance(answer, bool):
        answer = _integer_text(answer)
    if not isinstance(answer, str) or not answer.strip():
        raise ValueError(f"{where}: missing or empty 'answer' (a non-empty string is required)")
    options = record.get("options")
    if options is not None and (
        not isinstance(options, list) or not all(isinstance(o, str) for o in options)
    ):
        raise ValueError(f"{where}: 'options' must be a list of strings")
    if options is not None and len(options) > len(LETTERS):
        raise ValueError(f"{where}: {len(options)} options; at most {len(LETTERS)} (A-J)")
    if benchmark.kind == "multiple_choice":
        answer = answer.strip()
        limit = len(options) if options else len(LETTERS)
        if len(answer) != 1 or answer not in LETTERS[:limit]:
            raise ValueError(
                f"{where}: multiple-choice 'answer' must be one letter A-{LETTERS[limit - 1]}, got {answer!r}"
            )
    extra = record.get("extra") or {}
    if not isinstance(extra, dict):
        raise ValueError(f"{where}: 'extra' must be a JSON object")
    row_id = record.get("id")
    row_id = f"{benchmark.name}-{index}" if row_id is None else str(row_id)
    return BenchmarkRow(row_id, problem, answer, options, extra)


def read_benchmark_jsonl(benchmark: Benchmark, path: str | os.PathLike[str]) -> list[BenchmarkRow]:
    """All rows of a uniform-schema JSONL file (read by ``rzero_pl.ground.io``), typed and checked.

    Raises:
        ValueError: naming ``file:line`` for bad JSON or a missing/invalid field.
    """
    rows: list[BenchmarkRow] = []
    for where, record in iter_jsonl(path):
        rows.append(check_row(benchmark, record, where, len(rows)))
    if not rows:  # an empty benchmark would enter the averages as a 0
        raise ValueError(f"{path}: empty benchmark file (no problems)")
    return rows


def benchmark_prompt(benchmark: str | Benchmark, row: BenchmarkRow) -> str:
    """The user text for one row; render it with :func:`role_prompt` of the same benchmark.

    Math: the problem alone (the solver's system prompt asks for ``\\boxed{}``). Multiple
    choice: the question with its lettered options and the instruction to box only the letter.
    BBEH: the question (options, if any, are already in it) and the instruction to box the answer.
    """
    bench = get_benchmark(benchmark)
    if bench.kind == "math":
        return row.problem
    if bench.kind == "multiple_choice":
        return with_options(row.problem, row.options) + "\n\n" + MULTIPLE_CHOICE_INSTRUCTION
    return row.problem.rstrip() + "\n\n" + BBEH_INSTRUCTION


def role_prompt(benchmark: str | Benchmark) -> RolePrompt:
    """The chat wrapper for a benchmark's user text.

    Math uses the solver prompt (system: reason step by step, answer in ``\\boxed{}``), as the
    reference does. The general benchmarks are one user message with no system prompt, as in
    the released ``evaluation/eval_supergpqa.py``, ``eval_mmlupro.py`` and ``eval_bbeh.py``
    (Chengsong-Huang/R-Zero at commit ``5699329``).
    """
    bench = get_benchmark(benchmark)
    if bench.prompt is not None:
        return bench.prompt
    if bench.kind == "math":
        return solver_prompt()
    return RolePrompt(system="", user="{problem}")
