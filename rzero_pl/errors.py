"""One-line configuration errors: the offending key or file:line, and what is wrong with it.

jsonargparse reports a bad value inside a ``class_path`` component as a tree of "Does not
validate against any of the Union subtypes" blocks, each repeating the whole configuration.
``one_line`` walks that tree down to the message that says what is wrong, joins the keys on
the way (``evolution.iterations``), and names the section (``model``, ``data``, ``trainer``…)
the error came from.
"""

from __future__ import annotations

import errno
import re


class ConfigError(ValueError):
    """A configuration or input error, already phrased as one line."""


# Ceilings of counts and lengths: far above any run one machine can finish (the paper's N is
# 8000, m 10, G 5-8, K 3-5; contexts are below a million tokens) and far below what exhausts
# its memory or disk before the first step (10**30 candidates filled 8 GB in 85 s). Each
# item, rollout or candidate costs at least a kilobyte in memory.
MAX_ITEMS = 1_000_000  # questions, prompts, candidates, rollouts per step or round
MAX_SAMPLES = 4096  # samples of one prompt: G, m, k
MAX_TOKENS = 1 << 20  # tokens of one completion or batch budget row
MAX_STEPS = 10_000_000  # rollout steps, optimizer updates, pretraining steps
MAX_ITERATIONS = 1000  # each writes both roles' weights to disk
MAX_QUESTION_CHARS = 32_768  # a labelled question (about 8k tokens; MATH's longest is 4k chars)


_SECTIONS = {
    "LightningDataModule": "data",
    "LightningModule": "model",
    "Evolution": "evolution",
    "Evaluation": "evaluation",
}
_NOISE = re.compile(
    r"^(?:- )?(?:Does not validate against any of the Union subtypes|Subtypes:|Errors:|"
    r"Given value|Expected a <class 'NoneType'>|Problem with given class_path)"
)
_PARSER_KEY = re.compile(r'^(?:- )?(?:error: )?Parser key "([^"]+)":\s*(.*)$')
_UNKNOWN = re.compile(r"^(?:- )?Option '([^']+)' is not accepted")
_KEY_VALUE = re.compile(r"NestedArg\(key='([^']+)'")


def _leaf(lines: list[str]) -> tuple[list[str], str | None]:
    """The keys named on the way down and the first line that says what is wrong."""
    keys: list[str] = []
    for line in lines:
        text = line.strip()
        if not text or _NOISE.match(text):
            continue
        key = _PARSER_KEY.match(text)
        if key:
            keys.append(key[1])
            if key[2]:
                return keys, key[2]
            continue
        unknown = _UNKNOWN.match(text)
        if unknown:
            return [*keys, unknown[1]], "unknown key (not a parameter of this component)"
        return keys, text.removeprefix("- ")
    return keys, None


def one_line(message: str, section: str | None = None) -> str:
    """Reduce a (possibly nested, multi-line) error message to ``key: what is wrong``."""
    lines = message.splitlines()
    if len(lines) <= 1:
        return f"{section}: {message}" if section and message else message
    keys, leaf = _leaf(lines)
    if leaf is None:
        return lines[0].strip()
    if not keys:  # an error raised while building a component: name its section
        for name, key in _SECTIONS.items():
            if section is None and re.search(rf"Subtypes: \[<class '[\w.]*\.{name}'>", message):
                section = key
        nested = _KEY_VALUE.search(message)
        keys = [section] if section else []
        keys += [nested[1]] if nested else []
    where = ".".join(keys)
    if where and leaf.startswith(f"{where}."):  # the message names its key already
        return leaf
    return f"{where}: {leaf}" if where else leaf


_FREE_SPACE = "free space on that disk, then re-run the same command to resume"
_PERMISSIONS = "fix its permissions or give another folder, then re-run the same command"
_OS_ADVICE = {
    errno.ENOSPC: _FREE_SPACE,
    errno.EDQUOT: _FREE_SPACE,
    errno.EACCES: _PERMISSIONS,
    errno.EPERM: _PERMISSIONS,
    errno.EROFS: "the disk is read-only: give a folder on a writable one",
}


def describe_os_error(err: OSError, where: str | None = None) -> str:
    """One line for an operating-system error (a bare ``[Errno 28] …`` names no file, setting
    or phase): what failed, on which file, ``where`` in the run, and the fix."""
    if err.errno is None or not err.strerror:
        return str(err)  # already phrased by rzero-pl
    what = err.strerror[:1].lower() + err.strerror[1:]
    on = f" ({err.filename})" if err.filename else ""
    at = f" in {where}" if where else ""
    advice = _OS_ADVICE.get(err.errno)
    return f"{what}{on}{at}" + (f"; {advice}" if advice else "")


def check_number(
    key: str,
    value: object,
    *,
    at_least: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
    optional: bool = False,
) -> None:
    """Raise a one-line ``ConfigError`` naming ``key`` unless ``value`` is a number in range.

    ``at_least``/``at_most`` are inclusive bounds, ``above`` an exclusive one; ``optional``
    lets None through (a setting whose None means "no limit").
    """
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigError(f"{key} must be a finite number, got {value!r}")
    if at_least is not None and value < at_least:
        raise ConfigError(f"{key} must be >= {at_least}, got {value!r}")
    if above is not None and value <= above:
        raise ConfigError(f"{key} must be > {above}, got {value!r}")
    if at_most is not None and value > at_most:
        raise ConfigError(f"{key} must be <= {at_most}, got {value!r}")
