import json
from pathlib import Path

from adaptive_rag.settings import Settings
from adaptive_rag.types import SourceDocument
from ingest.readers import ReadProblem, read_folder, read_hotpotqa, read_jsonl, read_squad
from ingest.sources import read_source
from tests.conftest import SAMPLE


def _split(results):
    docs = [r for r in results if isinstance(r, SourceDocument)]
    problems = [r for r in results if isinstance(r, ReadProblem)]
    return docs, problems


def test_folder_reads_text_markdown_html_and_names_each_problem(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("Plain text about otters.")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "guide.md").write_text("# Guide\n\nMarkdown about beavers.")
    (tmp_path / "page.html").write_text("<html><body><h1>Voles</h1><script>var x=1;</script><p>Voles dig.</p></body></html>")
    (tmp_path / "blob.txt").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "empty.md").write_text("   \n")
    (tmp_path / "table.xyz").write_text("unknown")
    (tmp_path / ".hidden.txt").write_text("never read")

    docs, problems = _split(list(read_folder(tmp_path)))

    by_id = {d.doc_id: d for d in docs}
    assert set(by_id) == {"notes.txt", "sub/guide.md", "page.html"}
    assert "beavers" in by_id["sub/guide.md"].text
    assert "Voles dig." in by_id["page.html"].text and "var x" not in by_id["page.html"].text
    messages = {Path(p.source).name: p.message for p in problems}
    assert "binary" in messages["blob.txt"]
    assert "UTF-8" in messages["latin1.txt"]
    assert "empty" in messages["empty.md"]
    assert "unknown format" in messages["table.xyz"]
    assert len(problems) == 4


def test_jsonl_reports_each_bad_line_and_keeps_the_good_ones(tmp_path: Path):
    path = tmp_path / "docs.jsonl"
    lines = [
        json.dumps({"id": "a", "text": "Alpha text", "title": "Alpha", "metadata": {"lang": "en"}}),
        "{not json",
        json.dumps({"id": "b"}),
        json.dumps({"text": "no id"}),
        json.dumps(["a", "list"]),
        "",
        json.dumps({"id": 7, "text": "Seven"}),
        json.dumps({"id": "c", "text": "   "}),
    ]
    path.write_text("\n".join(lines))

    docs, problems = _split(list(read_jsonl(path)))

    assert [d.doc_id for d in docs] == ["a", "7"]
    assert docs[0].title == "Alpha" and docs[0].metadata == {"lang": "en"}
    assert [p.source.rsplit(":", 1)[1] for p in problems] == ["2", "3", "4", "5", "8"]
    assert "invalid JSON" in problems[0].message
    assert '"text"' in problems[1].message
    assert '"id"' in problems[2].message


def test_squad_articles_become_documents_with_paragraph_chunks():
    docs, problems = _split(list(read_squad(SAMPLE)))
    assert not problems
    assert len(docs) == 5
    data = json.loads(SAMPLE.read_text())
    first = data["data"][0]
    doc = docs[0]
    assert doc.doc_id == first["title"]
    assert len(doc.chunks) == len(first["paragraphs"])
    assert doc.chunks[3].key == f"{first['title']}#3"
    assert doc.chunks[3].text == first["paragraphs"][3]["context"]


def test_squad_wrong_format_is_one_problem(tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"articles": []}))
    results = list(read_squad(bad))
    assert len(results) == 1 and isinstance(results[0], ReadProblem)
    assert "SQuAD" in results[0].message


