"""Ingestion: readers -> chunker -> embedder (dense + BM25) -> store, with the store's document
records as the manifest. Imports only adaptive_rag's foundation (settings, types, store, models)."""
