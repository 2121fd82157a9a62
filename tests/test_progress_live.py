"""Live progress inside a phase (issue 26 item 2): done / total, elapsed and ETA, a live bar on
a terminal and a line at most every 30 s in a log, with a fake clock. The lines of a whole
(shrunk) toy run are read in ``test_a_toy_runs_log_shows_each_long_step_with_its_eta``."""

from __future__ import annotations

import importlib.util
import io
import json
import re
import subprocess
import sys

import pytest
from test_red_team import TOY, _refused
from test_red_team_bounds import no_model  # noqa: F401  (a fixture)

from rzero_pl import progress as live
from rzero_pl.errors import ConfigError
from rzero_pl.progress import Progress, advance, eta, line, set_interval


class Clock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _log(total=1000, per=10, interval=30.0):
    clock, stream = Clock(), io.StringIO()
    work = Progress(
        total, "curriculum votes", "questions", per, interval=interval, clock=clock, stream=stream
    )
    return work, clock, stream  # a log: the stream is no terminal


def test_the_eta_is_the_rate_so_far_by_hand():
    # 250 of 1000 in 60 s: 4.17 a second, 750 left: 180 s
    assert eta(250, 1000, 60.0) == 180.0
    assert eta(0, 1000, 60.0) is None  # no rate before the first report
    assert eta(1000, 1000, 60.0) == 0.0
    assert line("curriculum votes", 250, 1000, "questions", 60.0) == (
        "curriculum votes: 250/1000 questions (25%) · elapsed 1m 00s · ETA 3m 00s"
    )
    assert line("toy base build", 0, 1500, "steps", 3.0, "loss 2.100") == (
        "toy base build: 0/1500 steps (0%) · elapsed 3s · ETA ? · loss 2.100"
    )


def test_a_log_gets_a_line_at_most_every_30_seconds_and_one_at_the_end():
    work, clock, stream = _log()
    with work:
        for second in range(1, 100):  # a batch of 10 votes (one question) every second
            clock.now += 1
            advance(10)
            if second == 29:
                assert stream.getvalue() == ""  # not yet 30 s
    lines = stream.getvalue().splitlines()
    assert lines == [
        # at 30 s: 30 of 1000 questions, 970 left at 1 a second
        "curriculum votes: 30/1000 questions (3%) · elapsed 30s · ETA 16m 10s",
        "curriculum votes: 60/1000 questions (6%) · elapsed 1m 00s · ETA 15m 40s",
        "curriculum votes: 90/1000 questions (9%) · elapsed 1m 30s · ETA 15m 10s",
        "curriculum votes: 99/1000 questions (9%) · elapsed 1m 39s · ETA 15m 01s",  # the end
    ]


def test_work_shorter_than_the_interval_prints_nothing():
    work, clock, stream = _log(total=5, per=1)
    with work:
        for _ in range(5):
            clock.now += 5
            advance(1)
    assert stream.getvalue() == ""


def test_the_interval_is_the_runs_setting_and_0_is_a_line_per_report():
    set_interval(0)
    try:
        work, clock, stream = _log(total=4, per=2, interval=None)
        with work:
            for _ in range(8):
                clock.now += 1
                advance(1)
    finally:
        set_interval(live.INTERVAL)
    # one line per report, done counted in questions (2 votes each)
    assert [x.split(" · ")[0] for x in stream.getvalue().splitlines()] == [
        "curriculum votes: 0/4 questions (0%)",
        "curriculum votes: 1/4 questions (25%)",
        "curriculum votes: 1/4 questions (25%)",
        "curriculum votes: 2/4 questions (50%)",
        "curriculum votes: 2/4 questions (50%)",
        "curriculum votes: 3/4 questions (75%)",
        "curriculum votes: 3/4 questions (75%)",
        "curriculum votes: 4/4 questions (100%)",
    ]
    with pytest.raises(ConfigError, match="^progress_interval must be >= 0"):
        set_interval(-1)


def test_a_terminal_gets_one_live_bar_not_a_line_per_report():
    clock, stream = Clock(), io.StringIO()
    work = Progress(10, "solver generation", "completions", clock=clock, stream=stream, live=True)
    with work:
        for _ in range(10):
            clock.now += 6
            advance(1)
        assert work.bar is not None
        work.bar.refresh()
        shown = stream.getvalue()
    assert "solver generation: 10/10 completions (100%) · elapsed 1m 00s · ETA 0s" in shown
    assert "━" in shown  # rich's bar
    assert shown.count("\n") <= 2  # redrawn in place (cursor moves), never a line per report


def test_reports_go_to_the_innermost_work_open_and_nowhere_when_none_is():
    advance(5)  # an engine generating outside any progress line: nothing happens
    outer, _, _ = _log(total=10, per=1)
    inner, _, _ = _log(total=10, per=1)
    with outer:
        advance(1)
        with inner:
            advance(3)
        advance(2)
    assert (outer.done, inner.done) == (3, 3)
    assert not live.reporting()


def test_only_rank_zero_shows_it(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    work, clock, stream = _log(total=10, per=1, interval=0)
    with work:
        clock.now += 1
        advance(10)
    assert stream.getvalue() == "" and work.done == 10


def test_the_toy_base_build_reports_its_steps_and_loss(tmp_path, capsys):
    from rzero_pl.toy.pretrain import pretrain

    set_interval(0)
    try:
        pretrain(str(tmp_path), steps=3)
    finally:
        set_interval(live.INTERVAL)
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("toy base build")]
    assert [x.split(" · ")[0] for x in lines] == [
        f"toy base build: {k}/3 steps ({100 * k // 3}%)" for k in (1, 2, 3)
    ]
    assert all(re.search(r" · ETA \S+ · loss \d+\.\d{3}$", x) for x in lines), lines


