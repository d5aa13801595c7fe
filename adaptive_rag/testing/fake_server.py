"""`arag serve`'s real server loop (uvicorn, admission, graceful shutdown, access log) over
deterministic fake models, for tests and benchmarks that need a live process on loopback:
disconnects, SIGTERM, kill -9, load (tests/unit/test_live_server.py, `python -m eval.bench load --fake`).

    python -m adaptive_rag.testing.fake_server --data-dir D --port P [--word-delay S] [--grace S]

Settings (keys, decision store, admission) come from the environment as for `arag serve`. The
collection "kb" holds one document about otters; "What do otters do?" is answered with
ANSWER, word by word, `--word-delay` seconds apart.
"""

from __future__ import annotations

import argparse
from pathlib import Path

ANSWER = "sea otters hold hands while they sleep so that they do not drift apart in the water"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--word-delay", type=float, default=0.0)
    parser.add_argument("--grace", type=float, default=30.0)
    parser.add_argument("--embed-delay", type=float, default=0.0, help="seconds per batch of embedded documents")
    args = parser.parse_args()

    from adaptive_rag.api.app import create_app
    from adaptive_rag.api.serving import run_server
    from adaptive_rag.decision_store import decision_store_from_settings
    from adaptive_rag.models.panel import Models
    from adaptive_rag.testing import make_engine
    from adaptive_rag.settings import Settings
    from adaptive_rag.store.edge import EdgeStore
    from adaptive_rag.types import SourceDocument
    from adaptive_rag.usage import Prices
    from ingest.pipeline import Ingestor
    from adaptive_rag.testing import FakeEmbedder, FakeLM

    settings = Settings(data_dir=args.data_dir, chunk_size=40, chunk_overlap=5, ingest_group_chunks=16)
    embedder = FakeEmbedder()
    if args.embed_delay:
        import time

        embed_documents = embedder.embed_documents

        def slow_embed(texts):  # a slow ingest, to be interrupted
            time.sleep(args.embed_delay)
            return embed_documents(texts)

        embedder.embed_documents = slow_embed
    store = EdgeStore(settings.collections_dir)
    Ingestor(settings, store, embedder).run("kb", [SourceDocument("otters", f"Otters: {ANSWER}.", title="Otters")])
    reader = FakeLM("reader", facts={"otters": ANSWER}, word_delay_s=args.word_delay)
    engine = make_engine(settings, store, embedder, Models(reader, reader, {"reader": Prices(1, 2)}),
                    decision_store_from_settings(settings))
    run_server(create_app(settings, engine=engine), "127.0.0.1", args.port, args.grace, settings.access_log)


if __name__ == "__main__":
    main()
