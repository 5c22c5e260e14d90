"""The guard every zip-based format passes before parsing: bounded size, ratio and entry count.

Office files (docx, pptx, xlsx), OpenDocument files and EPUB are zip archives. A small file
whose entries unpack to gigabytes (a decompression bomb) would otherwise exhaust memory
inside the XML library. The central directory declares every entry's unpacked size, and
`zipfile` never inflates an entry past its declared size (it stops there and checks the
CRC), so checking the declared sizes before any entry is read bounds the work.
"""

from __future__ import annotations

import io
import zipfile

from indexer.errors import ParseError

__all__ = ["MAX_ENTRIES", "MAX_RATIO", "MAX_UNPACKED_BYTES", "check_zip", "open_zip", "read_entry"]

MAX_UNPACKED_BYTES = 256 * 1024 * 1024
# Real office XML compresses 5-40x (measured on the docling samples: at most 41x); a bomb
# compresses 1000x. Small entries are exempt: their ratio says nothing and costs nothing.
MAX_RATIO = 200
_RATIO_FLOOR_BYTES = 1024 * 1024
MAX_ENTRIES = 20_000


def check_zip(archive: zipfile.ZipFile, kind: str) -> None:
    """Raise `ParseError` if `archive` would unpack too much or too suspiciously."""
    entries = archive.infolist()
    if len(entries) > MAX_ENTRIES:
        raise ParseError(f"{kind} has {len(entries):,} zip entries; the limit is {MAX_ENTRIES:,}")
    total = 0
    for entry in entries:
        total += entry.file_size
        if total > MAX_UNPACKED_BYTES:
            raise ParseError(
                f"{kind} unpacks to over {MAX_UNPACKED_BYTES // (1024 * 1024)} MiB "
                "(a decompression bomb?); refused before reading it"
            )
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size > _RATIO_FLOOR_BYTES and ratio > MAX_RATIO:
            raise ParseError(
                f"{kind} entry {entry.filename!r} expands {ratio:,.0f}x "
                f"(limit {MAX_RATIO}x; a decompression bomb?); refused before reading it"
            )


def open_zip(data: bytes, kind: str) -> zipfile.ZipFile:
    """Open `data` as a zip archive that passed `check_zip`; `kind` names the format in errors."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise ParseError(f"not a {kind} file (not a readable zip archive)") from exc
    try:
        check_zip(archive, kind)
    except ParseError:
        archive.close()
        raise
    return archive


def read_entry(archive: zipfile.ZipFile, name: str, kind: str) -> bytes:
    """One entry's bytes; a missing or damaged entry is a `ParseError`."""
    try:
        return archive.read(name)
    except KeyError as exc:
        raise ParseError(f"not a {kind} file (no {name} inside the zip)") from exc
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ParseError(f"corrupt {kind}: {name} cannot be unpacked ({exc})") from exc
