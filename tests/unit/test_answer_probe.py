"""A trained answer probe: plain numbers on disk, refused for another model, engine or dtype, and
the same P(wrong) as the regression it was fitted as."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adaptive_rag.errors import ConfigError, NotFoundError
from gatekeeper import answer_probe


def test_the_probe_is_plain_numbers_and_serves_only_its_model(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 6))
    wrong = X[:, 2] + 0.3 * rng.normal(size=80) > 0
    mean, scale, coef, intercept = answer_probe.fit(X, wrong, 1.0)
    probe = answer_probe.AnswerProbe("answer", 12, mean, scale, coef, intercept, "ab" * 32, "transformers", "bfloat16")
    path = probe.save(tmp_path, "squad")
    assert path.name == "answer_probe.json" and json.loads(path.read_text())["layer"] == 12  # JSON, no pickle
    loaded = answer_probe.load(tmp_path, "squad")
    from sklearn.linear_model import LogisticRegression

    reference = LogisticRegression(C=1.0, max_iter=3000, random_state=0).fit((X - mean) / scale, wrong.astype(int))
    assert loaded.p_wrong(X[0]) == pytest.approx(reference.predict_proba(((X[:1] - mean) / scale))[0, 1], abs=1e-6)
    assert np.mean([(loaded.p_wrong(x) > 0.5) == w for x, w in zip(X, wrong)]) > 0.85
    loaded.check_serves("ab" * 32, "transformers", "bfloat16")
    for other in (("cd" * 32, "transformers", "bfloat16"), ("ab" * 32, "llamacpp", "bfloat16"),
                  ("ab" * 32, "transformers", "float32")):
        with pytest.raises(ConfigError, match="retrain it"):
            loaded.check_serves(*other)
    with pytest.raises(NotFoundError, match="arag gatekeeper probe"):
        answer_probe.load(tmp_path, "nothing")


def test_arag_gatekeeper_probe_trains_from_stored_states(tmp_path, monkeypatch, arag):
    from eval import probe_report
    from tests.unit.helpers import write_probe_labels

    write_probe_labels(tmp_path / "labels")
    meta = json.loads((tmp_path / "labels" / "meta.json").read_text())
    (tmp_path / "labels" / "meta.json").write_text(json.dumps({**meta, "model_sha256": "ab" * 32}))
    monkeypatch.setattr(probe_report, "splits", lambda dataset, ids: np.array([int(i[1:]) % 10 < 7 for i in ids]))
    code, out, err = arag("gatekeeper", "probe", "--labels", str(tmp_path / "labels"), "--name", "fake")
    assert code == 0, err
    assert "layer 8" in out
    probe = answer_probe.load(tmp_path / "data", "fake")
    assert probe.kind == "answer" and probe.layer == 8 and probe.meta["cv_auroc_train"] > 0.9
    code, out, err = arag("gatekeeper", "probe", "--labels", str(tmp_path / "labels"), "--name", "x", "--kind", "middle")
    assert code == 2 and "valid: prompt, answer" in err
