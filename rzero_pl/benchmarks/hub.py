"""Benchmark rows from a Hugging Face Hub dataset, through a :class:`HubSource` column mapping.

:func:`rows_from_table` is the mapping alone (any iterable of dict-like rows, e.g. a
``datasets.Dataset``); :func:`hub_rows` downloads the split with ``datasets.load_dataset``
(the optional ``hub`` extra: ``pip install rzero-pl[hub]``) and maps it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rzero_pl.benchmarks.registry import (
    ENV_ROOT,
    Benchmark,
    BenchmarkRow,
    HubSource,
    check_row,
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
