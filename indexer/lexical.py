"""Tokenisation for the SQLite FTS5 lexical index.

FTS5 stores pre-tokenised text (tokens joined by single spaces) and its tokenizer,
`FTS5_TOKENIZE`, keeps `-`, `.` and `_` inside tokens, so what we emit passes through whole.
English: lowercased words; identifiers such as `PPR-9087`, `v2.3.1` and `snake_case` are
indexed whole and in parts, but queried whole only, so `PPR-9088` does not match `PPR-9087`
while `ppr` or `9087` alone still do. Chinese: jieba's search mode (words plus their
sub-words) plus character bigrams, chosen by measurement (`scripts/measure_lexical.py`:
on CMRC 2018 it ties char unigrams+bigrams on nDCG@10 and has the best recall@10).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import rjieba

from indexer.sentences import CJK_CHARS

# `porter` stems English at index and query time inside FTS5 (measured on SciFact: nDCG@10
# 0.674 -> 0.684, recall@10 0.796 -> 0.815; CMRC unchanged). Identifiers pass through whole:
# Porter's suffix rules only touch the end of a token (`PPR-9087` and `v2.3.1` are unchanged).
# No double quotes in it: the catalog wraps it in them.
FTS5_TOKENIZE = "porter unicode61 remove_diacritics 2 tokenchars '-._'"

# A CJK run, or a word of letters/digits/underscores with inner `-` `.` `_` joins. Trailing
# punctuation (`end.`, `v2.3.1,`) is not part of a word because a join needs a char after it.
_TOKEN = re.compile(rf"(?P<cjk>[{CJK_CHARS}]+)|[^\W{CJK_CHARS}]+(?:[-._][^\W{CJK_CHARS}]+)*")
_PARTS = re.compile(r"[-._]+")
_WORD = re.compile(rf"[^\W{CJK_CHARS}]+(?:[-._][^\W{CJK_CHARS}]+)*")
_CJK_RUN = re.compile(rf"[{CJK_CHARS}]")
# Plain hyphenated words (`t-cell`, `anti-inflammatory`) are also queried in parts, since
# text writes them both ways; identifiers with digits, dots or underscores are not.
_HYPHENATED = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)+")

# Words that carry no topic in an English query. Dropping them keeps the OR short, so a query
# does not score every chunk containing "the" (measured neutral on SciFact nDCG@10).
_STOPWORDS = frozenset(
    """
    a an and are as at be been being but by can could did do does for from had has have how
    i if in into is it its may might me my no not of on or our should so such than that the
    their them then there these they this those to was we were what when where which while
    who whom why will with would you your
    """.split()  # noqa: SIM905 - a word list reads better as text
)


def chinese_words(run: str) -> list[str]:
    """A run of Chinese text cut into words (jieba's precise mode, with its HMM)."""
    return rjieba.cut(run, True)


def _cjk_words(run: str, bigrams: bool) -> list[str]:
    # jieba's search mode through rjieba (jieba-rs: the same dictionary and algorithm, ~13x
    # faster; on CMRC 2018's 45,659 Chinese runs it differs from Python jieba on one).
    words = [w for w in rjieba.cut_for_search(run, True) if not w.isspace()]
    if bigrams:
        # Character bigrams catch words jieba segments differently in query and document.
        words.extend(run[i : i + 2] for i in range(len(run) - 1))
    return words


def _tokens(text: str, *, query: bool, bigrams: bool = True) -> Iterator[str]:
    for m in _TOKEN.finditer(text.lower()):
        run = m.group("cjk")
        if run is not None:
            yield from _cjk_words(run, bigrams)
            continue
        word = m.group()
        yield word
        if "-" not in word and "." not in word and "_" not in word:
            continue  # a plain word (most of them): nothing to split
        if query and not _HYPHENATED.fullmatch(word):
            continue  # identifiers are queried whole: `ppr` must not match `PPR-9088`
        pieces = [p for p in _PARTS.split(word) if p]
        if len(pieces) > 1 or (pieces and pieces[0] != word):
            yield from pieces


def index_text(text: str) -> str:
    """The string stored in FTS5 for a chunk: its tokens joined by single spaces.

    Identifiers are indexed whole and in their parts; Chinese as jieba search-mode words
    and character bigrams.
    """
    lowered = text.lower()
    if _CJK_RUN.search(lowered) is None:
        # Fast path for text without CJK (most chunks): one C-level findall. FTS5 ranks by
        # term frequencies, not positions, so the parts may follow the whole words.
        words: list[str] = _WORD.findall(lowered)
        parts = [
            part
            for word in words
            if "-" in word or "." in word or "_" in word
            for part in _PARTS.split(word)
            if part
        ]
        return " ".join(words + parts)
    return " ".join(_tokens(text, query=False))


def query_tokens(text: str) -> list[str]:
    """The tokens of a query, deduplicated in order; identifiers whole, stopwords dropped.

    If a query consists only of stopwords, they are kept (better than matching nothing).
    """
    seen = dict.fromkeys(_tokens(text, query=True))
    kept = [t for t in seen if t not in _STOPWORDS]
    return kept or list(seen)


def fts_match_expression(tokens: Sequence[str]) -> str:
    """An FTS5 MATCH expression: the tokens quoted (`"` doubled) and OR-ed; "" if none."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in tokens if t)
