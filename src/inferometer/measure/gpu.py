"""GPU presence and memory, without importing a framework in the orchestrator: the device
nodes and nvidia-smi say whether there is a CUDA device; NVML (nvidia-ml-py), where installed,
reports device memory; the framework reports what it allocated."""

from __future__ import annotations

import glob
import os
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


def nvml_memory_mb(index: int = 0) -> dict[str, float]:
    """NVML's figures for GPU `index` (MB): memory in use on the device by every process
    (`nvml_device_used`) and by this one (`nvml_process_used`, where the driver lists it).
    Empty without nvidia-ml-py or a GPU."""
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return {}
    out: dict[str, float] = {}
    try:
        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            out["nvml_device_used"] = pynvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20
            for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
                # usedGpuMemory is None where the driver cannot tell (some containers)
                if proc.pid == os.getpid() and proc.usedGpuMemory is not None:
                    out["nvml_process_used"] = proc.usedGpuMemory / 2**20
        finally:
            pynvml.nvmlShutdown()
    except pynvml.NVMLError:
        pass
    return out


def torch_memory_mb(torch: Any) -> tuple[float, float]:
    """PyTorch's peak allocated and reserved CUDA memory since the last reset (MB)."""
    return (torch.cuda.max_memory_allocated() / 2**20, torch.cuda.max_memory_reserved() / 2**20)
