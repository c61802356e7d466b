"""The floating-point precision an engine computes in: ``fp32``, or ``bf16`` where the hardware
computes bfloat16 natively; ``auto`` picks bf16 only on a CPU that reports AMX or AVX-512 BF16
(docs/benchmarks.md: 0.4-0.5x the time of fp32 there, within the demo's top-1)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch

Precision = Literal["fp32", "bf16", "auto"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "auto")
AUTO_PRECISION = "auto"
# The most top-1 (points) bf16 may lose against fp32 on the demo's test clips: the demo measures
# it and warns beyond it (docs/benchmarks.md has the figures).
BF16_MAX_DROP = 0.5
# /proc/cpuinfo flags of native bfloat16 arithmetic, the fastest first, with their names.
_BF16_FLAGS = {"amx_bf16": "AMX", "avx512_bf16": "AVX-512 BF16"}


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags as Linux reports them (empty where there is no /proc/cpuinfo)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def bf16_feature(flags: set[str] | None = None) -> str | None:
    """The CPU feature that computes bfloat16 natively ("AMX", "AVX-512 BF16"), or None.
    ``flags``: the CPU's flags (default :func:`cpu_flags`; elsewhere than Linux, PyTorch's view)."""
    flags = cpu_flags() if flags is None else flags
    for flag, name in _BF16_FLAGS.items():
        if flag in flags:
            return name
    if not flags and getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)():
        return "AVX-512 BF16"
    return None


def check_precision(precision: str) -> None:
    """Refuse a precision that is not fp32, bf16 or auto."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")


def resolve_precision(precision: str, device: torch.device, flags: set[str] | None = None) -> tuple[str, str]:
    """``(precision, why)`` for an engine on ``device`` that computes in fp32 or bf16: ``auto``
    is bf16 on a CPU with native bfloat16 (AMX, AVX-512 BF16), fp32 elsewhere."""
    check_precision(precision)
    device = torch.device(device)
    if precision == "fp32":
        return "fp32", "fp32 (asked for)"
    feature = bf16_feature(flags) if device.type == "cpu" else None
    lacking = "this CPU has no AMX or AVX-512 BF16"
    if precision == "bf16":
        if device.type == "cpu" and feature is None:
            return "bf16", f"bf16 (asked for; {lacking}: emulated, likely slower than fp32)"
        return "bf16", "bf16 (asked for)"
    if feature is not None:
        return "bf16", f"bf16 (auto: this CPU has {feature})"
    where = lacking if device.type == "cpu" else f"auto keeps fp32 on {device.type}"
    return "fp32", f"fp32 (auto: {where})"
