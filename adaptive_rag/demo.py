"""`arag demo`: the README's first command. Ingests the attributed SQuAD sample under corpora/
into the collection `demo`, shows what retrieval finds for a few of its questions next to the
paragraph that holds the answer, then (unless --no-answer) fetches the reader model if needed and
answers them under `self_route` and `probe`, printing each decision."""

from __future__ import annotations

import json

import typer

from adaptive_rag.settings import REPO_ROOT, Settings

DEMO_QUESTIONS = 3


def _questions() -> list[tuple[str, str, str]]:
    """(question, gold answer, gold paragraph key) for the first paragraph-1 question of each article."""
    sample = json.loads((REPO_ROOT / "corpora" / "squad_sample.json").read_text())
    out = []
    for article in sample["data"][:DEMO_QUESTIONS]:
        qa = article["paragraphs"][1]["qas"][0]
        out.append((qa["question"], qa["answers"][0]["text"], f"{article['title']}#1"))
    return out


def answer_demo(settings: Settings) -> None:
    from adaptive_rag.query.builder import build_engine
    from adaptive_rag.models.catalog import resolve
    from adaptive_rag.models.pull import is_pulled, pull
    from adaptive_rag.present import format_decision

    for name in settings.panel_models:
        spec = resolve(settings.catalog, name)
        if spec.pull and not is_pulled(settings.models_dir, spec.pull):
            typer.echo(f"\nFetching the model {name} (arag models pull {spec.pull}):")
            pull(settings.models_dir, spec.pull, say=typer.echo)
    typer.echo("\nLoading the reader...")
    engine = build_engine(settings)
    for question, gold, _ in _questions():
        for policy in ("self_route", "probe"):
            decision = engine.answer("demo", question, policy=policy)
            typer.echo(f"\nQ: {question}  (gold answer: {gold})\n{format_decision(decision.to_dict())}")
    typer.echo("\nTry: arag query \"your question\" -c demo --policy probe   |   arag decisions   |   arag serve")


def run_demo(settings: Settings, store, embedder) -> None:
    from adaptive_rag.retrieve import Retriever
    from ingest.pipeline import Ingestor
    from ingest.sources import read_source

    report = Ingestor(settings, store, embedder).run("demo", read_source("squad-sample", settings))
    typer.echo(report.summary())
    retriever = Retriever(settings, store, embedder)
    for question, gold_answer, gold in _questions():
        result = retriever.search("demo", question, k=3)
        ranks = [h.key for h in result.hits]
        where = f"rank {ranks.index(gold) + 1}" if gold in ranks else "not in top 3"
        typer.echo(f"\nQ: {question}  (answer: {gold_answer}; gold paragraph {gold}: {where})")
        for rank, hit in enumerate(result.hits, start=1):
            typer.echo(f"  {rank}. {hit.score:.4f} {hit.key}: {' '.join(hit.text.split())[:110]}...")
        timing = ", ".join(f"{k} {v:.1f}" for k, v in result.timings_ms.items())
        typer.echo(f"  ({timing} ms)")
    typer.echo("\nTry: arag search \"your question\" --collection demo   |   arag collections")
