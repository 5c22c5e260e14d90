"""Bringing a collection's tantivy index up to date with the catalog (the writer's job).

The index records the catalog position its last commit reached (highest chunk id, newest
tombstone). At open, a writer replays what came after: chunks above that id are added again
(replacing any copy a crashed writer committed without recording it), tombstones after it are
removed. An index that was never built, or whose position fell out of the tombstone log, is
rebuilt. Texts come pre-tokenised from SQLite's FTS5 table (no second jieba pass) or, on
PostgreSQL, are tokenised again from the chunks.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Engine, select

from indexer import chunk_changes
from indexer.lexical import index_text
from indexer.lexical_store import fts_table
from indexer.lexical_tantivy import SyncState, TantivyLexicon
from indexer.schema import chunks

_BATCH = 5_000


def lexical_texts_after(
    engine: Engine, collection_id: int, after: int
) -> Iterator[tuple[list[int], list[str]]]:
    """(chunk ids, pre-tokenised texts) of the collection's chunks above `after`, in batches."""
    while True:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                name = fts_table(collection_id)
                rows = conn.exec_driver_sql(
                    f"SELECT rowid, terms FROM {name} WHERE rowid > ? ORDER BY rowid LIMIT ?",
                    (after, _BATCH),
                ).all()
                batch = [(int(r[0]), str(r[1])) for r in rows]
            else:
                rows = conn.execute(
                    select(chunks.c.id, chunks.c.text, chunks.c.heading_path)
                    .where(chunks.c.collection_id == collection_id, chunks.c.id > after)
                    .order_by(chunks.c.id)
                    .limit(_BATCH)
                ).all()
                batch = [(int(r[0]), index_text(_embed_text(r[1], r[2]))) for r in rows]
        if not batch:
            return
        yield [i for i, _ in batch], [t for _, t in batch]
        after = batch[-1][0]


def _embed_text(text: str, heading_path: list[str] | None) -> str:
    """As `ChunkDraft.embed_text`: what ingest indexed for the chunk."""
    return " > ".join(heading_path) + "\n" + text if heading_path else text


def catch_up(lexicon: TantivyLexicon, engine: Engine, collection_id: int) -> SyncState:
    """Replay the catalog's changes since the lexicon's last commit; returns the new state."""
    state = lexicon.state()
    rebuild = state == SyncState(0, 0) or not chunk_changes.is_retained(engine, state.tombstone)
    tombstone = chunk_changes.latest_tombstone(engine) if rebuild else state.tombstone
    if rebuild:
        lexicon.clear()
        state = SyncState(0, tombstone)
    high_id = state.high_id
    for ids, texts in lexical_texts_after(engine, collection_id, high_id):
        lexicon.add(ids, texts, replace=not rebuild)
        high_id = ids[-1]
    removed, tombstone = chunk_changes.tombstones_after(engine, collection_id, tombstone)
    lexicon.remove(removed.tolist())
    caught_up = SyncState(high_id, tombstone)
    if caught_up != lexicon.state() or rebuild:
        lexicon.commit(caught_up)
    return caught_up
