"""The query pipeline: plan, retrieve, fuse, rerank, answer. Never imports the web stack."""
