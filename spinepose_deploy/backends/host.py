"""Host fingerprint: what decides inference speed on this machine, and a short stable hash of it.

CPU model and the instruction-set flags runtimes dispatch on (AVX2, AVX-512, VNNI, AMX, BF16, FP16, NEON),
core counts, memory, OS, Python, the runtime libraries' versions (read from package metadata, so no
runtime is imported) and the accelerators ``backends.capabilities()`` reports. The hash (``host_key``)
covers only what changes which configuration is fastest: not the memory size or the Python patch level.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from . import capabilities
from .formats import FORMATS

# runtime libraries by distribution name (several distributions provide one import name)
LIBRARIES: dict[str, tuple[str, ...]] = {
    **{row.distributions[0]: row.distributions for row in FORMATS.values()},
    "numpy": ("numpy",),
    "opencv": ("opencv-python", "opencv-python-headless", "opencv-contrib-python"),
}
# flags that change which kernels a runtime picks (x86 /proc/cpuinfo names, ARM "Features" names)
_FLAG_PREFIXES = ("avx", "amx", "fma", "f16c", "sse4", "asimd", "sve", "bf16", "i8mm", "fphp", "asimdhp", "neon")
_KEY_FIELDS = ("cpu", "flags", "machine", "cores_logical", "os", "libraries", "accelerators")


def _cpuinfo(path: Path = Path("/proc/cpuinfo")) -> tuple[str, list[str]]:
    """(model name, relevant flags) from /proc/cpuinfo; empty where the file does not exist (macOS, Windows)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "", []
    model, flags = "", []
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if not model and key in ("model name", "hardware", "cpu model"):
            model = value.strip()
        elif not flags and key in ("flags", "features"):
            flags = sorted({f for f in value.split() if f.startswith(_FLAG_PREFIXES)})
    return model, flags


def library_versions() -> dict[str, str]:
    """Installed version of each runtime library (by package metadata; nothing is imported)."""
    found = {}
    for name, distributions in LIBRARIES.items():
        for distribution in distributions:
            try:
                found[name] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return found


def _accelerators() -> list[str]:
    """Non-CPU devices some backend can run on here, e.g. ``onnxruntime/cuda``."""
    return sorted({f"{c.backend}/{c.device}" for c in capabilities() if c.ok and c.device not in ("cpu", "-")})


@functools.lru_cache(maxsize=1)
def _fingerprint() -> str:

    model, flags = _cpuinfo()
    data: dict[str, Any] = {
        "cpu": model or platform.processor() or platform.machine(),
        "flags": flags,
        "machine": platform.machine(),
        "cores_logical": os.cpu_count(),
        "cores_physical": psutil.cpu_count(logical=False),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "libraries": library_versions(),
        "accelerators": _accelerators(),
    }
    return json.dumps(data, sort_keys=True)


def fingerprint() -> dict[str, Any]:
    """This host's fingerprint (computed once per process), with its ``key``."""
    data = json.loads(_fingerprint())
    data["key"] = host_key(data)
    return data


def host_key(data: dict[str, Any] | None = None) -> str:
    """12 hex digits identifying the speed-relevant part of a fingerprint (this host's by default)."""
    data = data if data is not None else json.loads(_fingerprint())
    stable = {name: data.get(name) for name in _KEY_FIELDS}
    return hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()[:12]


def describe(data: dict[str, Any]) -> str:
    """One line for a table header: CPU, flags, cores, OS, libraries."""
    libs = ", ".join(f"{k} {v}" for k, v in data.get("libraries", {}).items() if k not in ("numpy", "opencv"))
    flags = " ".join(data.get("flags") or []) or "flags unknown"
    accel = f"; accelerators: {', '.join(data['accelerators'])}" if data.get("accelerators") else ""
    return (
        f"{data.get('cpu')} ({flags}), {data.get('cores_logical')} cores, {data.get('ram_gb')} GiB, "
        f"{data.get('os')}, Python {data.get('python')}; {libs}{accel}"
    )
