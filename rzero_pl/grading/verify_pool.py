"""Worker processes that check answer equivalence with math-verify under a hard wall-clock timeout.

math-verify can spin for minutes inside sympy (``9^{9^{9^{9}}}`` never finishes), and its own
timeout is a ``signal.alarm`` that only works in the main thread of the main interpreter. So the
checks run in separate worker processes with math-verify's alarms turned off
(``parsing_timeout=None``, ``timeout_seconds=None``), and the parent enforces the deadline by
killing a worker that overruns and starting a fresh one in its place.

Workers are never forks of the parent, which holds torch threads. A zygote, a fresh interpreter
(``subprocess`` with ``exec``) that loads ``verify_worker.py`` by path and imports math-verify
once, forks each worker on request, so a replacement costs milliseconds; without a zygote a
worker is a fresh interpreter of its own. Neither imports the ``rzero_pl`` package nor the
parent's ``__main__`` (as multiprocessing's ``spawn`` would). Parent and worker speak one JSON line per message over the worker's
stdin/stdout.

One dispatcher thread per pool owns the workers; callers from any thread submit pairs and get
``concurrent.futures.Future`` objects back. A future resolves to a ``Verdict`` (math-verify's
``verify(a, b)`` and ``verify(b, a)``; true when both hold), ``TIMED_OUT`` (falsy: the check
overran its timeout or crashed its worker) or ``None`` (never checked: the pool was closed, or
its workers cannot start).
"""

from __future__ import annotations

import atexit
import itertools
import json
import logging
import math
import os
import select
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from rzero_pl.grading.verify_worker import TIMED_OUT, Verdict, Zygote

__all__ = ["TIMED_OUT", "Verdict", "VerifyPool", "default_workers", "shared_pool"]

log = logging.getLogger(__name__)

# A worker or the zygote runs this with ``python -c``: drop the working directory from sys.path,
# load verify_worker.py as a plain module (no package import) and run it.
_BOOT = (
    "import sys, importlib.util as u; del sys.path[0]; "
    "s = u.spec_from_file_location('_rzero_pl_verify_worker', sys.argv[1]); "
    "m = u.module_from_spec(s); s.loader.exec_module(m); m.main(sys.argv[2:])"
)
_WORKER_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "verify_worker.py")
_START_FAILURES_BEFORE_GIVING_UP = 3
_LOOKAHEAD = 64  # queued pairs a free worker looks through for an answer it has parsed before
_PARSED = 8192  # answers a worker keeps parsed (its parse cache), mirrored here
_PIPELINED_CHARS = 2000  # JSON-escaped, at most 12 kB: two fit in a 64 kB pipe
_REAP_INTERVAL = 0.05  # seconds between looks at killed workers that are not gone yet


def default_workers() -> int:
    """CPUs this process may run on (``os.cpu_count()`` where affinity is unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class _Task:
    __slots__ = ("id", "a", "b", "timeout", "future")

    def __init__(self, task_id: int, a: str, b: str, timeout: float) -> None:
        self.id, self.a, self.b, self.timeout = task_id, a, b, timeout
        self.future: Future = Future()


class _Worker:
    """The parent's handle on one worker process."""

    def __init__(
        self, memory_limit_mb: int | None, start_timeout: float, zygote: Zygote | None = None
    ) -> None:
        if zygote is not None:
            self.proc: Any = zygote.fork()
        else:
            argv = [sys.executable, "-c", _BOOT, _WORKER_FILE, str(memory_limit_mb or 0)]
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.fd = self.proc.stdout.fileno()
        self.buf = b""
        self.ready = False
        self.start_deadline = time.monotonic() + start_timeout
        self.inflight: deque[_Task] = deque()  # sent, in order; the head is being computed
        self.deadline = float("inf")  # when the head task overruns
        self.parsed: dict[str, None] = {}  # the answers it has parsed, least recent first

    def send(self, task: _Task) -> None:
        line = json.dumps([task.id, task.a, task.b]).encode() + b"\n"
        if not self.inflight:
            self.deadline = time.monotonic() + task.timeout
        self.inflight.append(task)
        self.proc.stdin.write(line)
        self.proc.stdin.flush()
        for answer in (task.a, task.b):
            self.parsed.pop(answer, None)
            self.parsed[answer] = None
        while len(self.parsed) > _PARSED:
            del self.parsed[next(iter(self.parsed))]

    def kill(self, wait: bool = True) -> None:
        """SIGKILL the worker and close our pipe ends; ``wait``: also wait until it is gone."""
        try:
            self.proc.kill()
            if wait:
                self.proc.wait(timeout=10)
        except Exception:  # already gone, or unkillable: nothing more to do here
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except Exception:
                pass


