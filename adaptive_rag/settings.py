"""The one reader of environment variables and `.env`.

Every knob has an `ARAG_` environment variable (e.g. `ARAG_DATA_DIR`, `ARAG_QDRANT_URL`); the CLI
overrides a few of them per invocation. Nothing else in the code base reads `os.environ` for
configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from adaptive_rag.limits import (
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_INGEST_BYTES, DEFAULT_MAX_REQUEST_TOP_K, MAX_TIMEOUT_S, MAX_TOP_K, MIN_BODY_BYTES,
)
from adaptive_rag.models.catalog import DEFAULT_CATALOG, ModelSpec

REPO_ROOT = Path(__file__).resolve().parent.parent  # the checkout; in an installed copy, site-packages
# The attributed SQuAD sample (see corpora/README.md in the repository): package data, so `arag demo`
# and `arag ingest squad-sample` work from an installed copy as well as from a checkout.
DEMO_SAMPLE = Path(__file__).resolve().parent / "demo_data" / "squad_sample.json"
APP_NAME = "adaptive-rag"
LOCAL_DATA_DIR = ".arag"  # a project-local data directory, used when the current directory has one


def _default_shared_data() -> Path:
    """`../shared/data` beside the checkout, where CI and the dev machines keep the eval sets."""
    return REPO_ROOT.parent / "shared" / "data"


def user_data_dir() -> Path:
    """The user's data directory for adaptive-rag (platformdirs: ~/.local/share/adaptive-rag on
    Linux, or $XDG_DATA_HOME/adaptive-rag; ~/Library/Application Support/adaptive-rag on macOS)."""
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def user_model_cache_dir() -> Path:
    """Model exports and pulled models beside the default data directory: the user's cache
    directory (~/.cache/adaptive-rag/models on Linux, or $XDG_CACHE_HOME/adaptive-rag/models)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)) / "models"


