"""GPU presence and memory, without importing a framework in the orchestrator: the device
nodes and nvidia-smi say whether there is a CUDA device; NVML (nvidia-ml-py), where installed,
reports device memory; the framework reports what it allocated."""

from __future__ import annotations

import glob
import shutil
import subprocess
from typing import Any


def cuda_devices() -> list[str]:
    """Names of the NVIDIA GPUs this process can see ([] when none)."""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20)
            names = [ln.split(":", 1)[1].split("(")[0].strip()
                     for ln in out.stdout.splitlines() if ln.startswith("GPU ")]
            if out.returncode == 0 and names:
                return names
        except (OSError, subprocess.TimeoutExpired):
            pass
    return [f"/dev/{p.rsplit('/', 1)[1]}" for p in sorted(glob.glob("/dev/nvidia[0-9]*"))]


def no_cuda_reason() -> str:
    return ("no CUDA device found (nvidia-smi -L lists none and there is no /dev/nvidia*); "
            "use --device cpu")


def nvml_used_mb(index: int = 0) -> float | None:
    """Device memory in use (all processes) from NVML; None without nvidia-ml-py or a GPU."""
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        try:
            info = pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(index))
            return info.used / 2**20
        finally:
            pynvml.nvmlShutdown()
    except pynvml.NVMLError:
        return None


def torch_memory_mb(torch: Any) -> tuple[float, float]:
    """PyTorch's peak allocated and reserved CUDA memory since the last reset (MB)."""
    return (torch.cuda.max_memory_allocated() / 2**20, torch.cuda.max_memory_reserved() / 2**20)
