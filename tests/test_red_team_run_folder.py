"""Red team, round 3: a run folder never harms the user's files, and what a run folder holds
is checked against ``state.json`` before it is trusted (issue 27, items 1-4, 7, 8, 11).

Refusals go through the real CLI in-process (``_refused``: exit status 2, one
``rzero-pl: error:`` line) and leave every file as it was.
"""

from __future__ import annotations

import os

import pytest
from test_red_team import TOY, _refused, _tree_hash

from rzero_pl.errors import ConfigError
from rzero_pl.run.io import is_temp_name, remove_stale_temps
from rzero_pl.run.state import check_run_folder

# ------------------------------------------------------------------ item 1: the user's files


def _user_folder(tmp_path) -> str:
    """The issue's reproduction: a folder of the user's with an ``eval/`` and two files whose
    names hold ``.tmp-``."""
    folder = tmp_path / "project"
    (folder / "eval").mkdir(parents=True)
    (folder / "docs").mkdir()
    (folder / "notes.tmp-old.txt").write_text("mine")
    (folder / "docs" / "paper.tmp-draft.tex").write_text("mine too")
    return str(folder)


def test_a_folder_of_the_users_is_refused_and_nothing_is_deleted(tmp_path):
    folder = _user_folder(tmp_path)
    before = _tree_hash(folder)
    line = _refused(
        ["fit", "--config", TOY, f"--evolution.run_dir={folder}"],
        "evolution.run_dir",
        "did not write",
    )
    assert "notes.tmp-old.txt" in line or "docs" in line
    assert _tree_hash(folder) == before
    assert sorted(os.listdir(folder)) == ["docs", "eval", "notes.tmp-old.txt"]  # no .lock


def test_the_parent_of_another_run_is_refused(tmp_path):
    other = tmp_path / "runs" / "toy"
    other.mkdir(parents=True)
    (other / "state.json").write_text("{}")
    (other / ".state.json.tmp-abc123").write_text("{")  # that run's write in flight
    before = _tree_hash(str(tmp_path / "runs"))
    _refused(
        ["fit", "--config", TOY, f"--evolution.run_dir={tmp_path / 'runs'}"],
        "evolution.run_dir",
        "another run",
        os.path.join("toy", "state.json"),
    )
    assert _tree_hash(str(tmp_path / "runs")) == before


@pytest.mark.parametrize("where", ["root", "home"])
def test_root_and_home_are_never_run_folders(tmp_path, monkeypatch, where):
    monkeypatch.setenv("HOME", str(tmp_path))
    folder = os.sep if where == "root" else str(tmp_path)
    with pytest.raises(ConfigError, match="root or the home folder"):
        check_run_folder(folder)
    assert os.listdir(tmp_path) == []  # not even a lock file


def test_a_run_folder_of_rzero_pl_is_accepted(tmp_path):
    folder = tmp_path / "run"
    check_run_folder(str(folder))  # absent
    folder.mkdir()
    check_run_folder(str(folder))  # empty
    for name in ("iter1", "iter12", "eval", "analysis", "tensorboard"):
        (folder / name).mkdir()
    for name in ("state.json", "best.json", "config.yaml", ".lock", ".state.json.tmp-k2j_x9"):
        (folder / name).write_text("")
    check_run_folder(str(folder))
    (folder / ".bashrc.tmp-x").write_text("")  # temp-shaped, but not a name rzero-pl writes
    with pytest.raises(ConfigError, match="'.bashrc.tmp-x', which rzero-pl did not write"):
        check_run_folder(str(folder))


@pytest.mark.parametrize(
    "name, ours",
    [
        (".state.json.tmp-k2j_x9", True),  # write_text_atomic (mkstemp)
        (".last.ckpt.tmp-save", True),  # AtomicCheckpoint
        (".last.ckpt.tmp-old", True),
        (".tmp-files", True),  # the checkpoint's tempfile folder
        (".tmp-ab12cd_3", True),  # save_role's folder (mkdtemp)
        (".tmp-ab12cd_3-adapter", True),
        (".tmp-ab12cd_3-old", True),
        ("notes.tmp-old.txt", False),
        ("paper.tmp-draft.tex", False),
        ("state.json", False),
        (".tmp-", False),
        ("x.tmp-old", False),
    ],
)
def test_only_the_temporary_names_rzero_pl_writes_are_temporary(name, ours):
    assert is_temp_name(name) is ours


def test_the_sweep_looks_only_into_the_folders_it_is_given(tmp_path):
    (tmp_path / "iter1" / "solver").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    killed = tmp_path / "iter1" / "solver" / ".last.ckpt.tmp-save"
    killed.write_text("half")
    (tmp_path / "iter1" / "notes.tmp-old.txt").write_text("a user's file")
    (tmp_path / "elsewhere" / ".a.json.tmp-abc").write_text("not looked at")
    (tmp_path / ".state.json.tmp-zz").write_text("{")
    removed = remove_stale_temps(str(tmp_path), below=["iter1"])
    assert sorted(removed) == sorted([str(killed), str(tmp_path / ".state.json.tmp-zz")])
    assert (tmp_path / "iter1" / "notes.tmp-old.txt").exists()
    assert (tmp_path / "elsewhere" / ".a.json.tmp-abc").exists()