def test_hotpotqa_paragraphs_are_documents_deduplicated_by_title(tmp_path: Path):
    import csv

    path = tmp_path / "hp.csv"
    ctx1 = [{"idx": 0, "is_supporting": True, "paragraph_text": "Paris is the capital of France.", "title": "Paris"},
            {"idx": 1, "is_supporting": False, "paragraph_text": "Lyon is a city.", "title": "Lyon"}]
    ctx2 = [{"idx": 0, "is_supporting": True, "paragraph_text": "Paris is the capital of France.", "title": "Paris"},
            {"idx": 1, "is_supporting": False, "paragraph_text": "Paris is also a name.", "title": "Paris"}]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["qid", "question_text", "context", "reference"])
        writer.writeheader()
        writer.writerow({"qid": "1", "question_text": "q", "context": repr(ctx1), "reference": "['Paris']"})
        writer.writerow({"qid": "2", "question_text": "q", "context": repr(ctx2), "reference": "['x']"})
        writer.writerow({"qid": "3", "question_text": "q", "context": "[{broken", "reference": "[]"})
        # ../shared/data writes the list in numpy's repr: items separated by a newline, no comma
        numpy_style = "[" + "\n ".join(repr(p) for p in [{"idx": 0, "is_supporting": True, "title": "Lyon",
                                                         "paragraph_text": "Lyon is a city."},
                                                        {"idx": 1, "is_supporting": False, "title": "Nice",
                                                         "paragraph_text": "Nice is by the sea."}]) + "]"
        writer.writerow({"qid": "4", "question_text": "q", "context": numpy_style, "reference": "['Lyon']"})

    docs, problems = _split(list(read_hotpotqa(path)))

    ids = [d.doc_id for d in docs]
    assert ids[:2] == ["Paris", "Lyon"] and len(ids) == 4 and ids[2].startswith("Paris#") and ids[3] == "Nice"
    assert docs[0].chunks[0].key == "Paris"
    assert len(problems) == 1 and "context" in problems[0].message


def test_sources_resolve_prefixes_names_and_missing_paths(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, shared_data_dir=tmp_path / "absent")
    docs, problems = _split(list(read_source("squad-dev", settings)))  # falls back to the sample
    assert len(docs) == 5 and not problems
    docs, problems = _split(list(read_source(f"squad:{SAMPLE}", settings)))
    assert len(docs) == 5
    _, problems = _split(list(read_source(str(tmp_path / "nope"), settings)))
    assert len(problems) == 1 and "no such file" in problems[0].message
    _, problems = _split(list(read_source("hotpotqa:" + str(tmp_path / "nope.csv"), settings)))
    assert len(problems) == 1 and "no such file" in problems[0].message


def test_pdf_and_docx_go_through_llamaindex_readers_and_corrupt_files_are_problems(tmp_path: Path):
    import docx
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(tmp_path / "report.pdf"))
    pdf.drawString(72, 720, "Tardigrades survive in outer space.")
    pdf.showPage()
    pdf.drawString(72, 720, "Second page about moss.")
    pdf.save()
    document = docx.Document()
    document.add_paragraph("Lichens are symbiotic organisms.")
    document.save(str(tmp_path / "memo.docx"))
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")

    docs, problems = _split(list(read_folder(tmp_path)))

    by_id = {d.doc_id: d for d in docs}
    assert "Tardigrades" in by_id["report.pdf"].text and "moss" in by_id["report.pdf"].text
    assert "Lichens" in by_id["memo.docx"].text
    assert [Path(p.source).name for p in problems] == ["broken.pdf"]


def test_the_shared_hotpotqa_files_parse_completely():
    import pytest

    settings = Settings()
    path = settings.shared_data_dir / "hotpotqa" / "test.csv"
    if not path.is_file():
        pytest.skip("needs ../shared/data")
    docs, problems = _split(list(read_hotpotqa(path)))
    assert not problems and len(docs) > 4000


def test_a_broken_pdf_is_one_problem_line_without_retries_or_parser_warnings(tmp_path: Path, caplog, capfd):
    import logging

    from ingest.readers import read_file

    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (tmp_path / "empty.pdf").write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        problems = [read_file(tmp_path / name, name) for name in ("broken.pdf", "empty.pdf")]
    assert [str(p) for p in problems] == [
        f"{tmp_path / 'broken.pdf'}: cannot read as PDF (Stream has ended unexpectedly), skipped",
        f"{tmp_path / 'empty.pdf'}: cannot read as PDF (Cannot read an empty file), skipped"]
    out, err = capfd.readouterr()
    assert not caplog.records and "EOF marker" not in out + err and "RetryError" not in out + err