def default_data_dir() -> Path:
    """`./.arag` (absolute) when the current directory has one, as every earlier version used, so
    an existing project-local data directory keeps working; else the user's data directory, so
    that `arag` finds the same collections from any directory."""
    local = Path.cwd() / LOCAL_DATA_DIR
    return local if local.is_dir() else user_data_dir()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ARAG_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Collections, document records, the decision log, trained routers; `--data-dir` overrides it.",
        json_schema_extra={"doc_default": "`./.arag` when the current directory has one, else the user data "
                                          "directory (`~/.local/share/adaptive-rag` on Linux)"},
    )
    model_cache_dir: Path | None = Field(
        None, description="Pulled models and the embedder's ONNX export (share one between data directories).",
        json_schema_extra={"doc_default": "`~/.cache/adaptive-rag/models` (the user cache directory) with the "
                                          "default data directory; `<data dir>/models` with any other"},
    )
    # Decision log (adaptive_rag/decision_store). A secret: it may hold a password, never shown.
    decisions_url: SecretStr | None = Field(None, description=(
        "The decision log: unset = SQLite at `<data dir>/decisions.sqlite`; `postgresql://user:password@host:5432/db` "
        "= one database shared by API replicas; `sqlite:///rel/path` or `sqlite:////abs/path` also work. Bad URLs "
        "and unreachable servers are one `error:` line, the password masked."))
    decisions_retention_days: float | None = Field(None, gt=0, description=(
        "`arag serve` deletes decisions older than this many days, with their feedback, at start and then hourly; "
        "unset = keep all."))

    # Store: embedded Qdrant Edge unless a server URL is given.
    qdrant_url: str | None = Field(None, description="A Qdrant server or cluster to use instead of the embedded "
                                   "engine (Qdrant Edge); unset = embedded.")
    qdrant_api_key: SecretStr | None = Field(None, description="The Qdrant server's API key.")
    qdrant_timeout_s: float = Field(30.0, description="Seconds a request to the Qdrant server may take.")

    # Dense embedder: "minilm-l6" is the bundled all-MiniLM-L6-v2 exported to ONNX once;
    # any other name is handed to fastembed (which downloads it when a network is available).
    embedder: str = Field("minilm-l6", description=(
        "The dense embedder: `minilm-l6` is the bundled all-MiniLM-L6-v2 (exported to ONNX once); any fastembed "
        "model name (e.g. `BAAI/bge-small-en-v1.5`) downloads it where a network exists."))
    embedder_path: Path | None = Field(None, description="A local ONNX model directory for the embedder.")
    # int8 by default: on SQuAD dev it embeds ~2x faster than fp32 with the same hybrid recall
    # (R@10 0.977 both; dense alone R@10 0.920 vs 0.933). See docs/performance.md.
    embedder_quantize: bool = Field(
        True, description="int8 dynamic quantization of the MiniLM export (about 2x faster, cosine ~0.99 to fp32, "
                          "the same hybrid recall on SQuAD dev)."
    )
    embedder_max_tokens: int | None = Field(
        None, ge=16, description="Truncate the embedder's input here; unset = the model's own limit (256 for MiniLM)."
    )
    embed_batch_size: int = Field(32, ge=1, le=1024, description="Texts embedded per batch.")
    embed_threads: int | None = Field(None, description="ONNX Runtime threads; unset = all cores.")

    chunk_size: int = Field(200, ge=16, le=8192, description="Chunk size in embedder tokens (MiniLM reads 256); "
                            "`arag ingest --chunk-size`.")
    chunk_overlap: int = Field(30, ge=0, description="Overlap of consecutive chunks in embedder tokens; "
                               "`arag ingest --chunk-overlap`.")
    ingest_group_chunks: int = Field(512, ge=1, description="Ingestion writes and commits documents in groups of "
                                     "about this many chunks.")

    # BM25 (qdrant_edge.Bm25; identical on the embedded and server stores).
    bm25_k: float = Field(1.2, description="BM25 term-frequency saturation k1 (fixed per collection at creation).")
    bm25_b: float = Field(0.75, description="BM25 length normalisation b (fixed per collection at creation).")
    bm25_avg_len: float = Field(90.0, gt=0, description="BM25's average chunk length in tokens (fixed per "
                                "collection at creation).")

    # Hybrid search: each side prefetches this many candidates, fused with weighted RRF(k).
    # k = 2 and BM25 weight 1.25 were chosen on SQuAD dev questions of the tuning split
    # (articles 0-31; recall@10 0.962 -> 0.975 over k = 60 with equal weights): a small k trusts
    # the top ranks of each side, and BM25 is the stronger side with MiniLM on these questions.
    prefetch_limit: int = Field(50, ge=1, description="Hybrid search: candidates each side (dense, BM25) "
                                "prefetches before fusion.")
    rrf_k: int = Field(2, ge=1, description="Hybrid search: k of the weighted reciprocal-rank fusion (tuned on the "
                       "SQuAD tuning split).")
    dense_weight: float = Field(1.0, gt=0, description="Hybrid search: the dense side's weight in the fusion.")
    bm25_weight: float = Field(1.25, gt=0, description="Hybrid search: the BM25 side's weight in the fusion (tuned "
                               "on the SQuAD tuning split).")

    shared_data_dir: Path = Field(
        default_factory=_default_shared_data,
        description="The evaluation sets (SQuAD v1.1 dev, HotpotQA, BIG-bench) that `arag ingest squad-dev` and "
                    "`arag eval` read.",
        json_schema_extra={"doc_default": "`../shared/data` beside the checkout"},
    )

    # Answering (see adaptive_rag/models/catalog.py for the catalog and its defaults).
    models: dict[str, ModelSpec] = Field(default_factory=dict, description=(
        "JSON catalog entries added to / replacing the defaults: `backend` (`auto`, `llamacpp`, `transformers`, "
        "`openai`), `pull` or `path` or `url` (+ `remote_model`, `api_key`), `context_window`, `input_per_m`, "
        "`output_per_m`, `tags`, `dtype` (transformers), `threads`, `parallel` (llamacpp slots)."))
    # The panel: the role models plus `panel` (extra catalog names, e.g. ARAG_PANEL=a,b).
    reader_model: str = Field("qwen2.5-coder-0.5b", description="Panel role: the model that answers closed-book "
                              "and with RAG.")
    long_context_model: str = Field("qwen2.5-coder-0.5b", description="Panel role: the long-context model.")
    strong_model: str | None = Field(None, description="The panel's stronger model (e.g. qwen2.5-coder-1.5b); unset = none.")
    panel: Annotated[list[str], NoDecode] = Field(default_factory=list, description="More catalog models to load "
                                                  "beside the role models (comma-separated or a JSON list).")
    default_policy: str = Field("self_route", description="The policy of a query that names none.")
    top_k: int = Field(5, ge=1, le=MAX_TOP_K, description="Chunks retrieved per query (a query may ask for another `top_k`).")
    max_new_tokens: int = Field(32, ge=1, le=1024, description="Most tokens generated per answer.")
    multi_step_strategy: Literal["interleaved", "decompose"] = Field("interleaved", description=(
        "How the `multi_step` route gathers evidence for multi-hop questions: `interleaved` retrieves again with "
        "each reasoning sentence the model writes (IRCoT); `decompose` answers sub-questions the model writes, "
        "each from its own retrieval."))
    multi_step_max_steps: int = Field(3, ge=1, le=8, description=(
        "Retrievals the `multi_step` route makes at most (each with `top_k` chunks)."))
    multi_step_notes: bool = Field(False, description=(
        "Whether the `multi_step` route's final answer call reads the steps' reasoning sentences or sub-answers "
        "beside the chunks they found (false: the chunks only, with RAG's prompt; on HotpotQA dev the 1.5B scored "
        "0.444 F1 without the notes and 0.341 with them, answering in sentences; docs/results.md)."))
    long_context_budget: int = Field(
        4000, ge=256, description="Context tokens the long-context route may fill (Qwen 0.5B reads ~320 tokens/s here)."
    )
    strong_long_context_budget: int = Field(8000, ge=256, description=(
        "Context tokens the long-context route may fill on the panel's strong model (`always_strong_lc`). A llama.cpp "
        "slot holds `context_window / parallel` tokens (8,192 with the defaults): lower `parallel` for more."))
    verify_escalation: str = Field("rag:strong", description=(
        "Where `verified_rag` and `adaptive` (with an answer probe) send a reader's RAG answer the probe doubts: "
        "ROUTE:ROLE, e.g. `rag:strong` or `long_context:strong`."))
    thresholds: dict[str, float] = Field(default_factory=dict, description=(
        "JSON of policy thresholds (adaptive_rag/query/policies.py), e.g. the line `arag calibrate` prints."))
    gatekeeper: str = Field("default", description=(
        "The router's trained classifier (`arag gatekeeper train --name`) the engine and server load: a missing "
        "`default` just leaves `adaptive` unavailable; a named one that is missing is an error."))
    gatekeeper_version: int | None = Field(None, description="The gatekeeper artifact's version; unset = the latest.")
    weak_strong_router: str = Field("default", description=(
        "The kNN weak/strong router `knn_router` uses (`arag gatekeeper knn --name`); loaded when it exists."))
    panel_router: str = Field("default", description=(
        "The panel router `adaptive` uses (`arag gatekeeper panel --name`): `<data dir>/routers/NAME` when trained "
        "there, else (for `default`) the one shipped with the package."))
    routers: dict[str, str] = Field(default_factory=dict, description=(
        "JSON: which router serves each slot, as `KIND` or `KIND:NAME` (gatekeeper/registry.py), e.g. "
        "`{\"panel\": \"prior\"}`. Slots: `panel` (`adaptive`), `gatekeeper` (`gatekeeper`, `gatekeeper_adaptive`), "
        "`weak_strong` (`knn_router`). Unset slots follow ARAG_PANEL_ROUTER, ARAG_GATEKEEPER and "
        "ARAG_WEAK_STRONG_ROUTER; a router named here must load or the engine does not start."))
    answer_probes: Annotated[list[str], NoDecode] = Field(default_factory=list, description=(
        "Internal-state probes to serve (`arag gatekeeper probe --name`), comma-separated or a JSON list: "
        "each is attached to the panel model it was trained on (same file, engine and dtype, or the engine does not "
        "start) and read from that model's own generations; `verified_rag` and `adaptive` escalate on it."))
    # The learned router (gatekeeper/learned_router.py, gatekeeper/online.py): what user verdicts weigh.
    feedback_weight: float = Field(3.0, gt=0, le=100, description=(
        "How much an admin's verdict on an answer (`POST /v1/feedback`) counts when the learned router learns, "
        "against 1 for a judged answer."))
    key_feedback: bool = Field(True, description=(
        "Whether a `query` key may rate its own decisions (`POST /v1/feedback`); admins rate any decision."))
    key_feedback_weight: float = Field(1.5, gt=0, le=100, description=(
        "How much a `query` key's verdict on its own decision counts when the learned router learns."))
    key_feedback_cap: int = Field(50, ge=0, le=1_000_000, description=(
        "Verdicts one `query` key may give per day; beyond it 429 (`arag_feedback_capped_total`), so one key "
        "cannot flood the router."))
    cache: Literal["off", "exact", "semantic"] = Field("off", description=(
        "The answer cache: `exact` serves a question asked before (same normalised text, collection, key scope, "
        "policy and overrides) from the stored answer while its cited documents are unchanged; `semantic` also "
        "has the reader adapt the answer of a near question (query embedding similarity above the entry's "
        "threshold) or decline; `off` answers every question again. A request can skip it with `cache: false`."))
    cache_similarity: float = Field(0.9, ge=0.5, le=1.0, description=(
        "The near-hit similarity threshold (cosine of the query embeddings) of a cache that has no verdicts yet. "
        "From then on each entry's threshold is learned from the rewrites' and users' verdicts on its hits, for "
        "ARAG_CACHE_TARGET_ERROR."))
    cache_target_error: float = Field(0.01, gt=0, le=0.5, description=(
        "The wrong-hit rate the cache's learned near-hit thresholds aim at: a near hit is tried only where the "
        "verdicts so far say it is right with probability at least 1 minus this."))
    cache_rewrite: Literal["adapt", "check"] = Field("adapt", description=(
        "A near hit's rewrite: `adapt` gives the reader the cached answer, its question and its supporting chunks "
        "to adapt; `check` gives it the supporting chunks only, so it answers the new question blind and the "
        "cached answer is served only when the two agree (a small reader shown the cached answer tends to repeat "
        "it for a different question)."))
    cache_same_question: Literal["off", "reader", "strong"] = Field("off", description=(
        "Before a near hit's rewrite, ask this panel model whether the cached question and the new one ask for the "
        "same information (one short call on the two questions); below ARAG_CACHE_SAME_QUESTION_MIN the near hit "
        "is declined without a rewrite. `strong` separates paraphrases from look-alikes better than similarity "
        "does, the reader worse (docs/performance.md); `off` skips the check."))
    cache_same_question_min: float = Field(0.5, ge=0.0, le=1.0, description=(
        "The P(Yes) the same-question check (ARAG_CACHE_SAME_QUESTION) needs for the rewrite to run. 0.5 keeps about "
        "90% of paraphrases on the 1.5B model (measured on the data it was chosen on)."))
    cache_scope: Literal["key", "collection"] = Field("key", description=(
        "Whose answers a cached question may be served from: the same API key's (`key`), or any key's on the "
        "collection (`collection`: a hit then shows the answer and citations, not the other key's decision)."))
    explore_share: float = Field(0.0, ge=0, le=1, description=(
        "The share of the learned router's served decisions that `arag serve` also answers with another action in the "
        "background, when no user request is waiting or generating, and has judged (0: off)."))
    judge_model: str | None = Field(None, description=(
        "The panel model (a name or a role) that judges answers for the learned router: any catalog model in the "
        "panel, an OpenAI-compatible endpoint included (ARAG_PANEL adds one beside the roles); unset: the strong "
        "model, else the reader."))
    judge_share: float = Field(0.0, ge=0, le=1, description=(
        "The share of the learned router's served answers that `arag serve` has the judge grade in the background, "
        "when no user request is waiting or generating (0: off)."))
    learning_budget_per_day: float = Field(0.05, ge=0, le=1e6, description=(
        "What judging and exploring may spend per day, in the panel's prices (notional dollars for the local models; "
        "a strong RAG answer is about 0.00014): exploration stops once the last day's learning spend reaches it."))
    router_learn_every: int = Field(1, ge=0, le=100_000, description=(
        "The served learned router (`learned:NAME`) publishes a new version once this many new outcomes wait "
        "(0: only `arag router learn` and `POST /v1/router/learn` learn)."))
    # Admission control in `arag serve` (adaptive_rag/api/admission.py).
    max_concurrent_requests: int = Field(2, ge=1, le=32, description=(
        "`arag serve`'s admission control: requests generating answers at once (`/healthz` shows the counts)."))
    max_queued_requests: int = Field(8, ge=0, le=32, description=(
        "Requests waiting beyond `ARAG_MAX_CONCURRENT_REQUESTS`; a request beyond both gets 429 with `Retry-After` "
        "at once."))
    queue_wait_s: float = Field(60.0, gt=0, le=3600, description=(
        "The longest wait for a slot, in seconds; a request that waits longer gets 429 with `Retry-After`."))
    request_timeout_s: float = Field(120.0, gt=0, le=MAX_TIMEOUT_S, description=(
        "A served request's deadline in seconds, queueing included (a request may ask for less with `timeout_s`): "
        "no model call starts after it; the answer is 504 and the decision says status `timeout`."))
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, ge=MIN_BODY_BYTES, description=(
        "Request bodies beyond this get 413 before they are read whole (declared sizes up front, chunked bodies as "
        "they arrive); chat requests hold at most 256 messages."))
    max_ingest_bytes: int = Field(DEFAULT_MAX_INGEST_BYTES, ge=MIN_BODY_BYTES, description=(
        "The body limit of `POST /v1/collections/{name}/documents` (JSONL or files; uploads are spooled to disk); "
        "`arag ingest --server` sends 8 MiB requests."))
    # The CLI's client side: `arag ingest/search/collections/delete` talk to this server (also
    # found automatically from <data_dir>/server.json while `arag serve` runs), with this key.
    server_url: str | None = Field(None, description=(
        "A running `arag serve` for `arag ingest/search/collections/delete` to send their work to (`--server`); "
        "unset = the server announced in `<data dir>/server.json`, if any."))
    api_key: SecretStr | None = Field(None, description="The key the CLI sends to the server (`Authorization: Bearer`).")
    # API keys (adaptive_rag/api/auth.py): ARAG_API_KEYS holds "name:role:key" entries separated
    # by commas; ARAG_API_KEYS_FILE a JSON file of keys with optional budgets. Roles: query, admin.
    # With no key configured the server is open and answers loopback clients only.
    api_keys: SecretStr | None = Field(None, description=(
        "API keys: `name:role:key,...` (role `query` or `admin`; Security, above). With no key configured the "
        "server is open and answers loopback clients only."))
    api_keys_file: Path | None = Field(None, description=(
        'A JSON keys file: `{"keys": [{"name", "role", "key" or "key_sha256", "max_requests", "max_tokens"}]}` '
        "(optional per-key budgets)."))
    budget_window_s: float = Field(86400.0, gt=0, description=(
        "The window, in seconds, in which a key's `max_requests` / `max_tokens` budgets count its decisions."))
    # Bounds on what one request may override: top_k at most this, and only the thresholds named
    # here, each within [low, high] (ARAG_THRESHOLD_BOUNDS='{"self_route_min_score": [0, 1]}').
    max_request_top_k: int = Field(DEFAULT_MAX_REQUEST_TOP_K, ge=1, le=MAX_TOP_K, description="The largest `top_k` a `query` key may ask for.")
    # The inspector's Evaluations page lists the reports under this folder (`arag eval --out`).
    eval_results_dir: Path = Field(Path("eval/results"), description="Evaluation reports the /ui inspector lists.")
    # `arag serve`: on SIGTERM, requests in flight get this long before they are cancelled.
    shutdown_grace_s: float = Field(30.0, ge=0, le=3600, description=(
        "On SIGTERM, requests in flight get this many seconds before they are cancelled."))
    # adaptive_rag/api/access_log.py
    access_log: bool = Field(True, description="One JSON line per request on stderr.")
    threshold_bounds: dict[str, tuple[float, float]] = Field(default_factory=dict, description=(
        "The only thresholds a `query` key may override per request, each within `[low, high]`, e.g. "
        '`{"self_route_min_score": [0, 1]}`.'))

    @property
    def catalog(self) -> dict[str, ModelSpec]:
        return {**DEFAULT_CATALOG, **self.models}

    @property
    def panel_models(self) -> list[str]:
        """Every model the engine loads: the role models, then `panel`, each once."""
        names = [self.reader_model, self.long_context_model, self.strong_model, *self.panel]
        return list(dict.fromkeys(n for n in names if n))

    @field_validator("verify_escalation")
    @classmethod
    def _route_and_role(cls, value: str) -> str:
        """ROUTE:ROLE with a panel role; the route is checked where routes live (QueryConfig)."""
        from adaptive_rag.models.panel import ROLES

        route, _, role = value.partition(":")
        if not route or role not in ROLES:
            raise ValueError(f"{value!r} is not ROUTE:ROLE with a role of {', '.join(ROLES)} (e.g. rag:strong)")
        return value

    @field_validator("panel", "answer_probes", mode="before")
    @classmethod
    def _split_list(cls, value):
        """A JSON list or comma-separated names."""
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

    @field_validator("data_dir", "model_cache_dir")
    @classmethod
    def _expand_home(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None  # `~` from .env or a quoted variable

    def router_specs(self) -> dict[str, str]:
        """Slot -> router spec (`KIND:NAME`): `routers` over the per-router settings."""
        version = f"@v{self.gatekeeper_version}" if self.gatekeeper_version is not None else ""
        return {"panel": f"panel:{self.panel_router}", "gatekeeper": f"gatekeeper:{self.gatekeeper}{version}",
                "weak_strong": f"knn:{self.weak_strong_router}", **self.routers}

    def explicit_router_slots(self) -> set[str]:
        """The slots whose router was asked for by name (it must load): those in `routers`, and
        the gatekeeper's when ARAG_GATEKEEPER or its version is set."""
        named = "gatekeeper" in self.model_fields_set or self.gatekeeper_version is not None
        return set(self.routers) | ({"gatekeeper"} if named else set())

    @property
    def models_dir(self) -> Path:
        """ARAG_MODEL_CACHE_DIR; else the user cache directory when the data directory is the user
        data directory (the default), else <data_dir>/models (a project-local ./.arag, or a data
        directory named explicitly, keeps its models inside it, as before)."""
        if self.model_cache_dir is not None:
            return self.model_cache_dir
        return user_model_cache_dir() if self.data_dir == user_data_dir() else self.data_dir / "models"
