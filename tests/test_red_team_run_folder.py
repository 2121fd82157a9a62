"""Red team, round 3: a run folder never harms the user's files, and what a run folder holds
is checked against ``state.json`` before it is trusted (issue 27, items 1-4, 7, 8, 11).

Refusals go through the real CLI in-process (``_refused``: exit status 2, one
``rzero-pl: error:`` line) and leave every file as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest
import torch
from test_red_team import TOY, _cli, _copy, _edit_state, _refused, _tree_hash, _weights

from rzero_pl.errors import ConfigError
from rzero_pl.ground.io import is_temp_name, remove_stale_temps
from rzero_pl.ground.weights import resolve_weights
from rzero_pl.run.checkpoints import IDENTITY_KEY, resume_point
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


# ------------------------------------------------------------------ items 2, 3, 11: checkpoints


@pytest.fixture(scope="module")
def finished_run(finished_toy_run):
    """The session's small finished toy run (tests/conftest.py); each case copies it."""
    config, run_dir, _ = finished_toy_run
    return config, run_dir


def _checkpoint(path, step: int, identity: dict | None) -> str:
    """A checkpoint file as AtomicCheckpoint writes it (the keys resume_point reads)."""
    checkpoint = {"global_step": step}
    if identity is not None:
        checkpoint[IDENTITY_KEY] = identity
    torch.save(checkpoint, str(path))
    return str(path)


IDENTITY = {"phase": "iter2/solver", "fingerprint": "abc", "step_start": 40}


def test_only_this_attempts_checkpoint_is_resumed(tmp_path):
    last = _checkpoint(tmp_path / "last.ckpt", 7, IDENTITY)
    assert resume_point(last, dict(IDENTITY)) == (last, 7)


@pytest.mark.parametrize(
    "recorded",
    [
        {**IDENTITY, "phase": "iter1/solver"},  # another phase's checkpoint copied in
        {**IDENTITY, "fingerprint": "def"},  # another configuration
        {**IDENTITY, "step_start": 12},  # an attempt whose state.json entry was deleted
        None,  # written before checkpoints carried their phase
    ],
    ids=["another phase", "another configuration", "a deleted entry", "no identity"],
)
def test_a_checkpoint_of_another_attempt_is_set_aside(tmp_path, recorded):
    last = _checkpoint(tmp_path / "last.ckpt", 7, recorded)
    (tmp_path / "last.ckpt.set-aside").write_text("an earlier one, kept")
    with pytest.warns(UserWarning, match="set aside as .*last.ckpt.set-aside-2, the phase starts"):
        assert resume_point(last, IDENTITY) == (None, 0)
    assert sorted(os.listdir(tmp_path)) == ["last.ckpt.set-aside", "last.ckpt.set-aside-2"]


def test_an_unreadable_checkpoint_is_an_error_not_damage(tmp_path, monkeypatch):
    """Item 11: permissions are not damage; the checkpoint stays where it is. (Root reads
    any file whatever its mode, so the kernel's refusal is what torch.load raises.)"""
    last = _checkpoint(tmp_path / "last.ckpt", 7, IDENTITY)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", last)

    monkeypatch.setattr("rzero_pl.run.checkpoints.torch.load", denied)
    with pytest.raises(ValueError, match=r"last.ckpt: cannot be read \(permission denied\)"):
        resume_point(last, IDENTITY)
    assert os.listdir(tmp_path) == ["last.ckpt"]


def _drop_phases(run_dir: str, *phases: str) -> None:
    def change(state):
        for phase in phases:
            del state["phases"][phase]
        return state

    _edit_state(run_dir, change)


