"""Exact token counts for a BERT WordPiece tokenizer, summed from cached per-word counts.

Chunking counts every sentence of every document, and a call into the Rust tokenizer costs
~60-80 us a sentence, most of it building the full encoding (ids, offsets, masks) to throw
away. BERT's normaliser and pre-tokeniser never join text across whitespace (nor across
punctuation), so a text's count is the sum of its words' counts: words repeat, so each is
counted once and remembered. The sums are exact (tested against the tokenizer on every
dataset here), not estimates: 4x faster than encoding on first sight of a corpus, 10x after.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["WordPieceCounter"]

# C0 and C1 control characters but tab, newline and carriage return: BERT's normaliser deletes
# them, while Python's str.split() cuts at some (\x0b, \x0c, \x1c-\x1f, \x85) and would split a
# word BERT keeps whole, so text holding any of them is counted by encoding it whole. Every
# other character str.split() cuts at is Unicode White_Space, where BERT cuts too.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

# In ASCII text BERT cuts at whitespace and around every punctuation character (all printable
# ASCII that is not a letter or digit), so lowercased text splits into these pieces exactly;
# runs of letters and digits repeat far more often than whitespace-separated words do.
_ASCII_PIECE = re.compile(r"[a-z0-9]+|[^a-z0-9\s]")

_MAX_WORDS = 200_000  # remembered words; the table is dropped and refilled past this


class WordPieceCounter:
    """`counter(text)` == `len(tokenizer.encode(text, add_special_tokens=False))` for a BERT
    WordPiece tokenizer (MiniLM's), at a fraction of the cost. Any other tokenizer is counted
    by encoding, unchanged."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._words: dict[str, int] = {}
        self.summed = (
            type(tokenizer.normalizer).__name__ == "BertNormalizer"
            and type(tokenizer.pre_tokenizer).__name__ == "BertPreTokenizer"
            and type(tokenizer.model).__name__ == "WordPiece"
            and _lowercases(tokenizer)
        )

    def encoded(self, text: str) -> int:
        """The count straight from the tokenizer (the reference the sums must equal)."""
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def __call__(self, text: str) -> int:
        if not self.summed:
            return self.encoded(text)
        if _CONTROL.search(text) is not None:
            return self.encoded(text)
        # Lowercasing is exact for ASCII (the model is uncased); other text is cut at
        # whitespace only and its words are normalised by the tokenizer itself.
        words = _ASCII_PIECE.findall(text.lower()) if text.isascii() else text.split()
        table = self._words
        total = 0
        for word in words:
            n = table.get(word)
            if n is None:
                if len(table) >= _MAX_WORDS:
                    table.clear()
                n = table[word] = len(self._tokenizer.encode(word, add_special_tokens=False))
            total += n
        return total


def _lowercases(tokenizer: Any) -> bool:
    """The ASCII fast path lowercases: only valid for an uncased model (MiniLM is)."""
    import json

    normalizer = json.loads(tokenizer.to_str()).get("normalizer") or {}
    return bool(normalizer.get("lowercase"))
