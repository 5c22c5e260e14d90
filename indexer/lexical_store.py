"""The lexical (full-text) index beside the catalog, one implementation per database.

Chunk text is pre-tokenised by `indexer.lexical` (jieba for Chinese, identifiers kept whole),
so the database only has to split on spaces. SQLite: one FTS5 table per collection, rowid =
chunk id, BM25. PostgreSQL: one `chunk_lexical` table of tsvectors with a GIN index.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    ForeignKey,
    Index,
    MetaData,
    Table,
    Text,
    cast,
    column,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy.dialects.postgresql import TSQUERY, TSVECTOR

from indexer.lexical import FTS5_TOKENIZE, fts_match_expression, query_tokens
from indexer.schema import chunks, documents


class LexicalIndex(Protocol):
    """Full-text rows for chunks. Every method runs inside the caller's transaction."""

    def create(self, conn: Connection, collection_id: int) -> None: ...
    def drop(self, conn: Connection, collection_id: int) -> None: ...
    def add(
        self, conn: Connection, collection_id: int, rows: Sequence[tuple[int, str]]
    ) -> None: ...
    def remove(self, conn: Connection, collection_id: int, chunk_ids: Sequence[int]) -> None: ...
    def search(
        self,
        conn: Connection,
        collection_id: int,
        query: str,
        limit: int,
        condition: ColumnElement[bool] | None = None,
    ) -> list[tuple[int, float]]: ...
    def count(self, conn: Connection, collection_id: int) -> int: ...
    def document_frequencies(
        self, conn: Connection, collection_id: int, phrases: Sequence[Sequence[str]]
    ) -> list[int]:
        """Chunks containing each phrase (its tokens adjacent, in order), per phrase."""
        ...


def fts_table(collection_id: int) -> str:
    return f"chunks_fts_{int(collection_id)}"


class SqliteLexicalIndex:
    """FTS5 with BM25 ranking. All methods run inside the caller's transaction."""

    def create(self, conn: Connection, collection_id: int) -> None:
        conn.exec_driver_sql(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {fts_table(collection_id)} "
            f'USING fts5(terms, tokenize="{FTS5_TOKENIZE}")'
        )

    def drop(self, conn: Connection, collection_id: int) -> None:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {fts_table(collection_id)}")

    def add(self, conn: Connection, collection_id: int, rows: Sequence[tuple[int, str]]) -> None:
        if rows:
            conn.execute(
                text(f"INSERT INTO {fts_table(collection_id)}(rowid, terms) VALUES (:id, :terms)"),
                [{"id": chunk_id, "terms": terms} for chunk_id, terms in rows],
            )

    def remove(self, conn: Connection, collection_id: int, chunk_ids: Sequence[int]) -> None:
        if chunk_ids:
            conn.execute(
                text(f"DELETE FROM {fts_table(collection_id)} WHERE rowid = :id"),
                [{"id": chunk_id} for chunk_id in chunk_ids],
            )

    def search(
        self,
        conn: Connection,
        collection_id: int,
        query: str,
        limit: int,
        condition: ColumnElement[bool] | None = None,
    ) -> list[tuple[int, float]]:
        """Best chunks for `query` as (chunk id, BM25 score, higher is better)."""
        expression = fts_match_expression(query_tokens(query))
        if not expression:
            return []
        if condition is None:
            # The hot path: plain SQL skips ~2 ms of statement building per query.
            name = fts_table(collection_id)
            rows = conn.exec_driver_sql(
                f"SELECT rowid, bm25({name}) AS rank FROM {name} WHERE {name} MATCH ? "
                "ORDER BY rank LIMIT ?",
                (expression, limit),
            ).all()
            return [(int(r[0]), -float(r[1])) for r in rows]
        fts = table(fts_table(collection_id), column("rowid"))
        rank = func.bm25(literal_column(fts.name)).label("rank")
        stmt = (
            select(fts.c.rowid, rank)
            .select_from(fts)
            .where(text(f"{fts.name} MATCH :q").bindparams(q=expression))
            .order_by(rank)
            .limit(limit)
        )
        if condition is not None:
            allowed = (
                select(chunks.c.id)
                .join(documents, documents.c.id == chunks.c.document_id)
                .where(chunks.c.collection_id == collection_id, condition)
            )
            stmt = stmt.where(fts.c.rowid.in_(allowed))
        rows = conn.execute(stmt).all()
        return [(int(r[0]), -float(r[1])) for r in rows]

    def count(self, conn: Connection, collection_id: int) -> int:
        return int(
            conn.exec_driver_sql(f"SELECT count(*) FROM {fts_table(collection_id)}").scalar_one()
        )

    def document_frequencies(
        self, conn: Connection, collection_id: int, phrases: Sequence[Sequence[str]]
    ) -> list[int]:
        name = fts_table(collection_id)
        out = []
        for phrase in phrases:
            # One FTS5 phrase: `"a b"` matches the tokens a, b adjacent and in order.
            expression = '"' + " ".join(t.replace('"', '""') for t in phrase) + '"'
            row = conn.exec_driver_sql(
                f"SELECT count(*) FROM {name} WHERE {name} MATCH ?", (expression,)
            ).scalar_one()
            out.append(int(row))
        return out


