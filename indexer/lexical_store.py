"""The lexical (full-text) index beside the catalog: one SQLite FTS5 table per collection.

Chunk text is pre-tokenised by `indexer.lexical` (jieba for Chinese, identifiers kept whole),
so FTS5 only has to split on spaces. The FTS5 rowid is the chunk id.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Connection, column, func, literal_column, select, table, text

from indexer.lexical import FTS5_TOKENIZE, fts_match_expression, query_tokens
from indexer.schema import chunks, documents


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
