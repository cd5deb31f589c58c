"""Managed per-runtime environments.

Some runtimes cannot share one Python environment (MXNet 1.9.1 needs numpy<1.24; onnx2tf pins
tensorflow, numpy and onnx exactly; onnxruntime-openvino replaces onnxruntime's package).  An
environment is a venv under the cache directory holding one runtime plus numpy and psutil (the
worker's whole import closure); workers for that runtime run with its interpreter, importing
this package from its source tree through PYTHONPATH.

An environment is registered by its `env.json`, written last: a failed creation leaves nothing
registered, and its directory is removed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import runtimes
from .childenv import worker_env
from .errors import InferometerError, UsageError
from .models.resolve import cache_dir
from .results.codec import from_dict, to_dict
from .runtimes.base import Availability

# Same pin as the repository's constraints.txt (a test keeps them equal): an environment must
# never resolve torch to a multi-GB CUDA build.
CONSTRAINTS = ("torch==2.13.0",)
CORE = ("numpy", "psutil")  # the worker's import closure besides the stdlib

# Environments known by name: runtime served, pip requirements.
RECIPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "mxnet": ("mxnet", ("mxnet==1.9.1", "numpy<1.24", "onnx==1.16.2", "protobuf<5")),
    "ncnn": ("ncnn", ("ncnn", "pnnx")),
    "onnxruntime-openvino": ("onnxruntime_openvino", ("onnxruntime-openvino",)),
    # onnx2tf pins tensorflow 2.19, LiteRT 2.1, numpy 1.26.4, onnx 1.19.1 and more itself.
    "tensorflow": ("tensorflow", ("onnx2tf",)),
    # onnxsim folds a transformer's shape arithmetic before the Relax frontend reads it
    "tvm": ("tvm", ("apache-tvm", "onnx", "onnxsim==0.4.36")),
    # x2paddle 1.6 needs onnx 1.16.2 and (undeclared) six and requests; onnxsim as for tvm
    "paddle": ("paddle", ("paddlepaddle==3.3.1", "x2paddle==1.6.0", "onnx==1.16.2", "six",
                          "requests", "onnxsim==0.4.36")),
    "jax": ("jax", ("jax", "onnx")),
    # serve --engine triton: PyTriton's bundled tritonserver hosting ONNX Runtime or OpenVINO
    # sessions (probed with onnxruntime); see BASES for its interpreter.
    "triton": ("onnxruntime", ("nvidia-pytriton", "onnxruntime", "openvino")),
}
# Environments that must be made from another interpreter than this one: Triton's Python-backend
# stub, which PyTriton runs inside tritonserver, fails under the pyenv build of 3.11.7
# ('_thread.RLock' has no '_recursion_count') and works under the system's own python3.
BASES = {"triton": "/usr/bin/python3"}
# pip distribution -> runtime, for version environments such as onnxruntime==1.20.1
DISTS = {"onnxruntime": "onnxruntime", "openvino": "openvino", "torch": "torch",
         "onnxruntime-openvino": "onnxruntime_openvino", "mxnet": "mxnet", "ncnn": "ncnn"}
_SPEC = re.compile(r"^([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-]+)$")


class EnvError(InferometerError):
    """An environment could not be created, or is missing."""


@dataclass(frozen=True)
class EnvInfo:
    name: str
    runtime: str
    requirements: tuple[str, ...]
    python: str
    runtime_version: str
    created: str
    packages: dict[str, str] = field(default_factory=dict)


def root() -> Path:
    env = os.environ.get("INFEROMETER_ENVS")
    return Path(env) if env else cache_dir() / "envs"


def _dir(name: str) -> Path:
    return root() / name.replace("/", "_")


def load(name: str) -> EnvInfo | None:
    meta = _dir(name) / "env.json"
    if not meta.exists():
        return None
    return from_dict(EnvInfo, json.loads(meta.read_text()))


def list_envs() -> list[EnvInfo]:
    if not root().exists():
        return []
    return [e for p in sorted(root().iterdir()) if (e := load(p.name)) is not None]


def resolve_spec(spec: str) -> tuple[str, str, tuple[str, ...]]:
    """`mxnet` (a recipe) or `onnxruntime==1.20.1` (a version) -> (name, runtime, requirements)."""
    if spec in RECIPES:
        runtime, reqs = RECIPES[spec]
        return spec, runtime, reqs
    m = _SPEC.match(spec)
    if m is None:
        raise UsageError(f"unknown environment '{spec}'; valid: {', '.join(RECIPES)}, or a "
                         f"pinned runtime package such as onnxruntime==1.20.1")
    dist, version = m.group(1).lower(), m.group(2)
    if dist not in DISTS:
        raise UsageError(f"'{dist}' is not a runtime package; valid: {', '.join(DISTS)}")
    return f"{DISTS[dist]}@{version}", DISTS[dist], (spec,)


def _pip_reason(output: str) -> str:
    """pip's own explanation in one paragraph: its ERROR lines and what they point at."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    keep = [ln for ln in lines if ln.startswith(("ERROR", "The conflict is caused by", "  "))
            or "requested" in ln or "depends on" in ln]
    return " ".join(keep[-8:] or lines[-3:])


