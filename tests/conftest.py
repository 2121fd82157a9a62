"""Shared fixtures: a tiny local causal LM (no hub access), built once per session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One thread per test process: the suite runs on two pytest-xdist workers (README), and two
# processes each spinning torch's default of one thread per core oversubscribe the machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    # Imported here, not at the top: builders imports Lightning, which, imported before
    # pytest's log capture is in place, stops its loggers propagating (caplog would see nothing).
    from builders import build_tiny_model

    return build_tiny_model(str(tmp_path_factory.mktemp("tiny_model")))


@pytest.fixture(scope="session")
def finished_toy_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, float]:
    """The kill-and-resume tests' shrunk toy evolution (tests/toy_runs.py), run once for the
    session (a subprocess of a minute or two): the reference the kill tests compare with and the finished run folder
    the red-team tests damage copies of. (config, run folder, seconds of work after start-up).

    Under pytest-xdist the first worker to need it runs it, in the folder all workers share
    (the parent of each worker's base temp folder), and the others wait on the lock and read
    what it recorded; nobody writes to the run folder afterwards."""
    import json
    import pathlib

    from filelock import FileLock
    from toy_runs import uninterrupted_run

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return uninterrupted_run(tmp_path_factory.mktemp("finished_toy_run"))
    shared = pathlib.Path(tmp_path_factory.getbasetemp().parent) / "finished_toy_run"
    record = shared / "run.json"
    with FileLock(f"{shared}.lock"):
        if not record.exists():
            shared.mkdir(exist_ok=True)
            record.write_text(json.dumps(uninterrupted_run(shared)))
    config, run_dir, work = json.loads(record.read_text())
    return config, run_dir, work


@pytest.fixture(scope="session")
def toy_questions_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    import json

    path = tmp_path_factory.mktemp("questions") / "questions.jsonl"
    rows = [
        {"problem": f"What is {a} + {b}?", "answer": str(a + b)} for a in range(5) for b in range(4)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


REBUILD_TEST = "test_a_rebuild_reaches_the_shipped_accuracy"
_REBUILD = pytest.StashKey[tuple]()


def _start_rebuild() -> tuple[subprocess.Popen, str]:
    """``python -m rzero_pl.toy.model --build`` into a fresh cache folder, on one thread."""
    folder = tempfile.mkdtemp(prefix="rzero-rebuild-")
    env = {**os.environ, "RZERO_PL_CACHE": folder, "OMP_NUM_THREADS": "1"}
    with open(os.path.join(folder, "build.log"), "w") as log:
        command = [sys.executable, "-m", "rzero_pl.toy.model", "--build"]
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    return process, folder


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest first: the toy base's rebuild (about 6.5 minutes of pretraining on one thread),
    then the tests marked slow, then the rest, each in file order. Under pytest-xdist
    (``--dist worksteal``) the rebuild starts at once on the first worker and runs there, while
    the other worker works through the queue and takes tests from the busy one when its own
    run out. Without xdist the rebuild starts now, in a subprocess beside the other tests, and
    its test scores the finished build."""
    items.sort(
        key=lambda item: 0 if item.name == REBUILD_TEST else 1 if "slow" in item.keywords else 2
    )
    if items and items[0].name == REBUILD_TEST and not os.environ.get("PYTEST_XDIST_WORKER"):
        config.stash[_REBUILD] = _start_rebuild()


@pytest.fixture()
def toy_rebuild(request: pytest.FixtureRequest) -> str:
    """The cache folder holding the rebuilt default toy base (waits for the build)."""
    if _REBUILD not in request.config.stash:  # under xdist: this worker builds it now
        request.config.stash[_REBUILD] = _start_rebuild()
    process, folder = request.config.stash[_REBUILD]
    process.wait(timeout=3600)  # only catches a hang: the build takes minutes
    with open(os.path.join(folder, "build.log")) as log:
        assert process.returncode == 0, log.read()[-2000:]
    return folder


def pytest_sessionfinish(session: pytest.Session) -> None:
    process, folder = session.config.stash.get(_REBUILD, (None, None))
    if process is not None:
        if process.poll() is None:  # the test was not reached (-x, Ctrl-C)
            process.kill()
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)
