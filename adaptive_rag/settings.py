"""The one reader of environment variables and `.env`.

Every knob has an `ARAG_` environment variable (e.g. `ARAG_DATA_DIR`, `ARAG_QDRANT_URL`); the CLI
overrides a few of them per invocation. Nothing else in the code base reads `os.environ` for
configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from adaptive_rag.models.catalog import DEFAULT_CATALOG, ModelSpec

REPO_ROOT = Path(__file__).resolve().parent.parent


def _default_shared_data() -> Path:
    """`../shared/data` beside the checkout, where CI and the dev machines keep the eval sets."""
    return REPO_ROOT.parent / "shared" / "data"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ARAG_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path(".arag"), description="Indexes, documents and model caches.")
    model_cache_dir: Path | None = Field(None, description="Model exports; default <data_dir>/models.")
    # Decision log (adaptive_rag/decision_store): unset = SQLite at <data_dir>/decisions.sqlite;
    # postgresql://user:password@host:5432/db = one database shared by API replicas;
    # sqlite:///path also works. A secret: it may hold a password, never shown.
    decisions_url: SecretStr | None = Field(None, description="Decision log URL (postgresql://... or sqlite:///...); "
                                            "unset = SQLite in the data directory.")
    # `arag serve` deletes decisions (and their feedback) older than this at start, then hourly.
    decisions_retention_days: float | None = Field(None, gt=0, description="Keep decisions this many days; unset = forever.")

    # Store: embedded Qdrant Edge unless a server URL is given.
    qdrant_url: str | None = Field(None, description="Qdrant server URL; unset = embedded Edge.")
    qdrant_api_key: SecretStr | None = None
    qdrant_timeout_s: float = 30.0

    # Dense embedder: "minilm-l6" is the bundled all-MiniLM-L6-v2 exported to ONNX once;
    # any other name is handed to fastembed (which downloads it when a network is available).
    embedder: str = "minilm-l6"
    embedder_path: Path | None = Field(None, description="Local ONNX model dir for `embedder`.")
    # int8 by default: on SQuAD dev it embeds ~2x faster than fp32 with the same hybrid recall
    # (R@10 0.977 both; dense alone R@10 0.920 vs 0.933). See README, Performance.
    embedder_quantize: bool = Field(
        True, description="Use the dynamically int8-quantized MiniLM export (faster, slightly less exact)."
    )
    embedder_max_tokens: int | None = Field(
        None, ge=16, description="Truncate embedder input here (None = the model's own limit, 256 for MiniLM)."
    )
    embed_batch_size: int = Field(32, ge=1, le=1024)
    embed_threads: int | None = Field(None, description="ONNX Runtime threads; None = all cores.")

    # Chunking, in embedder tokens (MiniLM reads at most 256).
    chunk_size: int = Field(200, ge=16, le=8192)
    chunk_overlap: int = Field(30, ge=0)
    # Ingestion writes and commits documents in groups of about this many chunks.
    ingest_group_chunks: int = Field(512, ge=1)

    # BM25 (qdrant_edge.Bm25; identical on the embedded and server stores).
    bm25_k: float = 1.2
    bm25_b: float = 0.75
    bm25_avg_len: float = Field(90.0, gt=0, description="Average chunk length in BM25 tokens.")

    # Hybrid search: each side prefetches this many candidates, fused with weighted RRF(k).
    # k = 2 and BM25 weight 1.25 were chosen on SQuAD dev questions of the tuning split
    # (articles 0-31; recall@10 0.962 -> 0.975 over k = 60 with equal weights): a small k trusts
    # the top ranks of each side, and BM25 is the stronger side with MiniLM on these questions.
    prefetch_limit: int = Field(50, ge=1)
    rrf_k: int = Field(2, ge=1)
    dense_weight: float = Field(1.0, gt=0)
    bm25_weight: float = Field(1.25, gt=0)

    shared_data_dir: Path = Field(default_factory=_default_shared_data)

    # Answering (see adaptive_rag/models/catalog.py for the catalog and its defaults).
    models: dict[str, ModelSpec] = Field(default_factory=dict, description="Added to / overriding the default catalog.")
    # The panel: the role models plus `panel` (extra catalog names, e.g. ARAG_PANEL=a,b).
    reader_model: str = "qwen2.5-coder-0.5b"
    long_context_model: str = "qwen2.5-coder-0.5b"
    strong_model: str | None = Field(None, description="The panel's stronger model (e.g. qwen2.5-coder-1.5b); unset = none.")
    panel: Annotated[list[str], NoDecode] = Field(default_factory=list, description="More catalog models to load "
                                                  "beside the role models (comma-separated or a JSON list).")
    default_policy: str = "self_route"
    top_k: int = Field(5, ge=1, le=50)
    max_new_tokens: int = Field(32, ge=1, le=1024)
    long_context_budget: int = Field(
        4000, ge=256, description="Context tokens the long-context route may fill (Qwen 0.5B reads ~320 tokens/s here)."
    )
    thresholds: dict[str, float] = Field(default_factory=dict, description="Policy thresholds (see policies.py).")
    # The router's trained classifier (`arag gatekeeper train --name`): loaded when it exists;
    # setting ARAG_GATEKEEPER explicitly makes a missing artifact an error.
    gatekeeper: str = "default"
    gatekeeper_version: int | None = None
    # The weak/strong pre-generation router (`arag gatekeeper knn --name`), loaded when it exists.
    weak_strong_router: str = "default"
    # The panel router `adaptive` runs (`arag gatekeeper panel --name`): <data dir>/routers/<name>
    # when trained there, else (for "default") the one shipped with the package.
    panel_router: str = "default"
    # Admission control in `arag serve` (adaptive_rag/api/admission.py): requests generating at
    # once, requests waiting beyond those (more are refused with 429 at once), and the longest
    # wait for a slot before a 429.
    max_concurrent_requests: int = Field(2, ge=1, le=32)
    max_queued_requests: int = Field(8, ge=0, le=32)
    queue_wait_s: float = Field(60.0, gt=0, le=3600)
    # A served request's deadline (a request may ask for less with `timeout_s`): no model call
    # starts after it, and the request fails with 504 (its decision says status "timeout").
    request_timeout_s: float = Field(120.0, gt=0, le=3600)
    # Request bodies larger than this are refused with 413 before they are read whole.
    max_body_bytes: int = Field(1_048_576, ge=1024)
    # ... except documents sent to POST /v1/collections/{name}/documents (JSONL or files; uploaded
    # files are spooled to disk, not held in memory); `arag ingest --server` sends 8 MiB batches.
    max_ingest_bytes: int = Field(64 * 1_048_576, ge=1024)
    # The CLI's client side: `arag ingest/search/collections/delete` talk to this server (also
    # found automatically from <data_dir>/server.json while `arag serve` runs), with this key.
    server_url: str | None = Field(None, description="A running `arag serve` for the CLI to use (--server).")
    api_key: SecretStr | None = Field(None, description="The key the CLI sends to the server (Authorization: Bearer).")
    # API keys (adaptive_rag/api/auth.py): ARAG_API_KEYS holds "name:role:key" entries separated
    # by commas; ARAG_API_KEYS_FILE a JSON file of keys with optional budgets. Roles: query, admin.
    # With no key configured the server is open and answers loopback clients only.
    api_keys: SecretStr | None = Field(None, description='API keys: "name:role:key,..." (role: query or admin).')
    api_keys_file: Path | None = Field(None, description="JSON keys file: {\"keys\": [{\"name\", \"role\", "
                                       "\"key\" or \"key_sha256\", \"max_requests\", \"max_tokens\"}]}.")
    # a key's max_requests / max_tokens count the decisions it made within this many seconds
    budget_window_s: float = Field(86400.0, gt=0)
    # Bounds on what one request may override: top_k at most this, and only the thresholds named
    # here, each within [low, high] (ARAG_THRESHOLD_BOUNDS='{"self_route_min_score": [0, 1]}').
    max_request_top_k: int = Field(10, ge=1, le=50)
    # `arag serve`: on SIGTERM, requests in flight get this long before they are cancelled.
    shutdown_grace_s: float = Field(30.0, ge=0, le=3600)
    # one JSON line per request on stderr (adaptive_rag/api/access_log.py)
    access_log: bool = True
    threshold_bounds: dict[str, tuple[float, float]] = Field(default_factory=dict)

    @property
    def catalog(self) -> dict[str, ModelSpec]:
        return {**DEFAULT_CATALOG, **self.models}

    @property
    def panel_models(self) -> list[str]:
        """Every model the engine loads: the role models, then `panel`, each once."""
        names = [self.reader_model, self.long_context_model, self.strong_model, *self.panel]
        return list(dict.fromkeys(n for n in names if n))

    @field_validator("panel", mode="before")
    @classmethod
    def _split_panel(cls, value):
        if isinstance(value, str):
            import json

            text = value.strip()
            return json.loads(text) if text.startswith("[") else [v.strip() for v in text.split(",") if v.strip()]
        return value

    @field_validator("thresholds")
    @classmethod
    def _finite_thresholds(cls, value: dict[str, float]) -> dict[str, float]:
        import math

        bad = sorted(k for k, v in value.items() if not math.isfinite(v))
        if bad:
            raise ValueError(f"thresholds must be finite numbers: {', '.join(bad)}")
        return value

    @model_validator(mode="after")
    def _panel_in_catalog(self) -> "Settings":
        catalog = self.catalog
        for setting in ("reader_model", "long_context_model", "strong_model", "panel"):
            value = getattr(self, setting)
            for name in value if isinstance(value, list) else [value]:
                if name is not None and name not in catalog:
                    raise ValueError(f"unknown model {name!r} in {setting}; the catalog has: {', '.join(sorted(catalog))}")
        return self

    @model_validator(mode="after")
    def _overlap_below_size(self) -> "Settings":
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size ({self.chunk_size})"
            )
        return self

    @property
    def collections_dir(self) -> Path:
        return self.data_dir / "collections"

    @property
    def models_dir(self) -> Path:
        return self.model_cache_dir or self.data_dir / "models"
