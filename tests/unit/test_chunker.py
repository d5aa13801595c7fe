from adaptive_rag.types import SourceChunk, SourceDocument, chunk_point_id
from ingest.chunker import Chunker
from adaptive_rag.testing import FakeEmbedder


def _long_text(n_sentences: int) -> str:
    return " ".join(f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(n_sentences))


def test_chunks_respect_the_token_budget_and_cover_the_text():
    embedder = FakeEmbedder()
    chunker = Chunker(chunk_size=40, chunk_overlap=5, tokenizer=embedder.token_splitter())
    doc = SourceDocument(doc_id="d", text=_long_text(60), title="T")

    chunks = chunker.split(doc)

    assert len(chunks) > 5
    assert all(embedder.count_tokens(c.text) <= 40 for c in chunks)
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert "Sentence number 0 " in chunks[0].text and "Sentence number 59 " in chunks[-1].text
    assert chunks[2].key == "d#2" and chunks[2].title == "T"


def test_chunk_ids_are_stable_and_change_with_content():
    chunker = Chunker(40, 5, FakeEmbedder().token_splitter())
    doc = SourceDocument(doc_id="d", text=_long_text(20))
    again = chunker.split(SourceDocument(doc_id="d", text=_long_text(20)))
    changed = chunker.split(SourceDocument(doc_id="d", text=_long_text(21)))

    first = chunker.split(doc)

    assert [c.id for c in first] == [c.id for c in again]
    assert first[0].id == chunk_point_id("d", doc.content_hash, 0)
    assert not {c.id for c in first} & {c.id for c in changed}


def test_prechunked_documents_keep_their_chunks_and_keys():
    chunker = Chunker(40, 5, FakeEmbedder().token_splitter())
    doc = SourceDocument(doc_id="Art", text="p0\n\np1", chunks=(SourceChunk("p0", "Art#0"), SourceChunk(" ", "Art#1"),
                                                                  SourceChunk("p2", "Art#2")))
    chunks = chunker.split(doc)
    assert [(c.text, c.key) for c in chunks] == [("p0", "Art#0"), ("p2", "Art#2")]
