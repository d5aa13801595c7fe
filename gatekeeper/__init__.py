"""The router that decides per query between closed-book, RAG and long context (a later issue)."""
