"""Sentence boundaries for English and Chinese text, as character spans.

Why a hand-written regex splitter rather than a library: `pysbd` (MIT, pure Python) needs one
language per call, so mixed English/Chinese text is split by one rule set only, and it runs
at a few thousand sentences per second, too slow for the chunker's throughput target;
`blingfire` (MIT) ships a native library and its sentence model does not split Chinese
reliably. The rules below are the ones our documents need (technical English and
simplified Chinese), run as one compiled regex with a cheap check per candidate period.
"""

from __future__ import annotations

import re

# Closing quotes and brackets that belong to the sentence they follow (`。”`, `！」`, `."`).
_CLOSERS = "\"'”’」』）)\\]】》〉〕"

# Ideographs, kana and CJK punctuation ranges: used to accept a boundary before CJK text.
CJK_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff"

# Candidates, in order: a line break; a Chinese terminator run (ASCII !? count too when they
# sit in Chinese text); English `.!?` before whitespace plus something that can start a
# sentence, or before the end of the line; ASCII `!?` directly before CJK text.
_CANDIDATE = re.compile(
    r"\n"
    rf"|[。！？；…!?]*[。！？；…][。！？；…!?]*[{_CLOSERS}]*"
    rf"|[.!?]+[{_CLOSERS}]*"
    rf"(?=[ \t\u3000\r]*(?:\n|$)|\s+[A-Z0-9\"'“‘(\[*`{CJK_CHARS}])"
    rf"|[!?]+[{_CLOSERS}]*(?=[{CJK_CHARS}])"
)

# The token just before a candidate period: the run of non-space characters.
_LAST_TOKEN = re.compile(r"\S+$")

# Lowercased, without the final period. Words that usually end with a period mid-sentence.
# `etc.` is left out on purpose: it ends sentences as often as not.
_ABBREVIATIONS = frozenset(
    """
    e.g i.e mr mrs ms dr prof sr jr st mt fig figs al vs cf approx ca no nos vol vols pp eq
    eqs ref refs sec ch ed eds inc ltd co corp dept est resp viz jan feb mar apr jun jul aug
    sep sept oct nov dec u.s u.k e.u a.m p.m ph.d b.sc m.sc gen gov rev sen rep
    """.split()  # noqa: SIM905 - a word list reads better as text
)

# Initials and dotted acronyms: `J.`, `U.S.A.`, `e.g.` written without the list above.
_DOTTED = re.compile(r"(?:[A-Za-z]\.)*[A-Za-z]")
# List markers: `1.` at the start of a sentence is not a sentence of its own.
_LIST_MARKER = re.compile(r"\d{1,3}|[ivxIVX]{1,4}")

_OPENERS = "\"'“‘([{<*`"


def _is_false_period(text: str, sentence_start: int, dot: int) -> bool:
    """True when the period at `dot` ends an abbreviation, an initial or a list marker."""
    m = _LAST_TOKEN.search(text, max(sentence_start, dot - 40), dot)
    if m is None:
        return False
    token = m.group().lstrip(_OPENERS)
    if not token:
        return False
    if token.lower() in _ABBREVIATIONS or _DOTTED.fullmatch(token):
        return True
    return m.start() == sentence_start and _LIST_MARKER.fullmatch(token) is not None


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Split `text` into sentences; return their `(start, end)` character spans.

    Boundaries: Chinese terminators `。！？；…` (closing quotes and brackets stay with the
    sentence), English `.!?` followed by whitespace and a capital, digit, quote or CJK text
    (or by the end of the line), and every line break. A period does not end a sentence
    after a known abbreviation (`e.g.`, `Dr.`, `Fig.`, `et al.`), an initial or dotted
    acronym (`J.`, `U.S.`), or a list marker opening the sentence (`1.`). Decimals,
    versions, identifiers and URLs are safe because their inner periods are not followed
    by whitespace. Spans exclude surrounding whitespace; whitespace-only pieces are dropped.
    """
    spans: list[tuple[int, int]] = []
    start = 0

    def close(end: int) -> None:
        s, e = start, end
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e:
            spans.append((s, e))

    for m in _CANDIDATE.finditer(text):
        if m.group() == "\n":
            close(m.start())
            start = m.end()
            continue
        if m.group().startswith(".") and not m.group().startswith(".."):
            # A lone period (not an ellipsis) may end an abbreviation instead of a sentence.
            sentence_start = start
            while sentence_start < m.start() and text[sentence_start].isspace():
                sentence_start += 1
            if _is_false_period(text, sentence_start, m.start()):
                continue
        close(m.end())
        start = m.end()
    close(len(text))
    return spans
