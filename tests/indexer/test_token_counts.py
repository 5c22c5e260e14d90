"""Summed per-word counts equal MiniLM's tokenizer exactly, on every kind of text we ingest."""

from __future__ import annotations

import random

import pytest
from tokenizers import Tokenizer

from indexer.providers.onnx_local import minilm_dir
from indexer.providers.token_counts import WordPieceCounter


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    tok = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


TEXTS = [
    "Dr. Smith measured 3.14 units in v2.3.1; see PPR-9087 and snake_case_names.",
    "Vitamin D deficiency (25(OH)D < 20 ng/mL) was associated with fractures [12].",
    "Tabs\tand\nnewlines\r\nand   runs of spaces",
    "Controls: a\x0bb a\x0cb a\x1cb a\x00b a\x7fb end",
    "Accents: café naïve Ångström résumé Straße ÉCOLE",
    "Unicode spaces: a\u00a0b a\u2003b a\u3000b a\u2028b a\u200bb a\u0085b",
    "年假需要提前两周申请，病假超过三天需要证明。混合 English 和中文 text。",
    "日本語のテキストと한국어 텍스트, emoji 🙂🚀 and symbols ∑∫√ ±5%",
    "A very long word: " + "x" * 150 + " and a long identifier " + "ab_" * 60,
    "| col a | col b |\n|---|---|\n| 1 | 2 |\n```python\ndef f(x): return x**2\n```",
    "",
    "   ",
]


def test_summed_counts_equal_the_tokenizer(tokenizer: Tokenizer) -> None:
    counter = WordPieceCounter(tokenizer)
    assert counter.summed  # MiniLM's tokenizer takes the summed path
    for text in TEXTS:
        assert counter(text) == len(tokenizer.encode(text, add_special_tokens=False)), text
        assert counter(text) == counter.encoded(text)  # and again, from the remembered words


ASCII = list("aZ09 .,-_'\"()[]{}<>#|~`^$%&*+/:;=?@!\\\t\n\r")
UNICODE = [
    "\u00a0", "\u2009", "\u3000", "\u2028", "\u202f", "\u200b", "\u0301", "\ufffd",
    "é", "ß", "İ", "Ǆ", "中", "文", "。", "，", "ア", "한", "🙂", "∑", "—", "“",
]  # fmt: skip
CONTROLS = ["\x0b", "\x0c", "\x1d", "\x00", "\x85", "\x9f", "\x7f"]


@pytest.mark.parametrize(
    "alphabet",
    [ASCII, ASCII + UNICODE, ASCII + UNICODE + CONTROLS],
    ids=["ascii", "unicode", "controls"],
)
def test_summed_counts_equal_the_tokenizer_on_random_mixtures(
    tokenizer: Tokenizer, alphabet: list[str]
) -> None:
    rng = random.Random(11)
    counter = WordPieceCounter(tokenizer)
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 80)))
        assert counter(text) == len(tokenizer.encode(text, add_special_tokens=False)), repr(text)


def test_a_tokenizer_that_is_not_bert_wordpiece_is_counted_by_encoding() -> None:
    from tokenizers import models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    counter = WordPieceCounter(tok)
    assert not counter.summed
    assert counter("a b a") == 3
