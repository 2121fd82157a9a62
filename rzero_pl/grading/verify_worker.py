"""The math-verify worker processes of ``rzero_pl.grading.verify_pool`` (this file runs in them).

It is loaded by path in a fresh interpreter, never as part of the ``rzero_pl`` package, so it
imports nothing from rzero-pl. Two entry points, chosen by ``main``'s first argument:

- a worker (``serve``): read ``[id, a, b]`` lines on stdin, answer ``[id, a_b, b_a]`` lines, where
  ``a_b`` is math-verify's ``verify(gold=a, pred=b)`` and ``b_a`` the other direction.
- a zygote (``zygote``): import math-verify and warm its parser once, then ``fork`` a ready
  worker whenever the pool asks, passing the new worker's pipe ends back over a Unix socket.
  A worker killed for overrunning its timeout is then replaced in milliseconds instead of
  the seconds an interpreter takes to import sympy, so the next check never waits for one.
  The zygote never starts a thread, so forking it is safe.

``Verdict``, ``TIMED_OUT``, ``Zygote`` and ``Forked`` at the end are the pool's side (they run
in the pool's process; like the rest of this file they need only the standard library).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence


def main(argv: Sequence[str]) -> None:
    if argv and argv[0] == "zygote":
        zygote(int(argv[1]), int(argv[2]))
    else:
        serve(argv)


def serve(argv: Sequence[str]) -> None:
    """A worker started on its own: stdin and stdout are its pipes to the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business
    # Replies go over a private copy of stdout; stray prints from libraries go to stderr.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    _limit_memory(int(argv[0]) if argv else 0)
    _exit_with_parent()
    check = _warm_checker()
    _answer(check, sys.stdin.buffer, replies)


def zygote(sock_fd: int, memory_limit_mb: int) -> None:
    """Fork a ready worker for every byte the pool sends; exit when the pool goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.setpgid(0, 0)  # a group of our own: on the way out we kill it, workers and all
    os.dup2(2, 1)
    sock = socket.socket(fileno=sock_fd)
    check = _warm_checker()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the workers
    sock.sendall(b"R")
    while True:
        try:
            request = sock.recv(1)
        except OSError:
            break
        if not request:  # the pool closed its end, or died
            break
        to_worker, to_pool = os.pipe(), os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                sock.close()
                os.close(to_worker[1])
                os.close(to_pool[0])
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                _limit_memory(memory_limit_mb)
                _exit_with_parent()
                requests = os.fdopen(to_worker[0], "rb")
                _answer(check, requests, os.fdopen(to_pool[1], "wb"))
            finally:
                os._exit(0)
        os.close(to_worker[0])
        os.close(to_pool[1])
        socket.send_fds(sock, [pid.to_bytes(8, "big")], [to_worker[1], to_pool[0]])
        os.close(to_worker[1])
        os.close(to_pool[0])
    os.killpg(0, signal.SIGKILL)


def _answer(check, requests, replies) -> None:
    replies.write(b'"ready"\n')
    replies.flush()
    for line in requests:
        task_id, a, b = json.loads(line)
        try:
            forward, backward = check(a, b)
        except BaseException:  # RecursionError, MemoryError, sympy bugs: not equivalent
            forward = backward = False
        replies.write(json.dumps([task_id, forward, backward]).encode() + b"\n")
        replies.flush()


def _limit_memory(memory_limit_mb: int) -> None:
    if memory_limit_mb > 0:
        import resource

        limit = memory_limit_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _warm_checker():
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    check = _make_checker()
    try:
        check("\\frac{1}{2}", "0.5")  # warm up the LaTeX parser before the first timed pair
    except Exception:
        pass
    return check


def _make_checker():
    from functools import lru_cache

    from math_verify import parse, verify

    @lru_cache(maxsize=8192)
    def parsed(answer: str) -> tuple:
        # The answers come out of a \boxed{}; parsing them boxed again lets math-verify's LaTeX
        # extractor take the whole content.
        return tuple(parse("\\boxed{" + answer + "}", parsing_timeout=None))

    def check(a: str, b: str) -> tuple[bool, bool]:
        """Both directions: grading needs ``verify(gold, pred)`` alone (it is asymmetric on
        purpose), a vote needs both."""
        pa, pb = list(parsed(a)), list(parsed(b))
        if not pa or not pb:
            return False, False
        forward = bool(verify(pa, pb, timeout_seconds=None))
        return forward, bool(verify(pb, pa, timeout_seconds=None))

    return check


def _exit_with_parent() -> None:
    """Exit when the parent dies, even if it never closed our stdin (e.g. it was SIGKILLed)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


