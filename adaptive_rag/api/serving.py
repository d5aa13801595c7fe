"""`arag serve`'s server loop: uvicorn with a graceful shutdown.

On SIGTERM or SIGINT the server stops accepting connections and the answering routes refuse new
work (503) on connections still open; requests in flight get `shutdown_grace_s` to finish; after
that uvicorn cancels them, which sets each request's cancel event: generation stops at its next
token (transformers, llama.cpp) or before its next model call, and the decision is stored as "cancelled".
The process then exits.
"""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=None)
def _glibc(function: str):
    """glibc's `function` through ctypes, looked up once; None off glibc."""
    import ctypes
    import ctypes.util

    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), function)
    except (OSError, AttributeError):
        return None


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """glibc gives each thread that allocates its own malloc arena (up to 8 per core), and each
    keeps the high-water mark of the largest generation it ran: with a dozen worker threads taking
    turns at long-context prompts, the server's RSS grew by a gigabyte under load although nothing
    leaked. Two arenas bound that. Must run before the worker threads start; a no-op off glibc."""
    mallopt = _glibc("mallopt")
    return bool(mallopt and mallopt(-8, arenas))  # M_ARENA_MAX


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc `malloc_trim`), after a request:
    a long-context generation's buffers would otherwise stay in the RSS until the next one."""
    trim = _glibc("malloc_trim")
    if trim:
        trim(0)


def run_server(app, host: str, port: int, grace_s: float, access_log: bool = True) -> None:
    import uvicorn

    limit_malloc_arenas()
    app.state.after_answer = release_free_memory

    from adaptive_rag.api import access_log as access

    access.configure(access_log)

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            app.state.inflight.draining = True
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, host=host, port=port, timeout_graceful_shutdown=grace_s, access_log=False)
    DrainingServer(config).run()