def _sha(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.mark.slow
def test_a_deleted_entry_redoes_the_phase_with_the_changed_setting(finished_run, tmp_path):
    """Item 2: the README's way to redo a phase really trains it again (here with another lr)."""
    args, run_dir = _copy(finished_run, tmp_path)
    old = _sha(_weights(run_dir, 2, "solver"))
    _drop_phases(run_dir, "iter2/solver", "iter2/eval")
    code, errors = _cli(
        [*args, "--model.init_args.lr=0.01", "--evolution.allow_config_change=true"]
    )
    assert code in (0, None), errors
    aside = os.path.join(run_dir, "iter2", "solver", "checkpoints", "last.ckpt.set-aside")
    assert os.path.exists(aside) and os.path.exists(aside.removesuffix(".set-aside"))
    assert _sha(_weights(run_dir, 2, "solver")) != old
    with open(os.path.join(run_dir, "state.json")) as f:
        assert "iter2/eval" in json.load(f)["phases"]


@pytest.mark.slow
def test_another_phases_checkpoint_is_never_resumed(finished_run, tmp_path):
    """Item 3: iter1's solver checkpoint in iter2's folder: iter2's solver trains anew
    instead of being recorded with iter1's weights."""
    args, run_dir = _copy(finished_run, tmp_path)
    _drop_phases(run_dir, "iter2/solver", "iter2/eval")
    checkpoints = os.path.join(run_dir, "iter{}", "solver", "checkpoints", "last.ckpt")
    shutil.copyfile(checkpoints.format(1), checkpoints.format(2))
    code, errors = _cli(args)
    assert code in (0, None), errors
    assert _sha(_weights(run_dir, 2, "solver")) != _sha(_weights(run_dir, 1, "solver"))
    assert os.path.exists(checkpoints.format(2) + ".set-aside")


@pytest.mark.slow
def test_an_entry_deleted_from_the_middle_is_refused(finished_run, tmp_path):
    args, run_dir = _copy(finished_run, tmp_path)
    _drop_phases(run_dir, "iter1/solver")
    before = _tree_hash(run_dir)
    _refused(args, "state.json", "iter2/solver is recorded as finished but iter1/solver")
    assert _tree_hash(run_dir) == before


# ------------------------------------------------------------------ items 4, 7: records


def _set_json(path: str, change) -> None:
    with open(path) as f:
        data = json.load(f)
    change(data)
    with open(path, "w") as f:
        json.dump(data, f)


def _set_accuracy(summary):
    summary["benchmarks"]["toy"]["accuracy"] = 0.99


@pytest.mark.slow
@pytest.mark.parametrize(
    "file, change, words",
    [
        (
            os.path.join("iter1", "curriculum", "curriculum.json"),
            lambda report: report.update(kept=0),
            ["curriculum.json: 'kept' is 0", "state.json recorded"],
        ),
        (
            os.path.join("iter1", "eval", "eval.json"),
            _set_accuracy,
            ["eval.json: 'accuracy'", "state.json recorded"],
        ),
    ],
    ids=["curriculum.json kept (item 4)", "eval.json accuracy (item 7)"],
)
def test_a_record_that_disagrees_with_state_json_is_one_line(
    finished_run, tmp_path, file, change, words
):
    args, run_dir = _copy(finished_run, tmp_path)
    _set_json(os.path.join(run_dir, file), change)
    before = _tree_hash(run_dir)
    _refused(args, *words)
    assert _tree_hash(run_dir) == before


def test_a_hand_edited_best_json_is_not_trusted(tmp_path):
    """Item 7: ``RUN_DIR/best`` resolves through best.json only when state.json agrees."""
    record = {"iteration": 1, "weights": {"solver": "iter1/solver/weights"}}
    (tmp_path / "state.json").write_text(json.dumps({"best": record}))
    (tmp_path / "best.json").write_text(json.dumps(record))
    best = str(tmp_path / "best")
    assert resolve_weights(best, "solver") == str(tmp_path / "iter1" / "solver" / "weights")
    edited = {"iteration": 2, "weights": {"solver": "iter2/solver/weights"}}
    (tmp_path / "best.json").write_text(json.dumps(edited))
    with pytest.raises(ValueError, match="best.json: differs from the best iteration"):
        resolve_weights(best, "solver")


def test_patience_and_the_analysis_sample_have_ceilings():
    """The two counts the bounds walk leaves out (their sections are optional)."""
    from rzero_pl.analysis.analyze import Analysis
    from rzero_pl.run.selection import BestIteration

    with pytest.raises(ConfigError, match="selection.patience must be <= 1000"):
        BestIteration(patience=10**30)
    with pytest.raises(ConfigError, match="analysis.sample must be <= 1000000"):
        Analysis(sample=10**30)
    assert BestIteration(patience=1000).patience == 1000
