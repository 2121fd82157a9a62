"""The one JSONL reader: rows in order, blank lines skipped, errors naming ``file:line``."""

from __future__ import annotations

import re

import pytest

from rzero_pl.ground.io import iter_jsonl, read_jsonl


def _write(tmp_path, text: str | bytes):
    path = tmp_path / "rows.jsonl"
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


def test_rows_come_in_file_order_and_blank_lines_are_skipped(tmp_path):
    path = _write(
        tmp_path, '{"problem": "1+1", "answer": "2"}\n\n  \n{"problem": "x", "answer": 3}\n'
    )
    assert read_jsonl(path, ("problem", "answer")) == [
        {"problem": "1+1", "answer": "2"},
        {"problem": "x", "answer": 3},
    ]
    assert [where for where, _ in iter_jsonl(path)] == [f"{path}:1", f"{path}:4"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"problem": "p", "answer": "a"}\n["a list"]\n', ":2: expected a JSON object, got list"),
        ('{"problem": "p", "answer": ""}\n', ":1: missing 'answer'"),
        ('{"answer": "a"}\n{"problem": null}\n', ":1: missing 'problem'"),
        ('{"problem": "p", "answer": "a"}\n{"problem": \n', ":2: bad JSON"),
    ],
)
def test_a_bad_line_is_named(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ValueError, match=re.escape(f"{path}{message}")):
        read_jsonl(path, ("problem", "answer"))


def test_bytes_that_are_not_utf8_and_a_missing_file(tmp_path):
    path = _write(tmp_path, b'{"problem": "p"}\n{"problem": "\xff"}\n')
    with pytest.raises(ValueError, match=re.escape(f"{path}:2: not UTF-8")):
        read_jsonl(path)
    with pytest.raises(FileNotFoundError, match="no such JSONL file"):
        read_jsonl(tmp_path / "absent.jsonl")
