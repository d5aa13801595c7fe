"""The REST server (FastAPI): build with `create_app()`, run with `arag serve`."""
