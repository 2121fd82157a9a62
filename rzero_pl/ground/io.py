"""Atomic file writes (a crash leaves either the old file or the new one, never half of one),
and the one JSONL reader (``read_jsonl``: errors name the file and line).

Every file rzero-pl produces is written under a temporary name in its own folder (so the
rename never crosses a file system), flushed and fsynced, renamed into place, and the folder
fsynced so that the rename itself survives a power cut. A crash mid-write leaves only a
``.<name>.tmp-…`` file, which no reader opens and ``remove_stale_temps`` deletes on the next
start (only names of that exact shape, only in the folders rzero-pl writes).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from rzero_pl.ground.faults import fault_point

TMP_MARK = ".tmp-"  # in the name of every temporary file or folder, and of nothing else
# The exact shapes of the temporary names rzero-pl writes: ``.<name>.tmp-<mkstemp suffix>``
# (files, checkpoints' ``.last.ckpt.tmp-save``/``-old``) and ``.tmp-<suffix>[-adapter|-old]``
# (weights folders, the checkpoint's ``.tmp-files``). A user's ``notes.tmp-old.txt`` is not one.
_TEMP_NAME = re.compile(r"\.(?:.+\.)?tmp-[A-Za-z0-9_]+(?:-adapter|-old)?")


def fsync_dir(folder: str) -> None:
    """Make a rename in ``folder`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(folder: str) -> None:
    """fsync every file under ``folder`` and the folders themselves (before renaming it)."""
    for root, _, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                os.fsync(f.fileno())
        fsync_dir(root)


def temp_path(path: str) -> str:
    """A fresh temporary name next to ``path`` (same folder, so ``os.replace`` is atomic)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}{TMP_MARK}", dir=folder)
    os.close(fd)
    return tmp


def replace_durably(tmp: str, path: str) -> None:
    """fsync ``tmp``, rename it to ``path`` and fsync the folder."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def write_text_atomic(path: str, text: str) -> None:
    """Write ``text`` to a temporary file in the same folder, fsync it, then rename it."""
    tmp = temp_path(path)
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            half = len(text) // 2  # the fault point sits mid-write: a torn file, if any
            f.write(text[:half])
            f.flush()
            fault_point(f"write:{os.path.basename(path)}")
            f.write(text[half:])
        replace_durably(tmp, path)
    except BaseException:
        remove_path(tmp)
        raise


def is_temp_name(name: str) -> bool:
    """Whether ``name`` has the shape of a temporary file or folder that rzero-pl writes."""
    return _TEMP_NAME.fullmatch(name) is not None


def remove_stale_temps(folder: str, below: Iterable[str]) -> list[str]:
    """Delete the temporary files and folders a crashed writer left in ``folder`` itself and
    in the trees of its entries named in ``below`` (the folders rzero-pl writes; nothing
    else is looked into), matched by :func:`is_temp_name` only."""
    removed = []
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if is_temp_name(name):
            remove_path(path)
            removed.append(path)
    for name in below:
        top = os.path.join(folder, name)
        if os.path.islink(top) or not os.path.isdir(top):
            continue
        for root, dirs, files in os.walk(top):
            for entry in [*files, *dirs]:
                if is_temp_name(entry):
                    remove_path(os.path.join(root, entry))
                    removed.append(os.path.join(root, entry))
            dirs[:] = [d for d in dirs if not is_temp_name(d)]
    return removed


def remove_path(path: str) -> None:
    """Delete a file or a folder tree; nothing if it is not there."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


def set_aside(path: str) -> str:
    """Rename ``path`` (a file or folder) to the first free ``path.set-aside[-N]`` and return
    that name: what a run no longer trusts is kept for the user, never deleted."""
    target, n = f"{path}.set-aside", 1
    while os.path.lexists(target):
        n += 1
        target = f"{path}.set-aside-{n}"
    os.replace(path, target)
    return target


def write_json_atomic(path: str, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_jsonl_atomic(path: str, rows: Iterable[dict]) -> None:
    write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_json(path: str, default: Any = None) -> Any:
    """The JSON value in ``path``, ``default`` when it does not exist; a damaged file raises
    ``ValueError`` naming it (files written here are never half-written, so it was damaged
    from outside)."""
    if not os.path.exists(path):
        return default
    with open(path, "rb") as f:
        raw = f.read()
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(
            f"{path}: damaged JSON ({err}); delete it to redo what it records"
        ) from None


def read_jsonl(path: str | os.PathLike[str], required: Sequence[str] = ()) -> list[dict]:
    """The objects of a JSONL file, one per non-blank line; the one JSONL reader.

    A missing file raises ``FileNotFoundError``; a line that is not UTF-8, not JSON, not an
    object, or lacks (or leaves empty) one of the ``required`` keys raises ``ValueError``
    naming ``file:line``.
    """
    return [row for _, row in iter_jsonl(path, required)]


def iter_jsonl(
    path: str | os.PathLike[str], required: Sequence[str] = ()
) -> Iterator[tuple[str, dict]]:
    """Yield ``("file:line", object)`` for each non-blank line of a JSONL file, checked as
    :func:`read_jsonl` says (for readers that name the line in their own checks)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such JSONL file: {path}")
    for where, row in _iter_json_lines(path):
        if not isinstance(row, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(row).__name__}")
        missing = [key for key in required if key not in row or row[key] in (None, "")]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(map(repr, missing))}")
        yield where, row


def _iter_json_lines(path: str | os.PathLike[str]) -> Iterator[tuple[str, Any]]:
    """Yield ``("file:line", value)`` for each non-blank line of a JSONL file.

    A line that is not UTF-8 or not JSON raises ``ValueError`` naming ``file:line``.
    """
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            where = f"{path}:{number}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(f"{where}: not UTF-8 ({err.reason})") from None
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: bad JSON ({err.msg} at column {err.colno})") from None
            if _has_lone_surrogate(value):  # JSON's \ud800 escape: no tokenizer encodes it
                raise ValueError(f"{where}: a string holds a lone surrogate (\\ud800-\\udfff)")
            yield where, value


def _has_lone_surrogate(value: Any) -> bool:
    """Whether a JSON value holds a string that is not valid Unicode text."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False
