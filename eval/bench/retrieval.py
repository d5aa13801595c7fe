"""`python -m eval.bench retrieval`: quality and latency of our retrieval, with baselines run in
the same process on the same data, so that ratios are not comparisons across machines or days.

Sections: SQuAD dev quality (recall@1/5/10, MRR@10 of the gold paragraph per mode), SQuAD latency
(store-only search per mode, end-to-end hybrid, query embedding; rank-bm25 and qdrant-client
local mode on the same paragraphs/vectors), and a synthetic corpus of >= 100k chunks for the
issue's speed target (rank-bm25 p50 / our hybrid p50 >= 30x).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from eval.bench.common import (
    SQUAD_COLLECTION, RecordingEmbedder, bench_settings, ingest_squad, load_questions, log, machine_info,
    quality, rank_of, ratio, settings_summary, squad_chunks, squad_path, time_calls, words,
)

MODES = ("hybrid", "dense", "bm25")
# LlamaIndex QueryFusionRetriever (RRF over vector + BM25 retrievers) with the same MiniLM embedder
# on SQuAD dev, as reported in the issue. Not reproduced by this benchmark.
LLAMAINDEX_REFERENCE = {
    "system": "LlamaIndex QueryFusionRetriever, RRF hybrid, same embedder",
    "recall@5": 0.923, "recall@10": 0.97, "mrr@10": 0.813,
    "note": "measured by the issue author, not in this run",
}


def run(args) -> dict[str, Any]:
    from adaptive_rag.models.embedder import load_embedder
    from adaptive_rag.store import open_store
    from ingest.chunker import Chunker

    machine = machine_info()
    tmp = Path(tempfile.mkdtemp(prefix="arag-bench-retrieval-"))
    store = None
    try:
        settings, export_s = bench_settings(tmp, args.models_dir, args.quantize)
        embedder = load_embedder(settings)
        store = open_store(settings)
        log(f"ingesting squad-dev into {tmp}")
        recorder = RecordingEmbedder(embedder)
        report = ingest_squad(settings, store, recorder)
        log(f"  {report.chunks_written} chunks in {report.seconds:.1f} s")
        chunks = squad_chunks(settings, Chunker(settings.chunk_size, settings.chunk_overlap, embedder.token_splitter()))
        vectors = np.stack([recorder.vectors[c.embedding_text()] for c in chunks])
        questions, available = load_questions(squad_path(settings), args.split, args.questions, args.seed)
        log(f"{len(questions)} questions (split {args.split}, seed {args.seed}, {available} available)")

        quality_section, latency_section = squad_sections(settings, store, embedder, chunks, vectors, questions)
        quality_section.update(split=args.split, seed=args.seed, questions=len(questions),
                               questions_available=available, chunks=len(chunks))
        latency_section["squad_ingest_s"] = report.seconds
        synthetic: dict[str, Any] = {"skipped": True}
        if args.synthetic > 0:
            from eval.bench.synthetic import synthetic_section

            synthetic = synthetic_section(settings, store, [c.embedding_text() for c in chunks], args)
        return {"benchmark": "retrieval", "squad_quality": quality_section, "squad_latency": latency_section,
                "synthetic": synthetic, "machine": machine,
                "settings": settings_summary(settings, embedder) | {"model_export_s": export_s}}
    finally:
        if store is not None:
            store.close()
        shutil.rmtree(tmp, ignore_errors=True)


def squad_sections(settings, store, embedder, chunks, vectors, questions) -> tuple[dict, dict]:
    from adaptive_rag.models.sparse import Bm25Encoder, Bm25Params
    from adaptive_rag.retrieve import Retriever
    from eval.bench.baselines import LocalModeDense, RankBm25

    name = SQUAD_COLLECTION
    keys = [c.key for c in chunks]
    retriever = Retriever(settings, store, embedder)

    # Quality through the product path (Retriever.search: embedding, BM25 encoding, fallbacks).
    ours: dict[str, Any] = {}
    for mode in MODES:
        log(f"quality: {mode}")
        ranks = [rank_of((h.key for h in retriever.search(name, q.text, k=10, mode=mode).hits), q.gold_key)
                 for q in questions]
        ours[mode] = quality(ranks)

    # Store-only latency with precomputed query vectors: what the index itself costs.
    meta = store.get_meta(name)
    encoder = Bm25Encoder(Bm25Params(meta.bm25_k, meta.bm25_b, meta.bm25_avg_len))
    texts = [q.text for q in questions]
    qdense = [embedder.embed_query(t) for t in texts]
    qsparse = [encoder.encode_query(t) for t in texts]
    usable = [i for i, s in enumerate(qsparse) if s.indices]  # all-stop-word questions have no BM25 query
    s = settings
    weights = (s.dense_weight, s.bm25_weight)

    def search(mode: str):
        def call(i: int):
            return store.search(name, mode, 10, qdense[i] if mode != "bm25" else None,
                                qsparse[i] if mode != "dense" else None, s.prefetch_limit, s.rrf_k, weights)
        return call

    latency: dict[str, Any] = {"store_search_top10": {}, "questions": len(questions),
                               "questions_with_bm25_terms": len(usable)}
    for mode in MODES:
        log(f"latency: store {mode}")
        items = list(range(len(questions))) if mode == "dense" else usable
        latency["store_search_top10"][mode] = time_calls(search(mode), items)
    log("latency: end-to-end hybrid, query embedding")
    latency["end_to_end_hybrid_top10"] = time_calls(lambda t: retriever.search(name, t, k=10, mode="hybrid"), texts)
    latency["query_embedding"] = time_calls(embedder.embed_query, texts)
    latency["bm25_query_encoding"] = time_calls(encoder.encode_query, texts)

    # Baselines on the same paragraphs (same title + text our BM25 indexed) and the same vectors.
    log("baseline: rank-bm25")
    rb = RankBm25([words(c.embedding_text()) for c in chunks])
    qtokens = [words(t) for t in texts]
    rb_lat = time_calls(lambda i: rb.top(qtokens[i], 10), list(range(len(questions))))
    rb_quality = quality([rank_of((keys[j] for j in rb.top(qtokens[i], 10)), q.gold_key)
                          for i, q in enumerate(questions)])
    log("baseline: qdrant-client local mode")
    lm = LocalModeDense(vectors, payloads=[{"key": k} for k in keys])
    lm_lat = time_calls(lambda i: lm.top(qdense[i], 10), list(range(len(questions))))
    lm_quality = quality([rank_of((keys[j] for j in lm.top(qdense[i], 10)), q.gold_key)
                          for i, q in enumerate(questions)])
    lm.close()

    store_lat = latency["store_search_top10"]
    latency["baselines"] = {
        "rank_bm25": rb_lat | {"build_s": rb.build_s, "docs": rb.size},
        "qdrant_client_local_mode_dense": lm_lat | {"build_s": lm.build_s, "points": lm.size},
    }
    latency["speedup_p50"] = {
        "rank_bm25_vs_our_bm25": ratio(rb_lat, store_lat["bm25"]),
        "rank_bm25_vs_our_hybrid": ratio(rb_lat, store_lat["hybrid"]),
        "rank_bm25_vs_our_hybrid_end_to_end": ratio(rb_lat, latency["end_to_end_hybrid_top10"]),
        "local_mode_dense_vs_our_dense": ratio(lm_lat, store_lat["dense"]),
    }
    quality_section = {"ours": ours,
                       "baselines_in_this_run": {"rank_bm25": rb_quality, "qdrant_client_local_mode_dense": lm_quality},
                       "llamaindex_reference": LLAMAINDEX_REFERENCE}
    return quality_section, latency


# -- human-readable output -------------------------------------------------------------------
def _lat(d: dict) -> str:
    return f"p50 {d['p50_ms']:8.3f} ms   p95 {d['p95_ms']:8.3f} ms   (n={d['n']})"


def format_result(r: dict[str, Any]) -> str:
    q, lat, syn = r["squad_quality"], r["squad_latency"], r["synthetic"]
    out = [f"== SQuAD v1.1 dev: {q['chunks']} paragraphs, {q['questions']} questions "
           f"(split {q['split']}, seed {q['seed']}), gold = the question's paragraph",
           f"{'':38}{'R@1':>7}{'R@5':>7}{'R@10':>7}{'MRR@10':>8}"]
    rows = [(f"ours {m}", q["ours"][m]) for m in MODES]
    rows += [("rank-bm25 (baseline, this run)", q["baselines_in_this_run"]["rank_bm25"]),
             ("local-mode dense (baseline, this run)", q["baselines_in_this_run"]["qdrant_client_local_mode_dense"])]
    for label, m in rows:
        out.append(f"{label:38}{m['recall@1']:7.3f}{m['recall@5']:7.3f}{m['recall@10']:7.3f}{m['mrr@10']:8.3f}")
    ref = q["llamaindex_reference"]
    out.append(f"{'LlamaIndex RRF hybrid (reference*)':38}{'-':>7}{ref['recall@5']:7.3f}{ref['recall@10']:7.3f}"
               f"{ref['mrr@10']:8.3f}")
    out.append(f"  * {ref['system']}: {ref['note']}.")
    out.append("")
    out.append("== SQuAD latency, top-10")
    b = lat["baselines"]
    rows = [(f"our store {m} (precomputed query vectors)", lat["store_search_top10"][m]) for m in MODES]
    rows += [("our end-to-end hybrid (embed + BM25 + search)", lat["end_to_end_hybrid_top10"]),
             ("query embedding alone", lat["query_embedding"]),
             ("BM25 query encoding alone", lat["bm25_query_encoding"]),
             ("rank-bm25 BM25Okapi (baseline)", b["rank_bm25"]),
             ("qdrant-client local mode dense (baseline)", b["qdrant_client_local_mode_dense"])]
    out.extend(f"  {label:46}{_lat(d)}" for label, d in rows)
    sp = lat["speedup_p50"]
    out.append(f"  speed-up (baseline p50 / ours p50): rank-bm25 vs our bm25 {sp['rank_bm25_vs_our_bm25']:.1f}x, "
               f"vs our hybrid {sp['rank_bm25_vs_our_hybrid']:.1f}x; local-mode dense vs our dense "
               f"{sp['local_mode_dense_vs_our_dense']:.1f}x")
    out.append("")
    if syn.get("skipped"):
        out.append("== synthetic corpus: skipped (--synthetic 0)")
    else:
        from eval.bench.synthetic import format_synthetic

        out.extend(format_synthetic(syn))
    m, st = r["machine"], r["settings"]
    out.append("")
    out.append(f"machine: {m['usable_cpus']}/{m['cpu_count']} CPUs, {m['platform']}, load at start "
               f"{', '.join(f'{x:.2f}' for x in m['load_avg_at_start'])}")
    out.append(f"settings: embedder {st['embedder']} (quantize={st['embedder_quantize']}, max tokens {st.get('embedder_max_tokens')}), "
               f"rrf_k {st['rrf_k']}, "
               f"prefetch {st['prefetch_limit']}, weights dense {st['weights']['dense']} / bm25 {st['weights']['bm25']}")
    return "\n".join(out)
