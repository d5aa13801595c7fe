"""The decision inspector served by `arag serve` at /ui (routes.py, views.py, templates/, static/)."""
