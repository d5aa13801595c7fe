"""Fixtures shared by the unit tests: `arag` runs the CLI in process; `engine_for` is the one place
a query engine is wired on fakes, and `server` the one place an app is made over one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.helpers import live, otter_reader

_SQLITE = object()  # engine_for's default decision store: <tmp_path>/decisions.sqlite


@pytest.fixture
def arag(tmp_path, monkeypatch, capsys):
    """`arag ARGS...` in process on the fake embedder and a fresh data directory, never through a
    server named by the environment: returns (exit code, stdout, stderr)."""
    from adaptive_rag import cli
    from adaptive_rag.models import embedder as embedder_module
    from adaptive_rag.testing import FakeEmbedder

    monkeypatch.setitem(embedder_module.EMBEDDERS, "fake", lambda settings: FakeEmbedder())
    monkeypatch.setenv("ARAG_EMBEDDER", "fake")
    monkeypatch.setenv("ARAG_DATA_DIR", str(tmp_path / "data"))
    for name in ("ARAG_SERVER_URL", "ARAG_API_KEY"):
        monkeypatch.delenv(name, raising=False)

    def run(*args):
        code = cli.run(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


class EngineFactory:
    """engine_for(models=None, *, docs=(), collection="kb", store=None, settings=None, embedder=None,
    decisions=<tmp_path>/decisions.sqlite, prices=None, routers=None, **config) -> QueryEngine.

    - `models`: a Models panel, or one LanguageModel as reader and long-context model (default: a
      FakeLM that knows what otters do, tests.unit.helpers.otter_reader);
    - `prices`: {model name: Prices} for one LanguageModel (default: Prices(1, 2) for it);
    - `docs`: SourceDocuments ingested into `collection` first (once per test and store);
    - `store`: default the test's embedded store on `settings`' collections directory, opened once
      (engine_for.store()) and closed after the test; pass the parametrised `store` fixture to run
      on both adapters;
    - `decisions`: a DecisionStore, a path to an SQLite file, or None for no decision log;
    - `routers`, `config`: as adaptive_rag.testing.make_engine (top_k=1, thresholds=..., ...)."""

    def __init__(self, settings, embedder, tmp_path: Path):
        self.settings, self.embedder, self.tmp_path = settings, embedder, tmp_path
        self._stores: dict = {}
        self._ingested: set = set()

    def store(self, settings=None):
        """The test's embedded store on `settings`' (default: the `settings` fixture's) collections directory."""
        from adaptive_rag.store.edge import EdgeStore

        where = (settings or self.settings).collections_dir
        if where not in self._stores:
            self._stores[where] = EdgeStore(where)
        return self._stores[where]

    def ingest(self, docs, collection="kb", store=None, settings=None, embedder=None):
        from ingest.pipeline import Ingestor

        s = settings or self.settings
        store = store if store is not None else self.store(s)
        embedder = embedder if embedder is not None else self.embedder
        key = (id(store), collection, tuple(repr(d) for d in docs))
        if key not in self._ingested:
            Ingestor(s, store, embedder).run(collection, list(docs))
            self._ingested.add(key)
        return store

    def __call__(self, models=None, *, docs=(), collection="kb", store=None, settings=None, embedder=None,
                 decisions=_SQLITE, prices=None, routers=None, **config):
        from adaptive_rag.decisions import SQLiteDecisionStore
        from adaptive_rag.models.panel import Models
        from adaptive_rag.testing import make_engine
        from adaptive_rag.usage import Prices

        s = settings or self.settings
        store = store if store is not None else self.store(s)
        embedder = embedder if embedder is not None else self.embedder
        if docs:
            self.ingest(docs, collection, store, s, embedder)
        models = models if models is not None else otter_reader()
        if prices is None and not isinstance(models, Models):
            prices = {models.name: Prices(1, 2)}
        if decisions is _SQLITE:
            decisions = self.tmp_path / "decisions.sqlite"
        if isinstance(decisions, (str, Path)):
            decisions = SQLiteDecisionStore(Path(decisions))
        return make_engine(s, store, embedder, models, decisions, routers, prices, **config)

    def close(self):
        for store in self._stores.values():
            store.close()


@pytest.fixture
def engine_for(settings, fake_embedder, tmp_path):
    """A factory of query engines on fakes (EngineFactory): the one place the unit tests wire one."""
    factory = EngineFactory(settings, fake_embedder, tmp_path)
    yield factory
    factory.close()


class ServerFactory:
    """server(models=None, *, engine=None, settings=None, keys=None, preload=None, **wiring) -> TestClient
    over create_app(settings, engine=...): `engine`, or one engine_for(models, settings=settings,
    **wiring) wires (docs=, decisions=, prices=, store=, embedder=, ...). `settings` default: the
    `settings` fixture; `keys`: ARAG_API_KEYS ("name:role:key,..."). Enter the client (`with`) to
    start the app. server.app(...) is the app alone; server.live(...) runs it under uvicorn on a
    loopback port and yields its URL."""

    def __init__(self, engine_for: EngineFactory, settings):
        self.engine_for, self.settings = engine_for, settings

    def app(self, models=None, *, engine=None, settings=None, keys=None, preload=None, **wiring):
        from pydantic import SecretStr

        from adaptive_rag.api.app import create_app

        s = settings or self.settings
        if keys is not None:
            s = s.model_copy(update={"api_keys": SecretStr(keys)})
        if engine is None:
            engine = self.engine_for(models, settings=s, **wiring)
        elif models is not None or wiring:
            raise TypeError("pass an engine, or what to wire one from, not both")
        return create_app(s, engine=engine, preload=preload)

    def __call__(self, *args, **kwargs):
        from fastapi.testclient import TestClient

        return TestClient(self.app(*args, **kwargs))

    def live(self, *args, **kwargs):
        return live(self.app(*args, **kwargs))


@pytest.fixture
def server(engine_for, settings):
    """A factory of apps over fake engines (ServerFactory): the one place the unit tests make one."""
    return ServerFactory(engine_for, settings)
