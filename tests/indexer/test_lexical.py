"""Tokenisation for the FTS5 lexical index, checked alone and against a real FTS5 table."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from indexer.lexical import FTS5_TOKENIZE, fts_match_expression, index_text, query_tokens


def test_identifiers_indexed_whole_and_in_parts() -> None:
    terms = index_text("Ticket PPR-9087 touches snake_case code.").split()
    # BM25 counts terms and we never query phrases, so only the multiset matters.
    assert sorted(terms) == sorted(
        ("ticket", "ppr-9087", "ppr", "9087", "touches", "snake_case", "snake", "case", "code")
    )  # the sentence period is not part of `code`


def test_versions_and_decimals() -> None:
    terms = index_text("Upgrade to v2.3.1, not 3.14.").split()
    assert sorted(terms) == sorted(
        ["upgrade", "to", "v2.3.1", "v2", "3", "1", "not", "3.14", "3", "14"]
    )


def test_punctuation_stripped_and_lowercased() -> None:
    assert index_text('The END. (Really?) "Quoted", ok!') == "the end really quoted ok"
    assert index_text("  ...  !!! ") == ""


def test_query_keeps_identifiers_whole_drops_stopwords_and_dedupes() -> None:
    assert query_tokens("What is the PPR-9087 status of PPR-9087?") == ["ppr-9087", "status"]
    assert query_tokens("v2.3.1") == ["v2.3.1"]
    # Plain hyphenated words are also queried in parts: text writes them both ways.
    assert query_tokens("T-cell activation") == ["t-cell", "t", "cell", "activation"]
    # A query of stopwords only keeps them rather than matching nothing.
    assert query_tokens("to be or not to be") == ["to", "be", "or", "not"]
    assert query_tokens("  ?! ") == []


def test_chinese_words_and_subwords() -> None:
    terms = index_text("北京大学的学生。").split()
    assert {"北京", "大学", "北京大学", "学生"} <= set(terms)
    assert "北京" in query_tokens("北京")


def test_match_expression_quotes_and_escapes() -> None:
    assert fts_match_expression(["ppr-9087", "北京"]) == '"ppr-9087" OR "北京"'
    assert fts_match_expression(['say "hi"']) == '"say ""hi"""'
    assert fts_match_expression([]) == ""
    assert fts_match_expression(query_tokens("")) == ""


@pytest.fixture
def fts() -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(":memory:")
    db.execute(f'CREATE VIRTUAL TABLE t USING fts5(terms, tokenize="{FTS5_TOKENIZE}")')
    docs = {
        1: "Incident PPR-9087 was closed after the v2.3.1 release.",
        2: "北京大学是中国著名的高等学府，位于北京市海淀区。",
        3: "Running the tests requires snake_case fixtures.",
        4: "Nothing relevant here at all.",
    }
    db.executemany(
        "INSERT INTO t(rowid, terms) VALUES (?, ?)",
        [(i, index_text(text)) for i, text in docs.items()],
    )
    yield db
    db.close()


def search(db: sqlite3.Connection, query: str) -> list[int]:
    expr = fts_match_expression(query_tokens(query))
    if not expr:
        return []
    rows = db.execute("SELECT rowid FROM t WHERE t MATCH ? ORDER BY bm25(t)", (expr,))
    return [r[0] for r in rows]


def test_fts5_identifier_exact(fts: sqlite3.Connection) -> None:
    assert search(fts, "PPR-9087") == [1]
    assert search(fts, "ppr-9087?") == [1]
    assert search(fts, "PPR-9088") == []
    assert search(fts, "9087") == [1]  # parts were indexed, so partial queries match
    assert search(fts, "v2.3.1") == [1]
    assert search(fts, "snake_case") == [3]


def test_fts5_chinese(fts: sqlite3.Connection) -> None:
    assert search(fts, "北京") == [2]
    assert search(fts, "海淀区在哪里？") == [2]
    assert search(fts, "上海") == []


def test_fts5_porter_stems_english(fts: sqlite3.Connection) -> None:
    assert search(fts, "run test") == [3]
    assert search(fts, "releases") == [1]


def test_fts5_quotes_in_query_are_safe(fts: sqlite3.Connection) -> None:
    expr = fts_match_expression(['"PPR-9087', "OR", "NEAR(", "*"])
    rows = fts.execute("SELECT rowid FROM t WHERE t MATCH ?", (expr,)).fetchall()

    assert rows == [(1,)]  # no syntax error, and the operators were searched as plain words
