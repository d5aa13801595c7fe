"""`arag demo`: the README's first command. Ingests the attributed SQuAD sample under corpora/
into the collection `demo` and shows what retrieval finds for a few of its questions, next to
the paragraph that holds the answer. Later issues extend it with answers and routing decisions."""

from __future__ import annotations

import json

import typer

from adaptive_rag.settings import REPO_ROOT, Settings

DEMO_QUESTIONS = 3


def run_demo(settings: Settings, store, embedder) -> None:
    from adaptive_rag.retrieve import Retriever
    from ingest.pipeline import Ingestor
    from ingest.sources import read_source

    report = Ingestor(settings, store, embedder).run("demo", read_source("squad-sample", settings))
    typer.echo(report.summary())
    sample = json.loads((REPO_ROOT / "corpora" / "squad_sample.json").read_text())
    retriever = Retriever(settings, store, embedder)
    for article in sample["data"][:DEMO_QUESTIONS]:
        paragraph = article["paragraphs"][1]
        qa = paragraph["qas"][0]
        gold = f"{article['title']}#1"
        result = retriever.search("demo", qa["question"], k=3)
        ranks = [h.key for h in result.hits]
        where = f"rank {ranks.index(gold) + 1}" if gold in ranks else "not in top 3"
        typer.echo(f"\nQ: {qa['question']}  (answer: {qa['answers'][0]['text']}; gold paragraph {gold}: {where})")
        for rank, hit in enumerate(result.hits, start=1):
            typer.echo(f"  {rank}. {hit.score:.4f} {hit.key}: {' '.join(hit.text.split())[:110]}...")
        timing = ", ".join(f"{k} {v:.1f}" for k, v in result.timings_ms.items())
        typer.echo(f"  ({timing} ms)")
    typer.echo("\nTry: arag search \"your question\" --collection demo   |   arag collections")
