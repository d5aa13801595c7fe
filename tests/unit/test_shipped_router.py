"""The panel router shipped with the package: it loads on a fresh data directory, and it is what
its committed labels train (`arag gatekeeper panel --labels eval/results/labels/mixed-panel
--out gatekeeper/default_router`)."""

import json

import pytest

from gatekeeper import panel_router


def test_the_shipped_default_loads_on_a_fresh_data_directory(tmp_path):
    from adaptive_rag.query.builder import load_routers
    from adaptive_rag.models.embedder import load_embedder
    from adaptive_rag.settings import Settings

    settings = Settings(data_dir=tmp_path / "fresh", _env_file=None)
    assert panel_router.find(settings.data_dir, "default") == panel_router.SHIPPED
    router = load_routers(settings, load_embedder(settings))["panel"]
    assert isinstance(router, panel_router.PanelRouter) and set(router.actions) == set(panel_router.CORE_ACTIONS)
    assert router.meta["questions"] >= 100
    # a router trained into the data directory under the same name wins over the shipped one
    router.save(panel_router.routers_dir(settings.data_dir) / "default")
    assert panel_router.find(settings.data_dir, "default") != panel_router.SHIPPED
    assert panel_router.find(settings.data_dir, "nothing-here") is None


def test_the_shipped_default_is_what_its_committed_labels_train():
    from pathlib import Path

    labels = Path(__file__).resolve().parents[2] / panel_router.SHIPPED_LABELS / "labels.jsonl"
    rows = [json.loads(line) for line in labels.read_text().splitlines()]
    shipped = panel_router.load(panel_router.SHIPPED)
    retrained, _ = panel_router.train(rows, shipped.embedder, shipped.meta["name"], shipped.meta["seed"])
    assert retrained.meta["training_hash"] == shipped.meta["training_hash"]
    probe = rows[0]["inputs"]
    assert retrained.probabilities(probe) == pytest.approx(shipped.probabilities(probe), abs=1e-6)
