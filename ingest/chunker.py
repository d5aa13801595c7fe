"""Token-aware chunking with LlamaIndex's SentenceSplitter, counting tokens with the embedder's
own tokenizer so that a chunk never silently exceeds what the embedder reads (256 for MiniLM).
Sets that come pre-chunked (SQuAD paragraphs, HotpotQA paragraphs) keep their chunks and keys."""

from __future__ import annotations

from typing import Callable

from adaptive_rag.types import Chunk, SourceDocument, chunk_point_id


class Chunker:
    def __init__(self, chunk_size: int, chunk_overlap: int, tokenizer: Callable[[str], list]):
        from llama_index.core.node_parser import SentenceSplitter

        self._splitter = SentenceSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap, tokenizer=tokenizer)

    def split(self, doc: SourceDocument) -> list[Chunk]:
        doc_hash = doc.content_hash
        if doc.chunks is not None:
            pieces = [(c.text, c.key) for c in doc.chunks]
        else:
            pieces = [(text, f"{doc.doc_id}#{i}") for i, text in enumerate(self._splitter.split_text(doc.text))]
        return [
            Chunk(id=chunk_point_id(doc.doc_id, doc_hash, position), doc_id=doc.doc_id, position=position,
                  text=text, key=key, title=doc.title)
            for position, (text, key) in enumerate(pieces)
            if text.strip()
        ]
