"""HTTP routes, one module per resource: search and answer, collections, documents, health."""
