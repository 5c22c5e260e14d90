"""Catalog tables (SQLAlchemy Core). SQLite by default, PostgreSQL to scale out.

A chunk's integer primary key is its vector id. `sqlite_autoincrement` matters: ids are never
reused, so a stale vector left in a FAISS file can never point at a newer chunk.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# BigInteger for ids on PostgreSQL, plain INTEGER on SQLite (where only INTEGER PRIMARY KEY
# aliases the rowid).
IdType = BigInteger().with_variant(Integer(), "sqlite")

collections = Table(
    "collections",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("embedder_provider", String(32), nullable=False),
    Column("embedder_model", String(256), nullable=False),
    Column("dimensions", Integer, nullable=False),
    Column("chunk_tokens", Integer, nullable=False),
    Column("overlap_sentences", Integer, nullable=False),
    # Bumped by every committed write, so readers know when to reload vectors.
    Column("revision", BigInteger, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    sqlite_autoincrement=True,
)

documents = Table(
    "documents",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column(
        "collection_id",
        IdType,
        ForeignKey("collections.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("source", String(2048), nullable=False),
    Column("title", String(1024), nullable=True),
    Column("media_type", String(128), nullable=False),
    Column("content_sha256", String(64), nullable=False),
    Column("metadata", JSON, nullable=False, default=dict),
    Column("size_bytes", BigInteger, nullable=False),
    Column("chunk_count", Integer, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("collection_id", "source", name="uq_documents_collection_source"),
    sqlite_autoincrement=True,
)

chunks = Table(
    "chunks",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column(
        "document_id",
        IdType,
        ForeignKey("documents.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("collection_id", IdType, nullable=False),
    Column("ordinal", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("char_start", Integer, nullable=False),
    Column("char_end", Integer, nullable=False),
    Column("heading_path", JSON, nullable=False, default=list),
    Column("page", Integer, nullable=True),
    Column("tokens", Integer, nullable=False),
    # sha256 of the text the embedder saw (heading path + text): the embedding cache key.
    Column("embed_sha256", String(64), nullable=False),
    Index("ix_chunks_document", "document_id"),
    Index("ix_chunks_collection", "collection_id"),
    sqlite_autoincrement=True,
)

embedding_cache = Table(
    "embedding_cache",
    metadata,
    Column("model", String(300), primary_key=True),
    Column("dimensions", Integer, primary_key=True),
    Column("text_sha256", String(64), primary_key=True),
    Column("vector", LargeBinary, nullable=False),
)

# The sha256 of each collection's saved vector file, recorded by the writer after every save
# and checked when the file is loaded: a file that changed behind our back (bit rot, a torn
# copy) is rebuilt from the embedding cache instead of silently answering wrong.
vector_files = Table(
    "vector_files",
    metadata,
    Column(
        "collection_id",
        IdType,
        ForeignKey("collections.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("sha256", String(64), nullable=False),
    Column("saved_at", DateTime(timezone=True), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("key_sha256", String(64), nullable=False, unique=True),
    Column("scopes", JSON, nullable=False),
    Column("collections", JSON, nullable=True),
    Column("allowed_origins", JSON, nullable=True),
    Column("rate_per_minute", Float, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    sqlite_autoincrement=True,
)

# Model tokens each key spent per UTC day, for the daily budget (RAGSEARCH_KEY_DAILY_TOKENS):
# in the catalog, so a budget holds across restarts, worker processes and replicas.
key_token_spend = Table(
    "key_token_spend",
    metadata,
    Column("key_id", IdType, primary_key=True),
    Column("day", String(10), primary_key=True),  # ISO date, UTC
    Column("tokens", BigInteger, nullable=False),
)

ingest_jobs = Table(
    "ingest_jobs",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("collection", String(128), nullable=False),
    Column("kind", String(16), nullable=False),  # upload | url
    # queued | running | done | failed | interrupted
    Column("status", String(16), nullable=False),
    Column("owner", String(300), nullable=False),  # host:pid of the process running it
    Column("manifest", JSON, nullable=False),  # what to ingest: staged files or URLs
    Column("progress", JSON, nullable=False),
    Column("report", JSON, nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_ingest_jobs_status", "status"),
    sqlite_autoincrement=True,
)
