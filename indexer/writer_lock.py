"""One writer per data directory: an advisory `flock` on DATA_DIR/ingest.lock.

The kernel drops the lock when the holder dies (even by SIGKILL), so a crash never leaves a
stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from indexer.errors import Locked


class WriterLock:
    """Exclusive write access; waits up to `timeout` seconds, then raises `Locked`.

    The holder writes its pid and `operation` (e.g. `delete`) into the lock file, so the
    refusal says what is writing and which operation was refused.
    """

    def __init__(self, data_dir: Path, timeout: float = 0.0, *, operation: str = "write") -> None:
        self.path = data_dir / "ingest.lock"
        self.timeout = timeout
        self.operation = operation
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").split(maxsplit=1)
                    os.close(fd)
                    pid = holder[0] if holder else "unknown"
                    what = holder[1] if len(holder) > 1 else "a writer"
                    raise Locked(
                        f"cannot {self.operation}: {self.path.parent} is locked by pid {pid} "
                        f"({what}); wait for it to finish and try again"
                    ) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {self.operation}".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
