"""Retriever adapters for LangChain and LlamaIndex (optional extras), over the HTTP client."""
