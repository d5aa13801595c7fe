"""What this CPU can do, read once: model name, the feature flags that decide how fast local
models run, and the number of physical cores.

Why it matters: torch's bf16 matrix multiply is only fast where the CPU computes bf16 natively
(x86 `avx512_bf16` or `amx_bf16`, Arm `bf16`). On an AVX2-only CPU it ran ~50x slower than
float32 here, so the transformers engine picks its dtype from these flags (`torch_dtype_for`),
never by assumption. llama.cpp uses one thread per physical core (`physical_cores`): a second
hyper-thread on the same core only adds contention to its matrix kernels.
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass
from pathlib import Path

# the flags every benchmark prints (x86 names as /proc/cpuinfo spells them; Arm's `bf16` too)
REPORTED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_tile", "bf16")
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


@dataclass(frozen=True)
class CpuInfo:
    model: str
    flags: frozenset[str]
    physical_cores: int
    logical_cpus: int
    machine: str

    @property
    def native_bf16(self) -> bool:
        return has_native_bf16(self.flags)

    def summary(self) -> dict:
        """What a benchmark prints: model, the reported flags present, cores."""
        return {"model": self.model, "machine": self.machine,
                "flags": [f for f in REPORTED_FLAGS if f in self.flags],
                "native_bf16": self.native_bf16, "physical_cores": self.physical_cores,
                "logical_cpus": self.logical_cpus}


def has_native_bf16(flags) -> bool:
    return any(f in flags for f in NATIVE_BF16_FLAGS)


def torch_dtype_for(flags, requested: str = "auto") -> str:
    """The transformers engine's dtype: `requested` unless it is "auto"; then bfloat16 where the
    CPU computes it natively, float32 otherwise."""
    if requested != "auto":
        return requested
    return "bfloat16" if has_native_bf16(flags) else "float32"


def parse_cpuinfo(text: str, usable: int | None = None) -> tuple[str, frozenset[str], int]:
    """(model name, flags, physical cores) from /proc/cpuinfo text. Physical cores are distinct
    (physical id, core id) pairs, capped at `usable` (the CPUs this process may run on)."""
    model, flags, cores = "", set(), set()
    physical = core = None
    for line in text.splitlines() + [""]:
        if not line.strip():  # end of one processor's block
            if core is not None:
                cores.add((physical, core))
            physical = core = None
            continue
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key in ("model name", "Model Name", "CPU part") and not model:
            model = value
        elif key in ("flags", "Features"):
            flags.update(value.split())
        elif key == "physical id":
            physical = value
        elif key == "core id":
            core = value
    n = len(cores) or usable or 1
    return model, frozenset(flags), min(n, usable) if usable else n


@functools.lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        usable = os.cpu_count() or 1
    path = Path("/proc/cpuinfo")
    text = path.read_text(errors="replace") if path.is_file() else ""
    model, flags, physical = parse_cpuinfo(text, usable)
    return CpuInfo(model=model or platform.processor() or "unknown", flags=flags, physical_cores=physical,
                   logical_cpus=usable, machine=platform.machine())