def test_vllms_bar_hands_finished_completions_to_the_open_work():
    """vLLM's ``use_tqdm`` callable: ``update(n)`` per finished request (its n completions)
    counts; its bar over the requests it adds (an iteration) does not."""
    from rzero_pl.engines.vllm_support import progress_bar

    assert progress_bar() is False  # nothing open: vLLM draws no bar
    work, _, stream = _log(total=12, per=1)
    with work:
        bar_class = progress_bar()
        assert list(bar_class(range(3), desc="Adding requests")) == [0, 1, 2]
        bar = bar_class(total=3, desc="Processed prompts", dynamic_ncols=True, postfix="")
        for _ in range(3):
            bar.update(4)  # a request of n = 4 completions finished
            assert bar.format_dict["elapsed"] >= 0
        bar.close()
    assert work.done == 12 and stream.getvalue() == ""


@pytest.mark.slow  # vLLM's CPU start-up (about 15 s)
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm is not installed")
def test_the_vllm_engine_reports_each_request_as_it_finishes(tmp_path):
    """A request of n samples is a question's votes: it counts when vLLM finishes it."""
    from builders import build_tiny_model

    from rzero_pl.engines import SamplingParams
    from rzero_pl.engines.vllm import VLLMEngine
    from rzero_pl.models import PretrainedModel
    from rzero_pl.models.policy import Policy

    folder = build_tiny_model(str(tmp_path / "model"), hidden=128)  # vLLM's CPU head sizes
    engine = VLLMEngine(dtype="float32", kv_cache_memory_bytes=64 << 20, enforce_eager=True)
    engine.attach(Policy(PretrainedModel(folder, dtype="float32"), lora=None))
    params = SamplingParams(n=4, max_new_tokens=16, seed=0)
    stream = io.StringIO()
    try:
        with Progress(6, "curriculum votes", "questions", 4, interval=0, stream=stream) as work:
            engine.generate([f"Solve: 1 + {i}\n" for i in range(6)], role="solver", params=params)
        engine.generate(["Solve: 2 + 2\n"], role="solver", params=params)  # none open: no bar
    finally:
        engine.close()
    assert work.done == 6
    assert [x.split(" · ")[0] for x in stream.getvalue().splitlines()] == [
        f"curriculum votes: {k}/6 questions ({100 * k // 6}%)" for k in range(1, 7)
    ]


def test_the_hf_engine_reports_each_batch_as_it_finishes(tiny_model_dir):
    """``HFEngine`` reports its rows batch by batch (4 prompts x 3 samples, a few a batch)."""
    from rzero_pl.engines import HFEngine, SamplingParams
    from rzero_pl.models.policy import Policy
    from rzero_pl.models.sources import PretrainedModel

    policy = Policy(PretrainedModel(tiny_model_dir, dtype="float32"), lora=None)
    engine = HFEngine(max_batch_tokens=64)
    engine.attach(policy)
    seen = []

    class Recording(Progress):
        def advance(self, reports=1, note=None):
            seen.append(reports)
            super().advance(reports, note)

    params = SamplingParams(n=3, max_new_tokens=8, seed=0)
    with Recording(12, "solver generation", "completions", stream=io.StringIO()) as work:
        engine.generate(["a b", "c d", "e f", "g h"], role="solver", params=params)
    assert sum(seen) == 12 and len(seen) > 1 and work.done == 12


@pytest.mark.slow  # a shrunk one-iteration toy run in a subprocess (about a minute)
def test_a_toy_runs_log_shows_each_long_step_with_its_eta(tmp_path):
    """Run as a user runs it, into a log (not a terminal), with ``--progress_interval=0``
    (every finished batch gets a line): each kind of long step shows done/total, elapsed and
    ETA; the default 30 s keeps a shrunk run's log free of them (``test_quiet_logs``)."""
    from test_evolution import _toy_args

    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "rzero_pl", *_toy_args(run_dir), "--progress_interval=0"],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    log = done.stderr + done.stdout
    found = re.findall(r"^(.+): (\d+)/(\d+) (\w+) \(\d+%\) · elapsed \S+ · ETA (\S+)", log, re.M)
    kinds = {label for label, *_ in found}
    assert {
        "toy scoring",
        "challenger generation",
        "challenger's votes",
        "curriculum questions",
        "curriculum votes",
        "solver generation",
    } <= kinds, sorted(kinds)
    last = {}  # each step's last line: at its total, nothing left
    for label, done_, total, _, left in found:
        assert 0 <= int(done_) <= int(total), (label, done_, total)
        last[label] = (done_, total, left)
    assert all(d == t and left == "0s" for d, t, left in last.values()), last
    votes = [int(total) for label, _, total, _, _ in found if label == "curriculum votes"]
    valid = json.loads((run_dir / "iter1" / "curriculum" / "curriculum.json").read_text())
    assert set(votes) == {valid["valid"]}  # questions voted on / the valid ones of N


@pytest.mark.usefixtures("no_model")
@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_a_bad_progress_interval_is_one_line_before_the_model_loads(tmp_path, value):
    args = ["fit", "--config", TOY, f"--evolution.run_dir={tmp_path / 'run'}"]
    _refused([*args, f"--progress_interval={value}"], "progress_interval")
