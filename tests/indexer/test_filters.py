"""Metadata filters compiled to SQL, run against real documents in a real catalog."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from indexer.errors import InputError
from indexer.filters import compile_filter
from indexer.index import Index
from indexer.ingest import Ingestor, SourceItem
from indexer.providers.local import HashingEmbedder
from indexer.records import Collection
from tests.conftest import MakeCollection

UPLOADS = {
    "mem://a.md": ("# Alpha notes\n\nShared words about search.", {
        "team": "search", "year": 2021, "rank": 9, "version": "9", "public": True,
    }),
    "mem://b.md": ("# Beta notes\n\nShared words about infrastructure.", {
        "team": "infra", "year": 2023, "rank": 10, "version": "10", "public": False,
    }),
    "mem://c.md": ("# Gamma notes\n\nShared words about ranking.", {
        "team": "search", "year": 2024,
    }),
    "mem://d.md": ("# Delta notes\n\nShared words without metadata.", {}),
}  # fmt: skip


@pytest.fixture
def catalog_docs(index: Index, make_collection: MakeCollection) -> Collection:
    """A collection holding the four UPLOADS, ingested as uploads with metadata."""
    collection = make_collection()
    items = [
        SourceItem(source=source, filename="x.md", data=text.encode(), metadata=meta)
        for source, (text, meta) in UPLOADS.items()
    ]
    report = asyncio.run(Ingestor(index, collection, HashingEmbedder(256)).run(items))
    assert report.added == 4
    return collection


def matching(index: Index, collection: Collection, spec: Any) -> set[str]:
    """Sources of the documents whose chunks the filter lets through."""
    chunk_ids = index.catalog.filtered_chunk_ids(collection.id, compile_filter(spec))
    return {c.source for c in index.catalog.chunks_by_ids(chunk_ids.tolist()).values()}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, {"a", "b", "c", "d"}),
        ({}, {"a", "b", "c", "d"}),
        ({"team": "search"}, {"a", "c"}),
        ({"team": {"$eq": "infra"}}, {"b"}),
        ({"team": {"$ne": "search"}}, {"b", "d"}),  # a missing key is "not equal" too
        ({"team": {"$in": ["infra", "ops"]}}, {"b"}),
        ({"team": {"$in": []}}, set()),
        ({"year": {"$gte": 2023}}, {"b", "c"}),
        ({"year": {"$lte": 2023}}, {"a", "b"}),
        ({"year": {"$gte": 2022, "$lte": 2023}}, {"b"}),
        ({"year": 2021}, {"a"}),
        ({"public": True}, {"a"}),
        ({"public": False}, {"b"}),
        ({"metadata.team": "infra"}, {"b"}),
        ({"source": "mem://c.md"}, {"c"}),
        ({"source": {"$in": ["mem://a.md", "mem://d.md"]}}, {"a", "d"}),
        ({"title": "Gamma notes"}, {"c"}),
        ({"$and": [{"team": "search"}, {"year": {"$lte": 2021}}]}, {"a"}),
        ({"$or": [{"team": "infra"}, {"year": {"$gte": 2024}}]}, {"b", "c"}),
        ({"$or": [{"$and": [{"team": "search"}, {"public": True}]}, {"title": "Delta notes"}]},
         {"a", "d"}),
        ({"team": "nobody"}, set()),
    ],
)  # fmt: skip
def test_filter_selects_documents(
    index: Index, catalog_docs: Collection, spec: Any, expected: set[str]
) -> None:
    assert matching(index, catalog_docs, spec) == {f"mem://{name}.md" for name in expected}


def test_filter_compares_numbers_as_numbers_and_strings_as_strings(
    index: Index, catalog_docs: Collection
) -> None:
    # rank 9 < 10 as numbers; version "10" < "9" as strings.
    assert matching(index, catalog_docs, {"rank": {"$gte": 10}}) == {"mem://b.md"}
    assert matching(index, catalog_docs, {"version": {"$gte": "9"}}) == {"mem://a.md"}
    assert matching(index, catalog_docs, {"rank": {"$lte": 9.5}}) == {"mem://a.md"}


def test_filter_matching_nothing_returns_nothing_from_either_retriever(
    index: Index, catalog_docs: Collection
) -> None:
    condition = compile_filter({"team": "nobody"})
    allowed = index.catalog.filtered_chunk_ids(catalog_docs.id, condition)
    query = asyncio.run(HashingEmbedder(256).embed_query("shared words")).vectors[0]
    store = index.store(catalog_docs)

    assert len(store.search(query, 10)) == 4
    assert store.search(query, 10, allowed=allowed) == []
    assert len(index.catalog.lexical_search(catalog_docs.id, "shared words", 10)) == 4
    assert index.catalog.lexical_search(catalog_docs.id, "shared words", 10, condition) == []


def test_filter_restricts_lexical_and_dense_search_alike(
    index: Index, catalog_docs: Collection
) -> None:
    condition = compile_filter({"team": "search"})
    allowed = index.catalog.filtered_chunk_ids(catalog_docs.id, condition)
    query = asyncio.run(HashingEmbedder(256).embed_query("shared words")).vectors[0]

    dense = {i for i, _ in index.store(catalog_docs).search(query, 10, allowed=allowed)}
    lexical = {i for i, _ in index.catalog.lexical_search(catalog_docs.id, "words", 10, condition)}

    assert dense == lexical == set(allowed.tolist())
    assert len(dense) == 2


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("team", "filter: expected an object, got str"),
        ({"$and": []}, "filter.$and: expected a non-empty list of filters"),
        ({"$or": {"team": "x"}}, "filter.$or: expected a non-empty list of filters"),
        ({"$nor": [{"team": "x"}]}, "filter.$nor: unknown operator '$nor' at this level"),
        ({"team": {"$regex": "x"}}, "filter.team: unknown operator '$regex'"),
        ({"team": {}}, "filter.team: empty condition"),
        ({"team": {"$in": "search"}}, "filter.team.$in: expected a list"),
        ({"team": {"$eq": ["a"]}}, "filter.team.$eq: expected a string, number or boolean"),
        ({"team": {"$in": [{"a": 1}]}}, "filter.team.$in: expected a string, number or boolean"),
        ({"team": None}, "filter.team: expected a string, number or boolean, got NoneType"),
        ({"year": {"$gte": True}}, "filter.year.$gte: $gte needs a number or a string"),
        ({"$and": [{"team": "x"}, 3]}, "filter.$and[1]: expected an object, got int"),
        ({"metadata.": "x"}, "filter: empty metadata key"),
    ],
)  # fmt: skip
def test_filter_malformed_raises_input_error_naming_the_problem(spec: Any, message: str) -> None:
    with pytest.raises(InputError) as caught:
        compile_filter(spec)

    assert message in caught.value.message


def test_filter_nested_too_deep_is_refused() -> None:
    spec: dict[str, Any] = {"team": "x"}
    for _ in range(10):
        spec = {"$and": [spec]}

    with pytest.raises(InputError, match="nested deeper than 8 levels"):
        compile_filter(spec)
