"""math-verify verdicts shared by every reward process of a node and kept across steps.

A prompt recurs every epoch, and verl gives it to whichever reward worker (a Ray actor) gets its
chunk: the per-process caches cannot see that the same (gold, answer) was verified last epoch by
another actor. Their symbolic verdicts (the costly ones: 1-150 ms of sympy each) go to one SQLite
file per node, read before a worker call and written after one.

What is stored is a boolean and the shown answer under the verdict cache's own 16-byte key, so
nothing read back is executed; the file name carries the versions of math-verify, latex2sympy2 and
sympy and of this engine's reading (a new version starts a new file). Timeouts and worker errors
are not stored (they depend on load). Any SQLite failure (locked, full, corrupt) is a cache miss,
logged once: the store can make a check cheaper, never fail it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import tempfile
import threading
from importlib.metadata import PackageNotFoundError, version

logger = logging.getLogger(__name__)

# Bump when what a verdict means changes (extraction configs, gold reading): old files are ignored.
ENGINE_READING = "mv-default+boxed-gold-then-as-given/1"
ENV_DIR = "R4B_REWARD_STORE"  # overrides the "auto" directory (tests point it at a temporary one)
MAX_ROWS = 2_000_000  # ~100 MB; past it the oldest tenth is dropped
_TRIM_EVERY = 4096


def _versions() -> str:
    parts = [ENGINE_READING]
    for package in ("math-verify", "latex2sympy2_extended", "sympy"):
        try:
            parts.append(f"{package}={version(package)}")
        except PackageNotFoundError:
            parts.append(f"{package}=?")
    return ";".join(parts)


def store_path(setting: str) -> str | None:
    """The SQLite file for ``reward_kwargs.verdict_store``: "auto", a directory, or "off"/"" (None)."""
    if setting in ("", "off"):
        return None
    if setting == "auto":
        directory = os.environ.get(ENV_DIR) or os.path.join(tempfile.gettempdir(), f"r4b_verl_reward_{os.getuid()}")
    else:
        directory = setting
    tag = hashlib.blake2b(_versions().encode(), digest_size=6).hexdigest()
    return os.path.join(directory, f"verdicts-{tag}.sqlite3")


class VerdictStore:
    def __init__(self, path: str):
        self.path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._puts = 0
        self._failed = False

    def _connection(self) -> sqlite3.Connection | None:
        conn = getattr(self._local, "conn", None)
        if conn is None and not self._failed:
            try:
                os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=0.2, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=OFF")  # a cache: losing the last writes on a crash is fine
                conn.execute("CREATE TABLE IF NOT EXISTS verdicts (key BLOB PRIMARY KEY, equal INTEGER, pred TEXT)")
                self._local.conn = conn
            except (sqlite3.Error, OSError) as exc:
                self._fail(exc)
                return None
        return conn

    def _fail(self, exc: Exception) -> None:
        with self._lock:
            first, self._failed = not self._failed, True
        if first:
            logger.warning("reward: verdict store %s unusable (%s); verdicts are cached per process only "
                           "(set reward_kwargs.verdict_store to another directory, or off)", self.path, exc)

    def get(self, *keys: bytes) -> tuple[bytes, tuple[bool, bool, str | None]] | None:
        """(key, verdict as the verdict cache holds it) for the first of ``keys`` stored, else None."""
        conn = self._connection()
        if conn is None:
            return None
        try:
            for key in keys:
                row = conn.execute("SELECT equal, pred FROM verdicts WHERE key = ?", (key,)).fetchone()
                if row is not None:
                    return key, (bool(row[0]), False, row[1])
        except sqlite3.Error:
            return None  # busy or locked: a miss
        return None

    def put(self, key: bytes, equal: bool, pred: str | None) -> None:
        conn = self._connection()
        if conn is None:
            return
        try:
            conn.execute("INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?)", (key, int(equal), pred))
            with self._lock:
                self._puts += 1
                trim = self._puts % _TRIM_EVERY == 0
            if trim and conn.execute("SELECT max(rowid) - min(rowid) FROM verdicts").fetchone()[0] > MAX_ROWS:
                conn.execute("DELETE FROM verdicts WHERE rowid < (SELECT min(rowid) FROM verdicts) + ?",
                             (MAX_ROWS // 10,))
        except sqlite3.Error:
            pass  # busy: this verdict is just not shared

    def clear(self) -> None:
        conn = self._connection()
        if conn is not None:
            try:
                conn.execute("DELETE FROM verdicts")
            except sqlite3.Error as exc:
                self._fail(exc)


_STORES: dict[str, VerdictStore] = {}
_STORES_LOCK = threading.Lock()


def get_store(setting: str) -> VerdictStore | None:
    path = store_path(setting)
    if path is None:
        return None
    with _STORES_LOCK:
        store = _STORES.get(path)
        if store is None:
            store = _STORES[path] = VerdictStore(path)
        return store


def clear_stores() -> None:
    """Empty every store this process has opened (benchmarks and tests start cold)."""
    get_store("auto")  # the default one too, opened or not: a previous run may have filled it
    with _STORES_LOCK:
        stores = list(_STORES.values())
    for store in stores:
        store.clear()