# --- PostgreSQL ---------------------------------------------------------------------------

pg_metadata = MetaData()

# One table for all collections (PostgreSQL has no per-table FTS machinery to keep apart).
# Rows vanish with their chunk through the foreign key, whatever deletes it.
chunk_lexical = Table(
    "chunk_lexical",
    pg_metadata,
    Column(
        "chunk_id",
        BigInteger,
        ForeignKey(chunks.c.id, ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("collection_id", BigInteger, nullable=False),
    Column("tsv", TSVECTOR, nullable=False),
    Index("ix_chunk_lexical_tsv", "tsv", postgresql_using="gin"),
    Index("ix_chunk_lexical_collection", "collection_id"),
)

_MAX_LEXEME_BYTES = 2046  # PostgreSQL refuses longer lexemes ("word is too long")
_MAX_POSITION = 16383  # tsvector positions saturate here
_MAX_POSITIONS = 256  # positions kept per lexeme
_STEMMABLE = re.compile(r"[a-z]")


def _quote_lexeme(lexeme: str) -> str:
    """A lexeme as tsvector/tsquery input: quoted, with `'` and `\\` doubled."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def tsvector_literal(tokens: Sequence[str]) -> str:
    """tsvector input text for tokens in order, with 1-based positions (`'a':1,4 'b':2`).

    Built here rather than by `to_tsvector`, whose parser would split `PPR-9087` and `v2.3.1`.
    """
    positions: dict[str, list[int]] = {}
    for pos, token in enumerate(tokens, start=1):
        if token and len(token.encode()) <= _MAX_LEXEME_BYTES:
            kept = positions.setdefault(token, [])
            if len(kept) < _MAX_POSITIONS:
                kept.append(min(pos, _MAX_POSITION))
    return " ".join(
        f"{_quote_lexeme(lexeme)}:{','.join(map(str, sorted(set(pos))))}"
        for lexeme, pos in positions.items()
    )


def tsquery_literal(tokens: Sequence[str]) -> str:
    """tsquery input text OR-ing the quoted tokens; "" if none."""
    kept = [t for t in dict.fromkeys(tokens) if t and len(t.encode()) <= _MAX_LEXEME_BYTES]
    return " | ".join(_quote_lexeme(t) for t in kept)


def _stems(conn: Connection, tokens: Sequence[str]) -> dict[str, str]:
    """token -> stem through PostgreSQL's `english_stem` (Snowball) dictionary.

    `ts_lexize` stems one token as given, without the text parser, so identifiers stay whole
    (`ppr-9087` is unchanged; suffix rules only touch a token's end). Stopwords come back
    empty and are kept as they are, as FTS5's porter does.
    """
    wanted = sorted({t for t in tokens if t.isascii() and _STEMMABLE.search(t)})
    if not wanted:
        return {}
    rows = conn.execute(
        text("SELECT t, ts_lexize('english_stem', t) FROM unnest(CAST(:tokens AS text[])) AS t"),
        {"tokens": wanted},
    ).all()
    return {str(t): str(stem[0]) for t, stem in rows if stem}


def _stemmed(conn: Connection, token_lists: Sequence[Sequence[str]]) -> list[list[str]]:
    stems = _stems(conn, [t for tokens in token_lists for t in tokens])
    return [[stems.get(t, t) for t in tokens] for tokens in token_lists]


class PostgresLexicalIndex:
    """tsvector + GIN over our own tokens, ranked by `ts_rank` with length normalisation.

    Tokens come from `indexer.lexical` exactly as for FTS5, then are stemmed with PostgreSQL's
    Snowball English stemmer on both sides (FTS5 uses the original Porter algorithm; the two
    agree on almost every English word). PostgreSQL has no BM25: `ts_rank` (term frequency,
    normalisation 1 = divided by 1 + log(length)) is the closest built-in. It has no IDF, so
    rare terms do not outweigh common ones as they do in BM25; `ts_rank_cd` was not chosen
    because cover density rewards query terms appearing near each other, which says little
    for the OR queries we issue. All methods run inside the caller's transaction.
    """

    def create(self, conn: Connection, collection_id: int) -> None:
        """Nothing to do: all collections share `chunk_lexical`."""

    def drop(self, conn: Connection, collection_id: int) -> None:
        conn.execute(delete(chunk_lexical).where(chunk_lexical.c.collection_id == collection_id))

    def add(self, conn: Connection, collection_id: int, rows: Sequence[tuple[int, str]]) -> None:
        if not rows:
            return
        token_lists = _stemmed(conn, [terms.split() for _, terms in rows])
        conn.execute(
            insert(chunk_lexical),
            [
                {
                    "chunk_id": chunk_id,
                    "collection_id": collection_id,
                    "tsv": tsvector_literal(tokens),
                }
                for (chunk_id, _), tokens in zip(rows, token_lists, strict=True)
            ],
        )

    def remove(self, conn: Connection, collection_id: int, chunk_ids: Sequence[int]) -> None:
        if chunk_ids:
            conn.execute(delete(chunk_lexical).where(chunk_lexical.c.chunk_id.in_(chunk_ids)))

    def search(
        self,
        conn: Connection,
        collection_id: int,
        query: str,
        limit: int,
        condition: ColumnElement[bool] | None = None,
    ) -> list[tuple[int, float]]:
        """Best chunks for `query` as (chunk id, ts_rank score, higher is better)."""
        expression = tsquery_literal(_stemmed(conn, [query_tokens(query)])[0])
        if not expression:
            return []
        tsquery = cast(literal(expression, Text), TSQUERY)
        rank = func.ts_rank(chunk_lexical.c.tsv, tsquery, 1).label("rank")
        stmt = (
            select(chunk_lexical.c.chunk_id, rank)
            .where(
                chunk_lexical.c.collection_id == collection_id,
                chunk_lexical.c.tsv.bool_op("@@")(tsquery),
            )
            .order_by(rank.desc(), chunk_lexical.c.chunk_id)
            .limit(limit)
        )
        if condition is not None:
            stmt = (
                stmt.join(chunks, chunks.c.id == chunk_lexical.c.chunk_id)
                .join(documents, documents.c.id == chunks.c.document_id)
                .where(condition)
            )
        return [(int(r[0]), float(r[1])) for r in conn.execute(stmt).all()]

    def count(self, conn: Connection, collection_id: int) -> int:
        return int(
            conn.execute(
                select(func.count())
                .select_from(chunk_lexical)
                .where(chunk_lexical.c.collection_id == collection_id)
            ).scalar_one()
        )

    def document_frequencies(
        self, conn: Connection, collection_id: int, phrases: Sequence[Sequence[str]]
    ) -> list[int]:
        stemmed = _stemmed(conn, phrases)
        out = []
        for tokens in stemmed:
            # `<->` is tsquery's "followed by": the phrase's tokens adjacent, in order.
            expression = " <-> ".join(_quote_lexeme(t) for t in tokens if t)
            if not expression:
                out.append(0)
                continue
            tsquery = cast(literal(expression, Text), TSQUERY)
            count = conn.execute(
                select(func.count())
                .select_from(chunk_lexical)
                .where(
                    chunk_lexical.c.collection_id == collection_id,
                    chunk_lexical.c.tsv.bool_op("@@")(tsquery),
                )
            ).scalar_one()
            out.append(int(count))
        return out


def lexical_index_for(dialect: str) -> LexicalIndex:
    """The lexical index implementation for a SQLAlchemy dialect name."""
    if dialect == "postgresql":
        return PostgresLexicalIndex()
    return SqliteLexicalIndex()
