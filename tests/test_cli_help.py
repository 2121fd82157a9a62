"""`rzero-pl --help` and `--version`: the program, what it does, every command it has."""

from __future__ import annotations

import sys
from importlib.metadata import version

import pytest

from rzero_pl.cli import COMMANDS, RUN_FOLDER_COMMANDS, RZeroCLI, main


def listed_commands(text: str) -> dict[str, str]:
    """The ``commands:`` block of the help text: {name: its line}."""
    block = text.split("\ncommands:\n", 1)[1].split("\n\n", 1)[0]
    return dict(line.strip().split(None, 1) for line in block.splitlines())


def test_help_names_the_program_and_lists_every_command_that_exists(capsys):
    main(["--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: rzero-pl COMMAND")
    assert f"rzero-pl {version('rzero-pl')}: R-Zero (arXiv 2508.05004)" in out
    listed = listed_commands(out)
    assert list(listed) == [*RZeroCLI.subcommands(), *RUN_FOLDER_COMMANDS]
    assert list(listed) == ["fit", "test", "analyze", "report", "export"]
    assert all(len(line) > 20 for line in listed.values())  # a description of its own
    main(["-h"])
    assert capsys.readouterr().out == out


def test_no_command_prints_the_help_and_fails(capsys):
    with pytest.raises(SystemExit) as stop:
        main([])
    assert stop.value.code == 2
    assert "commands:" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["validate", "predict", "train"])
def test_lightning_commands_without_meaning_and_typos_are_one_line(capsys, name):
    with pytest.raises(SystemExit) as stop:
        main([name, "--config", "cli_configs/toy.yaml"])
    assert stop.value.code == 2
    assert capsys.readouterr().err == (
        f"rzero-pl: error: unknown command {name!r}; the commands are fit, test, analyze, "
        "report, export (rzero-pl --help)\n"
    )


def test_every_listed_command_answers_its_own_help(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["rzero-pl"])  # LightningCLI warns about pytest's own
    for name in COMMANDS:
        with pytest.raises(SystemExit) as stop:
            main([name, "--help"])
        assert stop.value.code == 0, name
        out = " ".join(capsys.readouterr().out.split())
        assert out.startswith("usage: rzero-pl"), (name, out[:200])
        if name in RZeroCLI.subcommands():  # LightningCLI's: our line, not the Trainer's
            assert f"rzero-pl {name}: {COMMANDS[name]}" in out


def test_version_is_the_installed_packages(capsys):
    main(["--version"])
    assert capsys.readouterr().out == f"rzero-pl {version('rzero-pl')}\n"
