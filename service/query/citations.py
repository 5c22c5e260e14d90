"""Citation markers in answers: `[n]` checked against the numbered sources and renumbered.

The first source an answer cites becomes [1], the next new one [2], and so on; markers naming
no source are dropped with the space before them. `Renumbering` does this as text streams in,
holding back only a marker that may still be incomplete, so every streamed piece already
carries the final numbers and the pieces add up to the final answer.
"""

from __future__ import annotations

import re

__all__ = ["Renumbering", "neutralise_markers", "snippet", "validate_citations"]

_SEPARATOR = r"\s*[,，、]\s*"
_ONE = rf"\[\d{{1,3}}(?:{_SEPARATOR}\d{{1,3}})*\]"
_PARTIAL = rf"\[(?:\d{{1,3}}(?:{_SEPARATOR}\d{{0,3}})*)?"
# A run of adjacent markers (`[7][2]`, `[1, 3]`) with the spaces before it, handled as one.
_MARKER = re.compile(rf"(?P<space>[ \t]*)(?P<run>(?:{_ONE})+)")
# The end of a buffer that may still grow: trailing spaces, markers and a marker begun.
_OPEN_TAIL = re.compile(rf"[ \t]*(?:{_ONE})*(?:{_PARTIAL})?$")
_BRACKETED_NUMBER = re.compile(rf"\[(\d{{1,3}}(?:{_SEPARATOR}\d{{1,3}})*)\]")


class Renumbering:
    """Rewrites citation markers against `source_count` numbered sources, piece by piece.

    `order[i - 1]` is the original source number that new number `i` cites.
    """

    def __init__(self, source_count: int) -> None:
        self.source_count = source_count
        self.order: list[int] = []
        self._held = ""

    def feed(self, text: str) -> str:
        """The renumbered text that is safe to show now (a possible marker start is held)."""
        buffer = self._held + text
        tail = _OPEN_TAIL.search(buffer)
        cut = tail.start() if tail else len(buffer)  # it always matches, at worst empty
        self._held = buffer[cut:]
        return _MARKER.sub(self._renumber, buffer[:cut])

    def flush(self) -> str:
        """Whatever is still held, renumbered: call once the text is complete."""
        held, self._held = self._held, ""
        return _MARKER.sub(self._renumber, held)

    def _renumber(self, match: re.Match[str]) -> str:
        kept: list[int] = []
        for raw in re.findall(r"\d+", match.group("run")):
            n = int(raw)
            if not 1 <= n <= self.source_count:
                continue
            if n not in self.order:
                self.order.append(n)
            new = self.order.index(n) + 1
            if new not in kept:
                kept.append(new)
        if not kept:
            return ""  # a marker naming no source goes, with the space before it
        return match.group("space") + "".join(f"[{n}]" for n in kept)


def validate_citations(answer: str, source_count: int) -> tuple[str, list[int]]:
    """Drop markers naming no source; renumber the rest 1.. in order of first use.

    Returns the rewritten answer and the original source numbers in their new order, so that
    new number `i` cites original source `order[i - 1]`.
    """
    renumbering = Renumbering(source_count)
    text = renumbering.feed(answer) + renumbering.flush()
    return text, renumbering.order


def neutralise_markers(text: str) -> str:
    """Document text with its own `[n]` written `(n)`, so it can never pass for a citation."""
    return _BRACKETED_NUMBER.sub(r"(\1)", text)


def snippet(text: str, limit: int = 240) -> str:
    """The start of a chunk, cut at a word boundary, for showing beside a citation."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit * 0.6 else cut) + "…"