class VerifyPool:
    """A pool of math-verify worker processes with a hard per-pair timeout.

    Args:
        workers: Number of worker processes; defaults to the CPUs available.
        depth: Pairs sent ahead to each worker, so that it never waits for the dispatcher. The
            deadline of a pair starts when the worker begins it, not when it was queued.
        start_timeout: Seconds a worker may take to import math-verify and report ready.
        memory_limit_mb: Address-space limit of each worker (``None``: none); a check that runs
            out of memory answers ``False`` instead of swapping the machine.
        zygote: Fork workers from one process that has imported math-verify already
            (``rzero_pl.grading.verify_worker``), so that a killed worker is replaced in milliseconds;
            False starts each worker as a fresh interpreter (seconds each).

    The workers start on first use, in the background; ``close()`` (also run at exit) kills them.
    """

    def __init__(
        self,
        workers: int | None = None,
        depth: int = 2,
        start_timeout: float = 120.0,
        memory_limit_mb: int | None = 4096,
        zygote: bool = True,
    ) -> None:
        self.workers = workers or default_workers()
        self.zygote = zygote
        self.depth = max(1, depth)
        self.start_timeout = start_timeout
        self.memory_limit_mb = memory_limit_mb
        self.replaced = 0  # workers killed for overrunning or crashing, then replaced
        self._reset()
        _LIVE_POOLS.add(self)

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._pending: deque[_Task] = deque()
        self._ids = itertools.count()
        self._procs: list[_Worker] = []
        self._dying: list = []  # killed workers not yet gone
        self._zygote: Zygote | None = None
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = -1, -1
        self._closing = False
        self._broken = False
        self.closed = False

    # ------------------------------------------------------------------ callers' side

    def submit_many(self, pairs: Sequence[tuple[str, str]], timeout: float) -> list[Future]:
        """Queue pairs for checking; each future resolves to a verdict (see the module doc)."""
        if os.getpid() != self._pid:  # we are a fork of the owner: its workers are not ours
            self._reset()
        tasks = [_Task(next(self._ids), a, b, float(timeout)) for a, b in pairs]
        with self._lock:
            if self.closed or self._broken:
                for task in tasks:
                    task.future.set_result(None)
                return [task.future for task in tasks]
            self._pending.extend(tasks)
            self._start_dispatcher()
        self._wake()
        return [task.future for task in tasks]

    def start(self) -> None:
        """Start the workers now, in the background, and return at once.

        A caller about to generate calls it, so that the workers' start-up (a fresh interpreter
        importing math-verify: 1-3 s on a busy 2-core machine) runs beside the generation
        instead of inside the first vote's wait. Nothing happens on a closed or broken pool.
        """
        if os.getpid() != self._pid:
            self._reset()
        with self._lock:
            if not (self.closed or self._broken):
                self._start_dispatcher()

    def _start_dispatcher(self) -> None:
        """Start the dispatcher thread (it starts the workers) unless it runs; hold the lock."""
        if self._thread is None:
            self._wake_r, self._wake_w = os.pipe()
            os.set_blocking(self._wake_w, False)  # a full pipe means awake already
            self._thread = threading.Thread(target=self._run, name="rzero-verify-pool", daemon=True)
            self._thread.start()

    def map(self, pairs: Sequence[tuple[str, str]], timeout: float) -> list:
        """Check many pairs and wait for all of them."""
        return [future.result() for future in self.submit_many(pairs, timeout)]

    def close(self) -> None:
        """Kill the workers and stop the dispatcher; pairs still queued resolve to None."""
        if os.getpid() != self._pid or self.closed:
            return
        with self._lock:
            self.closed = self._closing = True
            thread = self._thread
        if thread is not None:
            self._wake()
            thread.join(timeout=30)
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1
        _LIVE_POOLS.discard(self)

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:  # closed, or the pipe is full of earlier wake-ups: either way awake
            pass

    # ------------------------------------------------------------------ the dispatcher thread

    def _run(self) -> None:
        try:
            self._procs = [self._spawn() for _ in range(self.workers)]
            start_failures = 0
            while not self._closing:
                self._dispatch()
                now = time.monotonic()
                wakeup = min(
                    (w.deadline if w.ready else w.start_deadline for w in self._procs),
                    default=float("inf"),
                )
                if self._dying:  # look again soon, to reap them
                    wakeup = min(wakeup, now + _REAP_INTERVAL)
                wait = None if wakeup == float("inf") else max(0, math.ceil(1000 * (wakeup - now)))
                poller = select.poll()  # not select(): fds above 1024 are common in trainers
                for fd in [self._wake_r] + [w.fd for w in self._procs]:
                    poller.register(fd, select.POLLIN)
                readable = {fd for fd, _ in poller.poll(wait)}
                if self._wake_r in readable:
                    os.read(self._wake_r, 4096)
                self._reap()
                now = time.monotonic()
                for w in list(self._procs):
                    if w.fd in readable and not self._read(w):
                        start_failures = 0 if w.ready else start_failures + 1
                        self._replace(w, "exited")
                    elif w.ready and now >= w.deadline:
                        self._replace(w, "overran its timeout")
                    elif not w.ready and now >= w.start_deadline:
                        start_failures += 1
                        self._replace(w, "did not start in time")
                if start_failures >= _START_FAILURES_BEFORE_GIVING_UP:
                    log.error("math-verify workers keep failing to start; equivalence is off")
                    with self._lock:
                        self._broken = True
                    break
        except Exception:
            log.exception("verify pool dispatcher failed")
            with self._lock:
                self._broken = True
        finally:
            for w in self._procs:
                w.kill()
                for task in w.inflight:
                    task.future.set_result(None)
            with self._lock:
                leftover, self._pending = list(self._pending), deque()
            for task in leftover:
                task.future.set_result(None)
            self._procs = []
            for proc in self._dying:
                try:
                    proc.wait(timeout=10)
                except Exception:
                    pass
            self._dying = []
            if self._zygote is not None:
                self._zygote.close()
                self._zygote = None

    def _spawn(self) -> _Worker:
        """A worker forked by the zygote; a fresh interpreter if the zygote fails."""
        if self.zygote and self._zygote is None:
            self._zygote = Zygote(_BOOT, self.memory_limit_mb, self.start_timeout)
        if self._zygote is not None:
            try:
                return _Worker(self.memory_limit_mb, self.start_timeout, self._zygote)
            except OSError:
                log.warning("verify zygote failed; starting workers as fresh interpreters")
                self._zygote.close()
                self._zygote, self.zygote = None, False
        return _Worker(self.memory_limit_mb, self.start_timeout)

    def _dispatch(self) -> None:
        """Hand queued pairs to ready workers, up to ``depth`` in flight each.

        Parsing is most of a check's cost, so a worker takes, from near the head of the queue,
        a pair with an answer it has already parsed when there is one.
        """
        for w in self._procs:
            while w.ready and len(w.inflight) < self.depth:
                with self._lock:
                    if not self._pending:
                        return
                    task = self._take(w)
                if task is None:
                    break
                try:
                    w.send(task)
                except OSError:  # the worker died; its EOF is read next round
                    w.inflight.pop()
                    with self._lock:
                        self._pending.appendleft(task)
                    break

    def _take(self, w: _Worker) -> _Task | None:
        # A busy worker reads its next pair only when done, so it gets only pairs small enough
        # to wait in the pipe: a blocked write would stall the dispatcher and every deadline.
        pending, busy = self._pending, bool(w.inflight)
        for i in range(min(len(pending), _LOOKAHEAD)):
            task = pending[i]
            if busy and len(task.a) + len(task.b) > _PIPELINED_CHARS:
                continue
            if task.a in w.parsed or task.b in w.parsed:
                del pending[i]
                return task
        if busy and len(pending[0].a) + len(pending[0].b) > _PIPELINED_CHARS:
            return None
        return pending.popleft()

    def _read(self, w: _Worker) -> bool:
        """Read a worker's replies; False when it has exited."""
        data = os.read(w.fd, 1 << 16)
        if not data:
            return False
        w.buf += data
        *lines, w.buf = w.buf.split(b"\n")
        for line in lines:
            try:
                message = json.loads(line)
            except ValueError:  # not ours: skip it
                continue
            if message == "ready":
                w.ready = True
            elif w.inflight and w.inflight[0].id == message[0]:
                w.inflight.popleft().future.set_result(Verdict(message[1], message[-1]))
                if w.inflight:
                    w.deadline = time.monotonic() + w.inflight[0].timeout
                else:
                    w.deadline = float("inf")
        return True

    def _replace(self, w: _Worker, why: str) -> None:
        """Kill a worker, answer TIMED_OUT for the pair it was computing, requeue the rest."""
        w.kill(wait=False)  # waited for below, once nobody waits on it
        self._procs[self._procs.index(w)] = self._spawn()  # before anyone hears of the loss
        if w.ready:
            self.replaced += 1
            head = w.inflight[0] if w.inflight else None
            pair = (head.a[:80], head.b[:80]) if head else None
            log.debug("verify worker %d %s on %r; replacing it", w.proc.pid, why, pair)
        else:
            log.warning("verify worker %d %s before it was ready", w.proc.pid, why)
        if w.inflight:
            w.inflight.popleft().future.set_result(TIMED_OUT)
            with self._lock:
                self._pending.extendleft(reversed(w.inflight))
        # Reaped later by _reap: a dying worker can take a while to free its memory, and
        # waiting for it here would hold up every other worker's deadline.
        self._dying.append(w.proc)

    def _reap(self) -> None:
        """Forget killed workers that are gone (``poll`` reaps one that is our child)."""
        self._dying = [proc for proc in self._dying if proc.poll() is None]


_LIVE_POOLS: weakref.WeakSet[VerifyPool] = weakref.WeakSet()
_shared: VerifyPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> VerifyPool:
    """The process-wide pool used by ``rzero_pl.grading.answers`` (created on first use)."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.closed:
            _shared = VerifyPool()
        return _shared


@atexit.register
def _close_all() -> None:
    for pool in list(_LIVE_POOLS):
        pool.close()
