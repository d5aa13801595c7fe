"""Engine registry, catalog entries checked per engine, dtype from CPU flags, panel settings."""

import pytest
from pydantic import ValidationError

from adaptive_rag.errors import ConfigError
from adaptive_rag.models import cpu, engines
from adaptive_rag.models.catalog import DEFAULT_CATALOG, ModelSpec
from adaptive_rag.models.llamacpp_lm import LlamaCppLM
from adaptive_rag.models.transformers_lm import TransformersLM
from adaptive_rag.models.openai_lm import OpenAICompatibleLM
from adaptive_rag.settings import Settings


def test_unknown_engine_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown engine 'vllm'; valid: llamacpp, transformers, openai"):
        engines.engine_class("vllm")
    with pytest.raises(ValidationError, match="unknown engine 'vllm'; valid: auto, llamacpp"):
        ModelSpec(backend="vllm")


def test_the_registry_holds_one_class_per_engine():
    assert engines.ENGINES == {"llamacpp": LlamaCppLM, "transformers": TransformersLM, "openai": OpenAICompatibleLM}
    assert all(name == cls.engine for name, cls in engines.ENGINES.items())


def _cpu_with(monkeypatch, *flags):
    fake = cpu.CpuInfo("test CPU", frozenset(flags), 2, 2, "x86_64")
    monkeypatch.setattr(cpu, "cpu_info", lambda: fake)


@pytest.fixture
def avx2_cpu(monkeypatch):
    _cpu_with(monkeypatch, "avx2", "fma")


@pytest.mark.parametrize("flags, spec, engine", [
    # bundled GGUFs run on the engine measured fastest for the CPU: llama.cpp without native bf16,
    # transformers in bf16 with it
    (("avx2", "fma"), dict(pull="qwen2.5-coder-0.5b"), "llamacpp"),
    (("avx2", "avx512f", "avx512_bf16"), dict(pull="qwen2.5-coder-0.5b"), "transformers"),
    (("avx2",), dict(path="/m/model.gguf"), "llamacpp"),
    (("avx2",), dict(path="/m/hf-directory"), "transformers"),
    (("avx2",), dict(pull="qwen2.5-coder-0.5b", dtype="float32"), "transformers"),  # a torch dtype means transformers
    (("avx2",), dict(url="http://host/v1"), "openai"),
    (("avx512_bf16",), dict(backend="llamacpp", pull="smollm2-135m"), "llamacpp"),  # an explicit engine wins
])
def test_auto_resolves_the_engine(monkeypatch, flags, spec, engine):
    _cpu_with(monkeypatch, *flags)
    assert ModelSpec(**spec).engine == engine


def test_each_engine_checks_its_own_fields(avx2_cpu):
    with pytest.raises(ConfigError, match="openai engine but has no url"):
        engines.check("remote", ModelSpec(backend="openai"))
    with pytest.raises(ConfigError, match="llamacpp engine, which does not use: dtype, url"):
        engines.check("m", ModelSpec(backend="llamacpp", pull="smollm2-135m", url="http://x", dtype="float32"))
    with pytest.raises(ConfigError, match="reads GGUF files"):
        engines.check("m", ModelSpec(backend="llamacpp", path="/models/hf-dir"))
    with pytest.raises(ConfigError, match="needs a `path`"):
        engines.check("m", ModelSpec(backend="transformers"))
    for name, spec in DEFAULT_CATALOG.items():
        assert engines.check(name, spec) is LlamaCppLM


def test_a_missing_model_names_the_pull_command(tmp_path):
    with pytest.raises(ConfigError, match="run `arag models pull qwen2.5-coder-1.5b`"):
        engines.build("qwen2.5-coder-1.5b", DEFAULT_CATALOG["qwen2.5-coder-1.5b"], tmp_path)


@pytest.mark.parametrize("flags, requested, dtype", [
    ({"avx2", "fma"}, "auto", "float32"),  # AVX2 only: bf16 would run ~50x slower
    ({"avx2", "avx512f", "avx512_bf16"}, "auto", "bfloat16"),
    ({"avx2", "amx_bf16", "amx_tile"}, "auto", "bfloat16"),
    ({"fp", "asimd", "bf16"}, "auto", "bfloat16"),  # Arm
    ({"avx2"}, "bfloat16", "bfloat16"),  # an explicit choice wins
    ({"avx512_bf16"}, "float32", "float32"),
])
def test_dtype_follows_the_cpu_flags(flags, requested, dtype):
    assert cpu.torch_dtype_for(frozenset(flags), requested) == dtype


CPUINFO = """processor\t: 0
model name\t: Example CPU
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu avx2 fma
\nprocessor\t: 1
model name\t: Example CPU
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu avx2 fma
\nprocessor\t: 2
model name\t: Example CPU
physical id\t: 0
core id\t\t: 1
flags\t\t: fpu avx2 fma
"""


