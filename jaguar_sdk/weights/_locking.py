"""An advisory lock file that only saves work: it never guards correctness.

Modal Volumes have no locking across containers (and a file created in one container is seen by
another only after a ``commit()`` there and a ``reload()`` here), so two containers can both
believe they hold this lock. The weight store is correct anyway (unique staging folders, publish
by atomic rename, verify what won); the lock only keeps a second container from downloading the
same 34 GB at the same time in the common case.

The lock file is created with ``O_CREAT | O_EXCL`` and holds its owner (host, pid, a random id)
and a timestamp. The holder touches it every ``heartbeat_s`` seconds; a lock whose last touch is
older than ``stale_after_s``, or whose owner is a dead process on this host, is broken.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

__all__ = ["LockFile"]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class LockFile:
    """An advisory, stale-able lock file.

    Args:
        path: The lock file.
        stale_after_s: A lock not touched for this long is considered abandoned.
        heartbeat_s: How often the holder touches the lock.

    Example:
        >>> lock = LockFile(Path("/weights/.locks/model.lock"))  # doctest: +SKIP
        >>> if lock.try_acquire():
        ...     try: ...
        ...     finally: lock.release()
    """

    def __init__(self, path: Path, *, stale_after_s: float = 600.0, heartbeat_s: float = 15.0):
        self.path = path
        self.stale_after_s = stale_after_s
        self.heartbeat_s = heartbeat_s
        self.owner = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "id": uuid.uuid4().hex,
        }
        self._held = False
        #: Whether :meth:`try_acquire` broke an abandoned lock (its holder died mid-work).
        self.broke_stale = False
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    @property
    def held(self) -> bool:
        """Whether this object created the lock file (and has not released it)."""
        return self._held

    def read(self) -> dict[str, Any] | None:
        """The current lock's owner record, or ``None`` when there is no readable lock."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def is_stale(self, now: float | None = None) -> bool:
        """Whether an existing lock was abandoned (not touched lately, or its process died)."""
        now = time.time() if now is None else now
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            return True
        if now - mtime > self.stale_after_s:
            return True
        owner = self.read()
        if owner and owner.get("host") == socket.gethostname():
            pid = owner.get("pid")
            if isinstance(pid, int) and pid != os.getpid() and not _pid_alive(pid):
                return True
        return False

    def try_acquire(self) -> bool:
        """Create the lock file if no live lock exists; break a stale one first.

        Returns:
            Whether this object now holds the lock.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self.is_stale():
                    return False
                self.break_lock()
                self.broke_stale = True
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({**self.owner, "created_at": time.time()}, fh)
            self._held = True
            self._start_heartbeat()
            return True
        return False

    def break_lock(self) -> None:
        """Remove a (stale) lock file, whoever holds it."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def release(self) -> None:
        """Stop the heartbeat and remove the lock file if it is still ours."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
        if self._held:
            current = self.read()
            if current is None or current.get("id") == self.owner["id"]:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
        self._held = False

    def _start_heartbeat(self) -> None:
        self._stop.clear()

        def beat() -> None:
            while not self._stop.wait(self.heartbeat_s):
                with contextlib.suppress(OSError):
                    os.utime(self.path)

        self._beat = threading.Thread(target=beat, name="jaguar-lock-heartbeat", daemon=True)
        self._beat.start()
