"""YAML with bounds: every configuration text the CLI reads, checked before it is built.

PyYAML builds an alias (``*a``) as a second reference to its anchor's object, so a few
hundred bytes of nested aliases (a "billion laughs") load at once, then grow to gigabytes as
the configuration is copied, validated and dumped (3.8 GB in 98 s, with no error). The
loader here composes the text first and counts its size with every alias expanded; too large
a text, an expansion beyond the ceiling, a recursive alias or nesting too deep is a
``YAMLTooLarge`` error before anything is built. ``use_bounded_yaml`` makes it jsonargparse's
YAML loader (config files and command-line values alike).

A key renamed since an earlier release (``RENAMED``) is one line naming the old key and the
new one (``renamed_key_problem``), in a file or on the command line, before any model loads.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_YAML_CHARS = 1 << 20  # a configuration file or value: the shipped ones are under 8 KB
MAX_EXPANDED = 1 << 22  # nodes plus scalar characters, with every alias expanded


class YAMLTooLarge(yaml.YAMLError):
    """A YAML text whose expansion exceeds the ceilings (a YAML error to jsonargparse)."""


def expanded_size(root: yaml.Node, limit: int = MAX_EXPANDED) -> int:
    """Nodes plus scalar characters of ``root`` with every alias expanded (each node's size
    is counted once and reused, so this costs one pass over the text's own nodes)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_nodes: set[int] = set()
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        children = _children(node)
        if not children_done:
            if key in open_nodes:
                raise YAMLTooLarge("a recursive alias (an anchor used inside itself)")
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        open_nodes.discard(key)
        own = 1 + (len(node.value) if isinstance(node, yaml.ScalarNode) else 0)
        sizes[key] = own + sum(sizes[id(child)] for child in children)
        if sizes[key] > limit:
            raise YAMLTooLarge(
                f"expands to more than {limit} nodes and characters (aliases repeat their "
                "anchor's content); write the configuration out without nested aliases"
            )
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def check_yaml(text: str, loader: type = yaml.SafeLoader) -> None:
    """Raise ``YAMLTooLarge`` (or PyYAML's own error, with its line) for a text too large to
    load, before any object is built from it."""
    if len(text) > MAX_YAML_CHARS:
        raise YAMLTooLarge(f"{len(text)} characters of YAML, more than {MAX_YAML_CHARS}")
    reader = loader(text)
    try:
        node = reader.get_single_node()
    except RecursionError:
        raise YAMLTooLarge("nested too deeply") from None
    finally:
        reader.dispose()
    if node is not None:
        expanded_size(node)


def use_bounded_yaml() -> None:
    """Make jsonargparse load every YAML text through ``check_yaml`` first (idempotent)."""
    from jsonargparse import get_loader, set_loader

    load = get_loader("yaml")
    if getattr(load, "bounded", False):
        return

    def bounded_yaml_load(text: Any) -> Any:
        if isinstance(text, str):
            check_yaml(text)
        return load(text)

    bounded_yaml_load.bounded = True  # type: ignore[attr-defined]
    set_loader("yaml", bounded_yaml_load, exceptions=(yaml.YAMLError,))


# Keys a configuration may still hold from an earlier release: old dotted key -> what to write.
RENAMED = {
    "evolution.vote.votes": "evolution.vote.samples (m)",
    "evolution.label_vote.votes": "evolution.label_vote.samples (m)",
    "evolution.curriculum.filters": "evolution.curriculum.text_filters (on by default; null: "
    "no text filters)",
}
SUBCOMMANDS = ("fit", "test")


def upgraded(settings: dict[str, Any]) -> dict[str, Any]:
    """A run's saved configuration with the keys of an earlier release written as today's
    (``RENAMED``), so that ``analyze`` and ``report`` still read a run made before a rename
    (a configuration a user writes gets the one-line refusal instead)."""
    evolution = dict(settings.get("evolution") or {})
    for name in ("vote", "label_vote"):
        vote = evolution.get(name)
        if isinstance(vote, dict) and "votes" in vote:
            vote = dict(vote)
            votes = vote.pop("votes")
            vote.setdefault("samples", votes)
            evolution[name] = vote
    curriculum = evolution.get("curriculum")
    if isinstance(curriculum, dict) and "filters" in curriculum:
        curriculum = dict(curriculum)
        if not curriculum.pop("filters"):
            curriculum["text_filters"] = None  # filters false: no text filters
        elif curriculum.get("text_filters") is None:
            curriculum.pop("text_filters", None)  # filters true, default rules
        evolution["curriculum"] = curriculum
    return {**settings, "evolution": evolution} if "evolution" in settings else settings


def dotted_keys(data: Any, prefix: str = "") -> list[str]:
    """Every key of nested mappings as a dotted path, ``init_args`` levels left out (the same
    setting may be written with or without them)."""
    if not isinstance(data, dict):
        return []
    keys = []
    for key, value in data.items():
        path = prefix if key == "init_args" else f"{prefix}.{key}" if prefix else str(key)
        keys += [path, *dotted_keys(value, path)]
    return keys


def renamed_key_problem(keys: list[str]) -> str | None:
    """One line naming the first old key among ``keys`` and the key that replaced it, else
    None (a leading subcommand, ``fit.``, is read past)."""
    for key in keys:
        first, _, rest = key.partition(".")
        key = rest if first in SUBCOMMANDS and rest else key
        if key in RENAMED:
            return f"{key} is an old key; write {RENAMED[key]} instead"
    return None


def argument_keys(args: list[str]) -> list[str]:
    """The dotted keys a command line sets: ``--a.b=1``, ``--a.b 1``, and the keys inside a
    mapping value (``--a='{b: 1}'``)."""
    keys = []
    for i, arg in enumerate(args):
        if not isinstance(arg, str) or not arg.startswith("--") or arg == "--config":
            continue
        key, eq, value = arg[2:].partition("=")
        if key == "config":
            continue
        key = ".".join(part for part in key.split(".") if part != "init_args")
        keys.append(key)
        if not eq and i + 1 < len(args) and isinstance(args[i + 1], str):
            value = args[i + 1]
        if value.lstrip().startswith("{"):
            try:
                keys += dotted_keys(yaml.safe_load(value), key)
            except yaml.YAMLError:
                pass  # not a mapping: jsonargparse names the bad value itself
    return keys
