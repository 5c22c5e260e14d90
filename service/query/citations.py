"""Citation markers in answers: `[n]` checked against the numbered sources and renumbered."""

from __future__ import annotations

import re

_MARKER = re.compile(r"\[(\d{1,3}(?:\s*[,，、]\s*\d{1,3})*)\]")
_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+([,.;:!?，。；：！？])")


def validate_citations(answer: str, source_count: int) -> tuple[str, list[int]]:
    """Drop markers naming no source; renumber the rest 1.. in order of first use.

    Returns the rewritten answer and the original source numbers in their new order, so that
    new number `i` cites original source `order[i - 1]`.
    """
    order: list[int] = []

    def renumber(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.split(r"\s*[,，、]\s*", match.group(1))]
        kept: list[int] = []
        for n in numbers:
            if 1 <= n <= source_count:
                if n not in order:
                    order.append(n)
                new = order.index(n) + 1
                if new not in kept:
                    kept.append(new)
        return "".join(f"[{n}]" for n in kept)

    rewritten = _MARKER.sub(renumber, answer)
    rewritten = _SPACE_BEFORE_PUNCT.sub(r"\1", rewritten)
    return rewritten, order


def snippet(text: str, limit: int = 240) -> str:
    """The start of a chunk, cut at a word boundary, for showing beside a citation."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit * 0.6 else cut) + "…"