def test_cpuinfo_counts_physical_cores_not_hyperthreads():
    model, flags, cores = cpu.parse_cpuinfo(CPUINFO, usable=3)
    assert model == "Example CPU" and {"avx2", "fma"} <= flags and cores == 2
    assert cpu.parse_cpuinfo(CPUINFO, usable=1)[2] == 1  # capped at the CPUs this process may use
    assert not cpu.has_native_bf16(flags)


def test_transformers_engine_shows_its_dtype(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    lm = TransformersLM("m", gguf, tmp_path, 4096, "float32")
    assert lm.describe()["dtype"] == "float32" and lm.label == "transformers float32"
    auto = TransformersLM("m", gguf, tmp_path, 4096)
    assert auto.dtype == cpu.torch_dtype_for(cpu.cpu_info().flags)


def test_panel_settings_parse_and_validate(tmp_path, monkeypatch):
    monkeypatch.setenv("ARAG_PANEL", "smollm2-135m, qwen2.5-coder-1.5b")
    monkeypatch.setenv("ARAG_STRONG_MODEL", "qwen2.5-coder-1.5b")
    s = Settings(data_dir=tmp_path)
    assert s.panel == ["smollm2-135m", "qwen2.5-coder-1.5b"]
    assert s.panel_models == ["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "smollm2-135m"]
    monkeypatch.setenv("ARAG_PANEL", '["smollm2-135m"]')
    assert Settings(data_dir=tmp_path).panel == ["smollm2-135m"]
    monkeypatch.setenv("ARAG_STRONG_MODEL", "gpt-9")
    with pytest.raises(ValidationError, match="unknown model 'gpt-9' in strong_model; the catalog has: qwen2.5-coder-0.5b"):
        Settings(data_dir=tmp_path)


def test_an_unknown_panel_model_is_one_line_from_the_cli(tmp_path, monkeypatch, capsys):
    from adaptive_rag import cli

    monkeypatch.setenv("ARAG_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ARAG_READER_MODEL", "gpt-9")
    assert cli.run(["models", "list"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown model 'gpt-9' in reader_model" in err


def test_models_list_shows_engine_dtype_context_prices_and_presence(tmp_path, monkeypatch, capsys, avx2_cpu):
    import json

    from adaptive_rag import cli

    monkeypatch.setenv("ARAG_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ARAG_STRONG_MODEL", "qwen2.5-coder-1.5b")
    monkeypatch.setenv("ARAG_MODELS", '{"hf": {"path": "/nowhere/hf-dir", "dtype": "float32", "tags": ["weak"]},'
                                      ' "remote": {"url": "http://host/v1", "input_per_m": 0.15, "output_per_m": 0.6}}')
    assert cli.run(["models", "list", "--json"]) == 0
    rows = {r["name"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    strong = rows["qwen2.5-coder-1.5b"]
    assert strong["engine"] == "llamacpp" and strong["roles"] == ["strong"] and strong["present"] is False
    assert strong["where"] == "arag models pull qwen2.5-coder-1.5b" and strong["context_window"] == 32768
    assert strong["input_per_m"] == 0.15 and "strong" in strong["tags"]
    assert rows["hf"]["engine"] == "transformers" and rows["hf"]["dtype"] == "float32" and not rows["hf"]["in_panel"]
    assert rows["remote"]["engine"] == "openai" and rows["remote"]["present"] is None
    assert rows["qwen2.5-coder-0.5b"]["roles"] == ["reader", "long_context"]
    assert cli.run(["models", "list"]) == 0
    text = capsys.readouterr().out
    assert "qwen2.5-coder-1.5b: llamacpp, 32768 ctx, $0.15/$0.3 per 1M in/out" in text and "CPU: " in text


def test_slot_pool_prefers_the_slot_holding_the_longest_shared_prefix_and_waits_when_full():
    import threading

    from adaptive_rag.models.llamacpp_lm import SlotPool

    pool = SlotPool(2)
    a = pool.acquire("system\x1fcontext A question 1")
    b = pool.acquire("system\x1fcontext B question 1")
    assert {a, b} == {0, 1}
    pool.release(a)
    pool.release(b)
    assert pool.acquire("system\x1fcontext B question 2") == b  # its prefix is cached there
    got = []
    waiter = threading.Thread(target=lambda: got.append(pool.acquire("x")))
    c = pool.acquire("y")
    waiter.start()
    waiter.join(timeout=0.2)
    assert waiter.is_alive() and not got  # both slots taken: the third request waits
    pool.release(c)
    waiter.join(timeout=5)
    assert got == [c]
