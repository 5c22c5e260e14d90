"""The data directory holds documents' text and API key hashes: only its owner may read it.

Directories are created 0700 and the SQLite catalog 0600 (SQLite gives its `-wal` and
`-shm` files the database file's mode). Existing paths keep the mode the operator chose.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["make_private_dir", "make_private_file"]


def make_private_dir(path: Path) -> None:
    """Create `path` (and missing parents) readable by its owner only."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    for created in missing:
        os.chmod(created, 0o700)  # mkdir's mode passes through the umask; be exact


def make_private_file(path: Path) -> None:
    """Create an empty `path` with mode 0600 unless it exists."""
    make_private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)
