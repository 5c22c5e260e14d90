"""The catalog: collections, documents, chunks, the embedding cache and the lexical index.

It is the source of truth. Vector files are derived from it and reconciled against it.
"""

from indexer.errors import CatalogError
from indexer.records import CollectionSpec, NewDocument, WrittenDocument

from .collections import validate_collection_name
from .database import Catalog

__all__ = [
    "Catalog",
    "CatalogError",
    "CollectionSpec",
    "NewDocument",
    "WrittenDocument",
    "validate_collection_name",
]
