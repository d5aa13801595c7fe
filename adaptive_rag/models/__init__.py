"""Model adapters: the dense embedder, the BM25 encoder (and, later, LM backends)."""
