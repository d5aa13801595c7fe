"""The query core: `QueryEngine` (engine.py) answers a question under a policy (policies.py); a
`QueryRun` (run.py) holds one request's state while the policy runs answer routes
(answer_routes.py: closed-book, RAG, long context; prompts.py, signals.py) and verification
(verify.py), and consults routers through gatekeeper.router's interface. builder.py makes an
engine from Settings. docs/architecture.md draws one query's path through them."""

from adaptive_rag.query.engine import QueryConfig, QueryEngine

__all__ = ["QueryConfig", "QueryEngine"]
