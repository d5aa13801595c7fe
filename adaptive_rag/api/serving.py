"""`arag serve`'s server loop: uvicorn with a graceful shutdown.

On SIGTERM or SIGINT the server stops accepting connections and the answering routes refuse new
work (503) on connections still open; requests in flight get `shutdown_grace_s` to finish; after
that uvicorn cancels them, which sets each request's cancel event: generation stops at its next
token (transformers) or before its next model call, and the decision is stored as "cancelled".
The process then exits.
"""

from __future__ import annotations


def run_server(app, host: str, port: int, grace_s: float, access_log: bool = True) -> None:
    import uvicorn

    from adaptive_rag.api import access_log as access

    access.configure(access_log)

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            app.state.inflight.draining = True
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, host=host, port=port, timeout_graceful_shutdown=grace_s, access_log=False)
    DrainingServer(config).run()
