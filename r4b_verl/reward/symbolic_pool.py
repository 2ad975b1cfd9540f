"""Deadline-bounded calls into ``symbolic_worker`` child processes, safe from any thread.

verl runs a synchronous reward in the event loop's thread-pool executor of each reward worker
(a Ray actor), so the caller is never a main thread and ``signal.alarm`` is not available. The
deadline therefore lives in the parent as a ``select`` on the child's pipe, and the child is killed
when it overruns; nothing here blocks without a timeout.

Each slot is one child process with a lock; a gold answer always goes to the same slot
(``hash(gold) % workers``) so its parsed form is cached in one place and a group's answers are
verified one after another, each reusing the verdicts of the ones before it.

Children are started with ``subprocess`` (fork+exec of the same interpreter), not
``multiprocessing``: no fork of a threaded Ray actor, no re-import of the actor's ``__main__``.
A child exits when its stdin closes, so it cannot outlive the reward process.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

logger = logging.getLogger(__name__)

_WORKER_MODULE = __name__.rsplit(".", 1)[0] + ".symbolic_worker"
_STARTUP_GRACE_S = 120.0  # longest start-up (importing sympy on a loaded node); waited within the caller's budget


@dataclass
class Verdict:
    equal: bool = False
    first_ok: bool = False
    timeout: bool = False  # the check itself overran (soft or hard deadline): counted, cacheable
    waited_out: bool = False  # no worker became free in time: counted, not cacheable
    error: str | None = None
    pred: str | None = None  # the answer math-verify extracted (None: none found or not known)

    @property
    def transient(self) -> bool:
        """No verdict about the answer (worker busy, dead or garbled): count it, never cache it."""
        return self.waited_out or self.error in ("bad reply", "worker unavailable")


class _Slot:
    def __init__(self, memory_mb: int):
        self.lock = threading.Lock()
        self.memory_mb = memory_mb
        self.proc: subprocess.Popen | None = None
        self.ready = False
        self.started_at = 0.0
        self._buffer = b""

    def _start(self) -> None:
        env = dict(os.environ)
        # The child must import this package exactly as the parent did (Ray working dirs, editable installs).
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        env["R4B_REWARD_WORKER_MEMORY_MB"] = str(self.memory_mb)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", _WORKER_MODULE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            env=env,
            close_fds=True,
            start_new_session=True,  # a Ctrl-C to the trainer's process group does not hit it mid-answer
        )
        self.ready = False
        self.started_at = time.monotonic()
        self._buffer = b""

    def kill(self) -> None:
        proc, self.proc = self.proc, None
        self.ready = False
        if proc is not None:
            try:
                proc.kill()
                proc.wait(timeout=5)
            except Exception:  # noqa: BLE001 - already gone
                pass
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except Exception:  # noqa: BLE001
                    pass

    def _read_line(self, deadline: float) -> bytes | None:
        """One line from the child, or None at the deadline or if the child died."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            # Past the deadline this still polls once, so a line already in the pipe is not thrown away.
            readable, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0.0))
            if not readable:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def _ensure_ready(self, deadline: float) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            self.kill()
            self._start()
        if not self.ready:
            line = self._read_line(min(deadline, self.started_at + _STARTUP_GRACE_S))
            if line is None:
                code = self.proc.poll()
                if code is None and time.monotonic() < self.started_at + _STARTUP_GRACE_S:
                    # Still importing when this caller's wait ran out: keep it for the next caller
                    # rather than kill it and make that one start from scratch.
                    return False
                if code is not None:
                    # An environment problem, not an answer: say so loudly (its traceback is on stderr).
                    logger.error(
                        "reward: the symbolic worker (%s -m %s) exited with code %s at start-up; math answers "
                        "that need a symbolic check score 0 until it starts", sys.executable, _WORKER_MODULE, code,
                    )
                self.kill()
                return False
            self.ready = True
        return True

    def call(self, gold: str, pred: str, timeout_s: float, hard_grace_s: float, wait_deadline: float) -> Verdict:
        """Caller holds ``self.lock``."""
        for _attempt in range(2):  # a child that died between calls is restarted once
            if not self._ensure_ready(wait_deadline):
                return Verdict(waited_out=True)
            request = json.dumps({"gold": gold, "pred": pred, "timeout": timeout_s}) + "\n"
            try:
                self.proc.stdin.write(request.encode("utf-8"))
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                self.kill()
                continue
            line = self._read_line(time.monotonic() + timeout_s + hard_grace_s)
            if line is None:
                # Stuck in C code, or died mid-answer (e.g. the memory cap): replace it.
                self.kill()
                self._start()  # start importing now so the next caller waits less
                return Verdict(timeout=True, error="killed")
            try:
                reply = json.loads(line)
            except ValueError:
                self.kill()
                return Verdict(error="bad reply")
            return Verdict(
                equal=bool(reply.get("equal")),
                first_ok=bool(reply.get("first_ok")),
                timeout=bool(reply.get("timeout")),
                error=reply.get("error"),
                pred=reply.get("pred"),
            )
        return Verdict(error="worker unavailable")


class SymbolicPool:
    def __init__(self, workers: int, memory_mb: int):
        if workers < 1:
            raise ValueError(f"reward_kwargs.workers must be >= 1, got {workers}")
        self.slots = [_Slot(memory_mb) for _ in range(workers)]
        self.kills = 0

    @contextmanager
    def slot_for(self, gold: str, max_wait_s: float):
        """The slot serving ``gold``, locked, or None if it stayed busy for ``max_wait_s``.

        Callers re-check their verdict cache once inside: the answers of a group queue here and
        all but the first find the verdict already computed.
        """
        slot = self.slots[hash(gold) % len(self.slots)]
        if not slot.lock.acquire(timeout=max_wait_s):
            yield None
            return
        try:
            yield slot
        finally:
            slot.lock.release()

    def call(self, slot: _Slot, gold: str, pred: str, timeout_s: float, hard_grace_s: float,
             wait_deadline: float) -> Verdict:
        """Run one check on a slot the caller holds (``slot_for``)."""
        verdict = slot.call(gold, pred, timeout_s, hard_grace_s, wait_deadline)
        if verdict.error == "killed":
            self.kills += 1
        return verdict

    def close(self) -> None:
        for slot in self.slots:
            # At exit a caller may still hold the lock; the child is killed either way.
            locked = slot.lock.acquire(timeout=1.0)
            try:
                slot.kill()
            finally:
                if locked:
                    slot.lock.release()


_POOLS: dict[tuple[int, int], SymbolicPool] = {}
_POOLS_LOCK = threading.Lock()


def get_pool(workers: int, memory_mb: int) -> SymbolicPool:
    """The process-wide pool for these settings (one per reward process, created on first use)."""
    key = (workers, memory_mb)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = SymbolicPool(workers, memory_mb)
        return pool


@atexit.register
def _close_pools() -> None:
    for pool in list(_POOLS.values()):
        pool.close()
