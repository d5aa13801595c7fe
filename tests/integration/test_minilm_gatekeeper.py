"""The fine-tuned MiniLM gatekeeper on the real offline weights: it learns a text-only rule and
survives a pickle round trip (how artifacts store it)."""

import pickle

import numpy as np
import pytest

from gatekeeper.classifiers import MiniLmGatekeeper

pytestmark = pytest.mark.integration


def test_minilm_classifier_learns_question_form_and_round_trips():
    who = [f"Who was the {w} of the treaty?" for w in ("author", "signer", "witness", "drafter", "sponsor", "editor")]
    why = [f"Why did the {w} fail in the end?" for w in ("harvest", "merger", "campaign", "bridge", "reform", "strike")]
    texts = who + why
    y = np.array([0] * len(who) + [1] * len(why))
    X = np.zeros((len(texts), 1))
    clf = MiniLmGatekeeper(epochs=6).fit(X, y, texts, 4, seed=0)
    probe = ["Who was the founder of the treaty?", "Why did the rebellion fail in the end?"]
    logits = clf.logits(np.zeros((2, 1)), probe)
    assert logits.shape == (2, 4) and logits[0].argmax() == 0 and logits[1].argmax() == 1
    again = pickle.loads(pickle.dumps(clf))
    assert np.allclose(again.logits(np.zeros((2, 1)), probe), logits)