def _run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, env=env)


def create(spec: str, log=print) -> EnvInfo:  # type: ignore[no-untyped-def]
    name, runtime, reqs = resolve_spec(spec)
    existing = load(name)
    if existing is not None and tuple(existing.requirements) == reqs:
        log(f"environment {name} exists (runtime {existing.runtime_version}); reusing it")
        return existing
    if existing is not None:  # its recipe changed since it was made: bring it up to the new one
        log(f"environment {name} was made for {' '.join(existing.requirements)}; "
            f"pip install {' '.join(reqs)} into it ...")
        return _register(name, runtime, reqs, _install(existing.python, reqs), existing.created)
    path = _dir(name)
    shutil.rmtree(path, ignore_errors=True)  # a half-made leftover without env.json
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        log(f"creating environment {name} in {path} ...")
        base = BASES.get(name, sys.executable)
        if not Path(base).is_file():
            raise EnvError(f"environment {name} is made from {base}, which is missing: "
                           "install the system's python3 (apt-get install python3 python3-venv)")
        r = _run([base, "-m", "venv", str(path)])
        if r.returncode != 0:
            raise EnvError(f"python -m venv failed: {r.stderr.strip()[-500:]}")
        log(f"pip install {' '.join(reqs)} (this can take minutes) ...")
        python = _install(str(path / "bin" / "python"), reqs)
        return _register(name, runtime, reqs, python,
                         dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise


def _install(python: str, reqs: tuple[str, ...]) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(CONSTRAINTS) + "\n")
    r = _run([python, "-m", "pip", "install", "--disable-pip-version-check", "-c", f.name,
              *reqs, *CORE])
    Path(f.name).unlink(missing_ok=True)
    if r.returncode != 0:
        raise EnvError(f"pip could not install {' '.join(reqs)}: "
                       f"{_pip_reason(r.stdout + r.stderr)}")
    return python


def _register(name: str, runtime: str, reqs: tuple[str, ...], python: str,
              created: str) -> EnvInfo:
    """Probe the runtime, then write env.json: only a working environment is registered."""
    version = _probe_runtime(python, runtime)
    info = EnvInfo(name=name, runtime=runtime, requirements=reqs, python=python,
                   runtime_version=version, created=created, packages=_packages(python))
    (_dir(name) / "env.json").write_text(json.dumps(to_dict(info), indent=1))
    return info


def _probe_runtime(python: str, runtime: str) -> str:
    """Import the runtime inside the new environment, as a worker will: catches an install
    that succeeded but cannot import (the numpy ABI trap) before the env is registered."""
    code = f"from inferometer.runtimes import get; print(get({runtime!r})().version())"
    r = _run([python, "-c", code], env=worker_env(None))
    if r.returncode != 0:
        tail = [ln for ln in r.stderr.splitlines() if ln.strip()][-1:] or ["(no message)"]
        raise EnvError(f"the environment installed but {runtime} does not import: {tail[0]}")
    return r.stdout.strip().splitlines()[-1]


def _packages(python: str) -> dict[str, str]:
    code = ("import importlib.metadata as m, json; print(json.dumps({d.metadata['Name'].lower(): "
            "d.version for d in m.distributions()}))")
    r = _run([python, "-c", code])
    return json.loads(r.stdout) if r.returncode == 0 else {}


def remove(name: str) -> None:
    path = _dir(name)
    if not path.exists():
        known = ", ".join(e.name for e in list_envs()) or "none"
        raise UsageError(f"no environment '{name}'; existing: {known}")
    shutil.rmtree(path)


# -- how runtimes map onto environments -------------------------------------------------------
def env_name(runtime_name: str) -> str | None:
    """The environment a runtime name runs in: 'onnxruntime@1.20.1' names its own; a runtime
    class may declare one (`environment = "mxnet"`); None means this interpreter."""
    base, _, version = runtime_name.partition("@")
    if version:
        return runtime_name
    return getattr(runtimes.get(base), "environment", None)


def python_for(runtime_name: str) -> str:
    name = env_name(runtime_name)
    if name is None:
        return sys.executable
    info = load(name)
    if info is None:
        raise EnvError(f"runtime {runtime_name} needs its environment: "
                       f"inferometer env create {_create_arg(runtime_name, name)}")
    return info.python


def _create_arg(runtime_name: str, name: str) -> str:
    base, _, version = runtime_name.partition("@")
    if not version:
        return name
    dist = next((d for d, r in DISTS.items() if r == base), base)
    return f"{dist}=={version}"


def availability(runtime_name: str) -> Availability:
    base = runtime_name.partition("@")[0]
    name = env_name(runtime_name)
    if name is None:
        return runtimes.get(base)().available()
    info = load(name)
    if info is None:
        return Availability(False, reason=f"its environment '{name}' does not exist",
                            install=f"inferometer env create {_create_arg(runtime_name, name)}")
    return Availability(True, version=info.runtime_version)


def runtime_names() -> list[str]:
    """Registered runtimes plus one name per version environment (e.g. onnxruntime@1.20.1)."""
    return runtimes.names() + [e.name for e in list_envs() if "@" in e.name]
