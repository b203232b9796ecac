"""Exclusive ownership of a folder across processes and machines that share it.

A lock is a file created with ``O_CREAT | O_EXCL`` (atomic on local disks and on NFSv3+),
holding its owner's host, pid and start time. The owner touches it every `HEARTBEAT` seconds
while it holds it. A lock is stale, and is taken over, when its owner is on this host and its
pid is gone (kill -9) or is this process, which no longer holds it (a worker process reused
after its trial ended), or when it is on another host and has not been touched for `STALE`
seconds (a machine lost). Taking over renames the stale file away first, so of two processes
that find the same stale lock only one takes it.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

from xscale.errors import XScaleError

HEARTBEAT = 20.0
STALE = 180.0
_HELD: set[str] = set()  # tokens of the locks this process holds now


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def read_owner(path: Path) -> dict | None:
    """The lock's owner record, or None when there is no lock (or it was just released)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8") or "{}")
    except FileNotFoundError:
        return None
    except (ValueError, OSError):
        return {}  # being written, or not ours: treat as held, judge by its age


def _stale(path: Path, owner: dict) -> bool:
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False
    if owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int):
        if owner["pid"] == os.getpid():  # ours: stale unless held now (a reused worker process)
            return owner.get("token") not in _HELD
        return not _alive(owner["pid"])
    return age > STALE


def describe(owner: dict | None) -> str:
    if not owner:
        return "another process"
    since = time.strftime("%H:%M:%S", time.localtime(owner.get("time", 0)))
    return f"pid {owner.get('pid')} on {owner.get('host')} (since {since})"


class FolderLock:
    """``with FolderLock(path):`` or `acquire(wait=...)` / `release()`."""

    def __init__(self, path: Path, what: str = ""):
        self.path = Path(path)
        self.what = what or str(self.path.parent)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def try_acquire(self) -> bool:
        record = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "time": time.time(),
            "token": self.token,
        }
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = read_owner(self.path)
                if owner is None:
                    continue  # released in between: try again
                if not _stale(self.path, owner):
                    return False
                aside = self.path.with_name(f"{self.path.name}.stale-{self.token}")
                try:
                    os.rename(self.path, aside)  # one of the racers wins the stale file
                except FileNotFoundError:
                    continue
                aside.unlink(missing_ok=True)
                continue
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(record, f)
            except OSError as e:  # a full disk: an empty lock would look held for STALE s
                self.path.unlink(missing_ok=True)
                raise XScaleError(
                    f"{self.what}: cannot write its lock {self.path} ({e.strerror})"
                ) from None
            _HELD.add(self.token)
            self._start_heartbeat()
            return True
        return False

    def acquire(self, wait: float | None = None, say=None, poll: float = 2.0) -> None:
        """Take the lock, waiting up to `wait` seconds (None: for good; 0: not at all).
        `say(line)` is told once who holds it while waiting."""
        deadline = None if wait is None else time.monotonic() + wait
        told = False
        while not self.try_acquire():
            owner = read_owner(self.path)
            if deadline is not None and time.monotonic() >= deadline:
                raise XScaleError(f"{self.what} is in use by {describe(owner)}")
            if say is not None and not told:
                say(f"waiting: {self.what} is in use by {describe(owner)}")
                told = True
            time.sleep(poll)

    def _start_heartbeat(self) -> None:
        self._stop.clear()

        def beat():
            while not self._stop.wait(HEARTBEAT):
                try:
                    os.utime(self.path)
                except FileNotFoundError:
                    return

        self._beat = threading.Thread(target=beat, name="xscale-lock", daemon=True)
        self._beat.start()

    def release(self) -> None:
        self._stop.set()
        _HELD.discard(self.token)
        owner = read_owner(self.path)
        if owner and owner.get("token") == self.token:
            self.path.unlink(missing_ok=True)

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
