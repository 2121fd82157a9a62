"""Every finished curriculum of a run as a ``datasets``-loadable folder of parquet files.

Two configurations, one split per iteration (``iter1``, ``iter2``, …):

- ``questions``: every candidate the challenger wrote (``questions.jsonl``): the question, the
  solver's m votes, the label (the largest cluster's answer), its share, whether it was kept
  and why, and whether the label was right when the run knew the truth;
- ``curriculum``: the kept questions the solver trained on (``curriculum.jsonl``).

``load_dataset(FOLDER, "questions")`` reads it (the README's ``configs``), as does
``load_dataset("parquet", data_files=…)``. A finished curriculum's ``curriculum.jsonl`` is
checked against the sha256 ``state.json`` recorded.
"""

from __future__ import annotations

import os
from typing import Any

import yaml

from rzero_pl import __version__
from rzero_pl.export.run_files import Run, section
from rzero_pl.ground.io import read_json, read_jsonl
from rzero_pl.run.state import check_recorded_file

FILES = {"questions": "questions.jsonl", "curriculum": "curriculum.jsonl"}


def write_curricula(run: Run, out: str) -> list[int]:
    """Write ``out/<config>/iterK.parquet`` and ``out/README.md``; return the iterations."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(
            "--curriculum writes parquet with pyarrow: pip install 'rzero-pl[hub]'"
        ) from None
    iterations = run.finished("curriculum")
    if not iterations:
        raise ValueError(f"{run.folder}: no finished curriculum to export")
    for it in iterations:
        folder = os.path.join(run.folder, f"iter{it}", "curriculum")
        phase = f"iter{it}/curriculum"
        recorded = (run.state["phases"].get(phase) or {}).get("sha256")
        check_recorded_file(os.path.join(folder, FILES["curriculum"]), recorded, phase)
        for config, name in FILES.items():
            rows = [{"iteration": it, **row} for row in read_jsonl(os.path.join(folder, name))]
            os.makedirs(os.path.join(out, config), exist_ok=True)
            table = pa.Table.from_pylist(rows) if rows else pa.table({"iteration": []})
            pq.write_table(table, os.path.join(out, config, f"iter{it}.parquet"))
    with open(os.path.join(out, "README.md"), "w", encoding="utf-8") as f:
        f.write(dataset_card(run, iterations))
    return iterations


def dataset_card(run: Run, iterations: list[int]) -> str:
    """README.md: the ``configs`` that ``load_dataset`` reads, and what each column means."""
    configs = [
        {
            "config_name": config,
            "data_files": [
                {"split": f"iter{it}", "path": f"{config}/iter{it}.parquet"} for it in iterations
            ],
        }
        for config in FILES
    ]
    meta: dict[str, Any] = {
        "configs": configs,
        "tags": ["rzero-pl", "r-zero", "self-play", "synthetic"],
        "rzero_pl": {
            "version": __version__,
            "band": section(run.config, "evolution", "vote", "band"),
            "votes": section(run.config, "evolution", "vote", "votes"),
            "iterations": {f"iter{it}": _summary(run, it) for it in iterations},
        },
    }
    name = os.path.basename(os.path.normpath(run.folder))
    return f"""---
{yaml.safe_dump(meta, sort_keys=False)}---

# R-Zero curricula of {name}

What the challenger wrote in each iteration of an [R-Zero](https://arxiv.org/abs/2508.05004)
run (rzero-pl {__version__}), and how the solver's majority vote labelled it. One split
per iteration.

- `questions`: every candidate: `question`, `votes` (the solver's m answers; null: no answer),
  `label` (the largest cluster of equivalent answers), `share` (its size / m), `kept` (share in
  the band), `reason`, `label_correct` (against the truth, when the run knew it).
- `curriculum`: the kept questions the solver trained on: `problem`, `answer` (the label),
  `share`.

```python
from datasets import load_dataset
questions = load_dataset(FOLDER, "questions")   # splits iter1, iter2, …
```
"""


def _summary(run: Run, it: int) -> dict[str, Any]:
    """The counts ``curriculum.json`` recorded (candidates, kept, label accuracy)."""
    path = os.path.join(run.folder, f"iter{it}", "curriculum", "curriculum.json")
    record = read_json(path) or {}
    keys = ("candidates", "valid", "kept", "share_mean", "label_accuracy", "kept_label_accuracy")
    return {k: record[k] for k in keys if k in record}
