"""The declared final test split never overlaps anything an earlier run used."""

import json

import pytest

from eval import final_split


def test_final_split_is_disjoint_from_every_committed_run():
    final = json.loads(final_split.FINAL_FILE.read_text())
    used = final_split.used_ids()
    assert len(used) > 500  # the committed evaluations and labels were found
    for dataset, ids in final.items():
        assert ids and len(ids) == len(set(ids))
        assert not used & set(ids), f"{dataset}: final questions that an earlier run used"
    assert len(final["hotpotqa"]) == 300  # test.csv has 500; 200 were evaluated before


def test_the_final_split_is_declared_once():
    assert final_split.FINAL_FILE.exists()
    with pytest.raises(SystemExit, match="declared once"):
        final_split.main(["--write"])


def test_final_split_only_for_squad_and_hotpotqa(settings):
    from adaptive_rag.errors import UserError
    from eval.datasets import load_eval_set

    with pytest.raises(UserError, match="final split exists for squad-dev and hotpotqa only"):
        load_eval_set("jsonl:/nowhere.jsonl", settings, "final")


def test_the_final_runs_own_records_do_not_count_as_earlier_use(tmp_path):
    for name, meta, qid in (("dev", {"split": "dev", "dataset": "mixed:dev"}, "a"),
                            ("final", {"split": "final", "dataset": "squad-dev:final"}, "b"),
                            ("mixed-final", {"split": "test", "dataset": "mixed:test"}, "c"),
                            ("old-test", {"split": "test", "dataset": "squad-dev:test"}, "d")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps(meta))
        (tmp_path / name / "records.jsonl").write_text(json.dumps({"id": qid}) + "\n")
    assert final_split.used_ids(tmp_path) == {"a", "d"}
