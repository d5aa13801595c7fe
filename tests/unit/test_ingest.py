import pytest

from adaptive_rag.errors import UserError
from adaptive_rag.types import SourceDocument
from ingest.pipeline import Ingestor, delete_documents
from ingest.readers import ReadProblem


def _docs(**texts):
    return [SourceDocument(doc_id=k, text=v, title=k.title(), source=f"test:{k}") for k, v in texts.items()]


def _text(topic: str, n: int) -> str:
    return " ".join(f"Fact {i} about {topic} is worth writing down." for i in range(n))


def _points(store, name):
    """Every chunk in the collection as (doc_id, position) -> chunk id, via a wide dense search."""
    from adaptive_rag.testing import FakeEmbedder

    hits = store.search(name, "dense", 1000, FakeEmbedder().embed_query("fact"), None, 1000, 60)
    return {(h.doc_id, h.position): h.chunk_id for h in hits}


def test_first_run_writes_everything_and_rerun_writes_nothing(settings, store, fake_embedder):
    ingestor = Ingestor(settings, store, fake_embedder)
    docs = _docs(otters=_text("otters", 30), beavers=_text("beavers", 12))

    first = ingestor.run("c", docs)
    embedded = fake_embedder.documents_embedded
    second = ingestor.run("c", docs)

    assert (first.new, first.changed, first.unchanged, first.failed) == (2, 0, 0, 0)
    assert first.chunks_written == len(_points(store, "c")) > 2
    assert (second.new, second.changed, second.unchanged, second.chunks_written) == (0, 0, 2, 0)
    assert fake_embedder.documents_embedded == embedded  # nothing re-embedded
    assert "nothing to write" in second.summary()


def test_changed_document_replaces_its_chunks(settings, store, fake_embedder):
    ingestor = Ingestor(settings, store, fake_embedder)
    ingestor.run("c", _docs(otters=_text("otters", 30), beavers=_text("beavers", 12)))
    before = _points(store, "c")

    report = ingestor.run("c", _docs(otters=_text("sea otters", 10), beavers=_text("beavers", 12)))

    after = _points(store, "c")
    assert (report.new, report.changed, report.unchanged) == (0, 1, 1)
    otter_after = {k: v for k, v in after.items() if k[0] == "otters"}
    otter_before = {k: v for k, v in before.items() if k[0] == "otters"}
    assert otter_after and not set(otter_after.values()) & set(otter_before.values())
    assert {k: v for k, v in after.items() if k[0] == "beavers"} == {k: v for k, v in before.items() if k[0] == "beavers"}
    [record] = store.get_documents("c", ["otters"])
    assert "sea otters" in record.text and set(record.chunk_ids) == set(otter_after.values())


def test_problems_are_reported_and_the_rest_is_ingested(settings, store, fake_embedder):
    ingestor = Ingestor(settings, store, fake_embedder)
    seen = []
    results = [ReadProblem("a.bin", "looks binary"), *_docs(otters=_text("otters", 3)),
               SourceDocument(doc_id="otters", text="again", source="dup")]

    report = ingestor.run("c", results, on_problem=seen.append)

    assert report.new == 1 and report.failed == 2
    assert [p.source for p in seen] == ["a.bin", "dup"]
    assert "duplicate document id" in report.problems[1]


def test_delete_removes_records_and_chunks_and_names_unknown_ids(settings, store, fake_embedder):
    ingestor = Ingestor(settings, store, fake_embedder)
    ingestor.run("c", _docs(otters=_text("otters", 30), beavers=_text("beavers", 12)))

    deleted, unknown = delete_documents(store, "c", ["otters", "walrus"])

    assert (deleted, unknown) == (["otters"], ["walrus"])
    assert {k[0] for k in _points(store, "c")} == {"beavers"}
    assert set(store.document_hashes("c")) == {"beavers"}
    with pytest.raises(UserError):
        delete_documents(store, "c", [])


def test_interrupted_group_is_finished_by_the_next_run(settings, store, fake_embedder):
    """A crash after the chunks of a group were written but before their records were committed."""
    ingestor = Ingestor(settings, store, fake_embedder)
    docs = _docs(otters=_text("otters", 30), beavers=_text("beavers", 30), voles=_text("voles", 30))
    commits = []
    real_commit = store.commit_documents

    def crash_on_second_commit(name, records):
        commits.append(records)
        if len(commits) == 2:
            raise KeyboardInterrupt("simulated kill")
        real_commit(name, records)

    store.commit_documents = crash_on_second_commit
    with pytest.raises(KeyboardInterrupt):
        ingestor.run("c", docs)
    store.commit_documents = real_commit
    report = ingestor.run("c", docs)

    assert report.unchanged >= 1 and report.new >= 1 and report.new + report.unchanged == 3
    full = Ingestor(settings.model_copy(update={"data_dir": settings.data_dir / "ref"}), store, fake_embedder)
    points = _points(store, "c")
    expected = sum(len(full.chunker.split(d)) for d in docs)
    assert len(points) == expected  # no duplicates, no holes
    assert set(store.document_hashes("c")) == {"otters", "beavers", "voles"}


def test_collection_built_with_another_embedder_is_refused(settings, store, fake_embedder):
    Ingestor(settings, store, fake_embedder).run("c", _docs(otters="Otters swim."))

    class Wider(type(fake_embedder)):
        name, dim = "wider", 128

    with pytest.raises(UserError, match="built with embedder"):
        Ingestor(settings, store, Wider()).run("c", _docs(otters="Otters swim."))
