"""`arag serve`'s server loop: uvicorn with a graceful shutdown.

On SIGTERM or SIGINT the server stops accepting connections and the answering routes refuse new
work (503) on connections still open; requests in flight get `shutdown_grace_s` to finish; after
that uvicorn cancels them, which sets each request's cancel event: generation stops at its next
token (transformers) or before its next model call, and the decision is stored as "cancelled".
The process then exits.
"""

from __future__ import annotations


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """glibc gives each thread that allocates its own malloc arena (up to 8 per core), and each
    keeps the high-water mark of the largest generation it ran: with a dozen worker threads taking
    turns at long-context prompts, the server's RSS grew by a gigabyte under load although nothing
    leaked. Two arenas bound that. Must run before the worker threads start; a no-op off glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(-8, arenas))  # M_ARENA_MAX
    except (OSError, AttributeError):
        return False


_TRIM = None


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc `malloc_trim`), after a request:
    a long-context generation's buffers would otherwise stay in the RSS until the next one."""
    global _TRIM
    if _TRIM is None:
        import ctypes
        import ctypes.util

        try:
            _TRIM = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _TRIM = False
    if _TRIM:
        _TRIM(0)


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