# ---------------------------------------------------------------------- the pool's side


class _TimedOut:
    """The verdict on a pair whose check overran its timeout or crashed: false, but marked."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "TIMED_OUT"


TIMED_OUT = _TimedOut()


class Verdict(tuple):
    """math-verify's verdicts on a pair ``(a, b)``: ``forward`` is ``verify(gold=a, pred=b)``,
    ``backward`` is ``verify(gold=b, pred=a)``. True (as a bool) only when both hold."""

    __slots__ = ()

    def __new__(cls, forward: bool, backward: bool) -> Verdict:
        return super().__new__(cls, (bool(forward), bool(backward)))

    @property
    def forward(self) -> bool:
        return self[0]

    @property
    def backward(self) -> bool:
        return self[1]

    def __bool__(self) -> bool:
        return self[0] and self[1]

    def __eq__(self, other) -> bool:
        if isinstance(other, bool):  # a Verdict is a symmetric verdict when compared to one
            return bool(self) == other
        return tuple.__eq__(self, other)

    def __hash__(self) -> int:
        return tuple.__hash__(self)

    def __repr__(self) -> str:
        return f"Verdict(forward={self[0]}, backward={self[1]})"


class Forked:
    """A worker forked by the zygote, behind the part of ``Popen``'s interface the pool uses.

    It is the zygote's child, not ours: the zygote reaps it, and we see it gone when signal 0
    can no longer reach it.
    """

    def __init__(self, pid: int, to_worker: int, from_worker: int) -> None:
        self.pid = pid
        self.stdin = os.fdopen(to_worker, "wb")
        self.stdout = os.fdopen(from_worker, "rb")
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                self.returncode = -signal.SIGKILL
        return self.returncode

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float | None = None) -> int | None:
        end = time.monotonic() + (timeout if timeout is not None else 3600.0)
        while self.poll() is None and time.monotonic() < end:
            time.sleep(0.005)
        return self.returncode


class Zygote:
    """A process that has imported math-verify once and forks ready workers on request."""

    def __init__(self, boot: str, memory_limit_mb: int | None, start_timeout: float) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        argv = [sys.executable, "-c", boot, __file__, "zygote", str(theirs.fileno())]
        argv.append(str(memory_limit_mb or 0))
        self.proc = subprocess.Popen(argv, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        theirs.close()
        self.sock = ours
        self.sock.settimeout(start_timeout)
        self.ready = False

    def fork(self) -> Forked:
        """A new worker; raises ``OSError`` when the zygote cannot make one."""
        if not self.ready:
            if self.sock.recv(1) != b"R":
                raise OSError("the verify zygote exited before it was ready")
            self.ready = True
            self.sock.settimeout(30.0)
        self.sock.sendall(b"f")
        message, fds, _, _ = socket.recv_fds(self.sock, 8, 2)
        if len(message) != 8 or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            raise OSError("the verify zygote did not fork a worker")
        return Forked(int.from_bytes(message, "big"), fds[0], fds[1])

    def close(self) -> None:
        self.sock.close()  # the zygote exits, and its workers follow within a second
        try:
            self.proc.kill()
            self.proc.wait(timeout=10)
        except Exception:
            pass
