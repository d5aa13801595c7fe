"""The declared final test splits never overlap anything an earlier run used: final.json (2026-11-30)
and final2.json (2026-12-07: final.json minus everything the committed runs, the final runs
included, used)."""

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
                            ("old-test", {"split": "test", "dataset": "squad-dev:test"}, "d"),
                            ("final2", {"split": "final2", "dataset": "hotpotqa:test.csv:final2"}, "e"),
                            ("mixed-final2", {"split": "test2", "dataset": "mixed:test2"}, "f")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps(meta))
        (tmp_path / name / "records.jsonl").write_text(json.dumps({"id": qid}) + "\n")
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "labels.jsonl").write_text(json.dumps({"id": "g", "split": "train"}) + "\n")
    assert final_split.used_ids(tmp_path) == {"a", "d", "g"}  # final.json's view: neither final run counts
    assert final_split.used_ids(tmp_path, skip=("final2",)) == {"a", "b", "c", "d", "g"}  # final2's: the first does


# final2.json: declared 2026-12-07, before any tuning of the probe / two-stage router work, shared
# with the multi-step retrieval work; evaluated once, at the end.

@pytest.fixture(scope="module")
def final2():
    return json.loads(final_split.FINAL2_FILE.read_text())


def test_final2_is_declared_once():
    assert final_split.FINAL2_FILE.exists()
    with pytest.raises(SystemExit, match="declared once"):
        final_split.main(["--write-final2"])


def test_final2_is_final_minus_every_committed_use_the_final_runs_included(final2):
    final = json.loads(final_split.FINAL_FILE.read_text())
    used = final_split.used_ids(skip=("final2",))  # every committed record and label but final2's own runs
    assert set(final2) == {"squad-dev", "hotpotqa", "qa_wikidata"}
    for dataset in ("squad-dev", "hotpotqa"):
        ids = final2[dataset]
        assert ids == sorted(set(ids)) and set(ids) <= set(final[dataset])
        assert set(ids) == set(final[dataset]) - used, f"{dataset}: a committed run used final2 questions"
    # the first final evaluation's runs consumed their questions, and they are out
    for run in ("squad-final", "hotpotqa-final", "mixed-final"):
        consumed = {json.loads(line)["id"] for line in (final_split.RESULTS / run / "records.jsonl").open()}
        assert consumed and not consumed & (set(final2["squad-dev"]) | set(final2["hotpotqa"]) | set(final2["qa_wikidata"]))
    assert (len(final2["squad-dev"]), len(final2["hotpotqa"])) == (2774, 132)


def test_final2_qa_wikidata_is_the_unused_test_band(final2):
    indices = [int(i.removeprefix("wikidata-")) for i in final2["qa_wikidata"]]
    assert indices == sorted(set(indices)) and all(i % 10 in (8, 9) for i in indices)
    used = {i for i in final_split.used_ids(skip=("final2",)) if i.startswith("wikidata-")}
    assert used and not used & set(final2["qa_wikidata"])
    assert len(indices) == 3877  # the test band's 3,937 templated prompts less mixed-final's 60


@pytest.fixture
def shared(settings):
    if not (settings.shared_data_dir / "squad_dev_v1.1.json").is_file():
        pytest.skip("needs ../shared/data")
    return settings


def test_final2_rebuilds_identically_from_the_committed_files(shared, final2):
    assert final_split.build_final2(shared) == final2


def test_the_final2_split_loads_for_squad_and_hotpotqa(shared, final2):
    from eval.datasets import load_eval_set

    for dataset in ("squad-dev", "hotpotqa"):
        loaded = load_eval_set(dataset, shared, "final2")
        assert loaded.name.endswith(":final2") and sorted(s.id for s in loaded.samples) == final2[dataset]


def test_unknown_splits_are_refused(settings):
    from adaptive_rag.errors import UserError
    from eval.datasets import load_eval_set

    with pytest.raises(UserError, match="unknown split 'test2'"):  # mixed's, not squad-dev's
        load_eval_set("squad-dev", settings, "test2")


def test_training_refuses_runs_on_test_and_final_splits_but_not_dev(tmp_path):
    from adaptive_rag.errors import UserError
    from eval.gatekeeper_cli import _training_runs

    for name, meta in (("dev", {"split": "dev", "dataset": "squad:squad_dev_v1.1.json:dev"}),
                       ("train", {"split": "train", "dataset": "hotpotqa:train.csv:train"}),
                       ("final2", {"split": "final2", "dataset": "squad:squad_dev_v1.1.json:test:final2"}),
                       ("test2", {"split": "test2", "dataset": "mixed:test2"}),
                       ("final", {"split": "final", "dataset": "hotpotqa:test.csv:final"})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps(meta))
        (tmp_path / name / "records.jsonl").write_text(json.dumps({"id": name, "policy": "closed_book"}) + "\n")
    assert [r["id"] for r in _training_runs([tmp_path / "dev", tmp_path / "train"])] == ["dev", "train"]
    for held_out in ("final2", "test2", "final"):
        with pytest.raises(UserError, match="never trained on"):
            _training_runs([tmp_path / "dev", tmp_path / held_out])
