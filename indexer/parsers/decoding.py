"""Bytes to text for text-based formats: BOMs, strict UTF-8, then charset detection."""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

from indexer.errors import ParseError

# Longest BOMs first: the UTF-32 LE BOM starts with the UTF-16 LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_GB_CODECS = frozenset({"gb2312", "gbk", "gb18030", "hz"})
_MAX_CONTROL_RATIO = 0.05
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f]")  # control characters but tab, newlines, \f, \v
_SNIFF_BYTES = 64 * 1024


def _codec_name(name: str) -> str:
    return codecs.lookup(name).name


def _check_not_binary(text: str) -> None:
    if "\x00" in text:
        raise ParseError("binary data in a text file (NUL characters)")
    sample = text[:_SNIFF_BYTES]
    controls = len(_CONTROL.findall(sample))
    if sample and controls / len(sample) > _MAX_CONTROL_RATIO:
        raise ParseError("binary data in a text file (too many control characters)")


def _utf16_without_bom(data: bytes) -> str | None:
    """Recognise BOM-less UTF-16 of mostly ASCII text by its pattern of zero bytes."""
    if len(data) < 4 or len(data) % 2:
        return None
    even_zeros = data[0::2].count(0) / (len(data) // 2)
    odd_zeros = data[1::2].count(0) / (len(data) // 2)
    if odd_zeros > 0.9 and even_zeros < 0.1:
        encoding = "utf-16-le"
    elif even_zeros > 0.9 and odd_zeros < 0.1:
        encoding = "utf-16-be"
    else:
        return None
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _detect(data: bytes) -> str:
    matches = from_bytes(data[: _SNIFF_BYTES * 4])
    best = matches.best()
    if best is None:
        raise ParseError("binary data in a text file (no text encoding fits)")
    # Short GBK text often ties with Korean/Japanese codecs; Chinese is the likelier reading here.
    tied = [m.encoding for m in matches if m.chaos <= best.chaos]
    if any(_codec_name(enc) in _GB_CODECS for enc in tied):
        try:
            return data.decode("gb18030")
        except UnicodeDecodeError:
            pass
    return data.decode(best.encoding, errors="replace")


def _decode_by_bom(data: bytes) -> str | None:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding)
            except UnicodeDecodeError as exc:
                raise ParseError(f"invalid {encoding} text after its byte-order mark") from exc
    return None


def decode_text(data: bytes) -> str:
    """Decode the bytes of a text file.

    Order: byte-order mark, BOM-less UTF-16 (only when NUL bytes are present), strict
    UTF-8, then charset-normalizer (GB18030 preferred when it ties with other guesses).
    Raises `ParseError` for empty, whitespace-only or binary input.
    """
    if not data:
        raise ParseError("file is empty")
    text = _decode_by_bom(data)
    if text is None and b"\x00" in data:
        # NUL bytes are valid UTF-8, so BOM-less UTF-16 must be recognised first.
        text = _utf16_without_bom(data)
        if text is None:
            raise ParseError("binary data in a text file (NUL bytes)")
    if text is None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = _detect(data)
    return ensure_text(text)


def ensure_text(text: str) -> str:
    """Return decoded `text` unchanged, or raise `ParseError` if it is binary or blank."""
    _check_not_binary(text)
    if not text.strip():
        raise ParseError("file contains only whitespace")
    return text


def encoding_from_label(label: str) -> str | None:
    """Map a declared charset (e.g. from an HTML meta tag) to a Python codec, or None."""
    try:
        name = _codec_name(label.strip().strip("'\""))
    except LookupError:
        return None
    # Pages labelled gb2312/gbk routinely contain characters only GB18030 has.
    return "gb18030" if name in {"gb2312", "gbk"} else name
