"""Where a benchmark's rows come from: its local JSONL file, else a Hugging Face Hub dataset.

:func:`load_rows` picks the source (the registry knows the benchmarks; this module, which
imports it, loads them: no import circle). :func:`rows_from_table` is a :class:`HubSource`
column mapping alone (any iterable of dict-like rows, e.g. a ``datasets.Dataset``);
:func:`hub_rows` downloads the split with ``datasets.load_dataset`` (the optional ``hub``
extra: ``pip install rzero-pl[hub]``) and maps it.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from rzero_pl.benchmarks.registry import (
    ENV_ROOT,
    Benchmark,
    BenchmarkRow,
    HubSource,
    benchmark_root,
    check_row,
    get_benchmark,
    read_benchmark_jsonl,
    with_options,
)


def _is_json_value(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | list | dict) or value is None


def _column(source: Mapping[str, Any], column: str, where: str) -> Any:
    try:
        return source[column]
    except KeyError:
        raise ValueError(
            f"{where}: no column {column!r} (columns: {', '.join(map(str, source))})"
        ) from None


def rows_from_table(
    benchmark: Benchmark, table: Iterable[Mapping[str, Any]], hub: HubSource | None = None
) -> list[BenchmarkRow]:
    """Map a table's rows into the uniform schema with the benchmark's :class:`HubSource`.

    ``id`` from ``hub.id`` (``<name>-<index>`` without one); ``problem`` from ``hub.problem``,
    followed by its lettered options when ``hub.options`` is set; ``answer`` through
    ``hub.answer_fn`` (default: stripped text); every other JSON-able column goes to ``extra``.

    Raises:
        ValueError: naming ``<dataset>[<split>][<index>]`` for a missing column or a bad row.
    """
    hub = hub or benchmark.hub
    if hub is None:
        raise ValueError(f"benchmark {benchmark.name!r} has no Hub source")
    rows = []
    for index, source in enumerate(table):
        where = f"{hub.path}[{hub.split}][{index}]"
        options = list(_column(source, hub.options, where)) if hub.options else None
        raw = _column(source, hub.answer, where)
        record = {
            "id": str(_column(source, hub.id, where)) if hub.id else f"{benchmark.name}-{index}",
            "problem": with_options(str(_column(source, hub.problem, where)), options),
            "answer": hub.answer_fn(raw) if hub.answer_fn else str(raw).strip(),
            "options": options,
            "extra": {
                key: value
                for key, value in source.items()
                if key not in (hub.problem, hub.options) and _is_json_value(value)
            },
        }
        rows.append(check_row(benchmark, record, where, index))
    return rows


def hub_rows(benchmark: Benchmark) -> list[BenchmarkRow]:
    """Download the benchmark's Hub split and map it (see :func:`rows_from_table`)."""
    hub = benchmark.hub
    if hub is None:
        raise FileNotFoundError(f"benchmark {benchmark.name!r} has no local file and no Hub source")
    try:
        import datasets
    except ImportError:
        raise ImportError(
            f"benchmark {benchmark.name!r} has no local file; loading {hub.path} from the Hub "
            "needs the datasets package: pip install datasets (or set "
            f"{ENV_ROOT} to a folder of local benchmark files)"
        ) from None
    table = datasets.load_dataset(hub.path, hub.config, split=hub.split)
    return rows_from_table(benchmark, table, hub)


def load_rows(
    benchmark: str | Benchmark,
    root: str | os.PathLike[str] | None = None,
    max_samples: int | None = None,
    seed: int = 0,
    source: Literal["auto", "local", "hub"] = "auto",
) -> list[BenchmarkRow]:
    """The rows of a benchmark, from its local file or (``source="auto"`` without one) the Hub.

    Args:
        benchmark: A registered name or a :class:`Benchmark`.
        root: Folder of local files; see the module docstring for the default lookup.
        max_samples: Keep a random subset of this many rows, drawn with ``seed``: the same
            subset every time for a given seed and file, kept in file order.
        seed: Seed of that subset.
        source: ``local`` (error without a local file), ``hub``, or ``auto``.
    """
    bench = get_benchmark(benchmark)
    folder = benchmark_root(root)
    path = bench.local_path(folder) if folder is not None else None
    if bench.rows is not None:
        rows = bench.rows()
    elif source == "hub":
        rows = hub_rows(bench)
    elif path is not None and path.is_file():
        rows = read_benchmark_jsonl(bench, path)
    elif source == "local":
        tried = str(path) if path is not None else f"no benchmark root (set {ENV_ROOT})"
        raise FileNotFoundError(f"benchmark {bench.name!r}: no local file ({tried})")
    else:
        rows = hub_rows(bench)
    if not rows:
        raise ValueError(f"benchmark {bench.name!r}: no problems (an empty benchmark)")
    if max_samples is not None and max_samples < len(rows):
        keep = sorted(random.Random(seed).sample(range(len(rows)), max_samples))
        rows = [rows[i] for i in keep]
    return rows
