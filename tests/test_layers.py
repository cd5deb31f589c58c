"""Architecture rules that must not erode: imports go downward only, and the worker stays
light enough to run inside another runtime's environment."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import inferometer

PKG = Path(inferometer.__file__).parent

# Lower layers may never import these upper ones.
FORBIDDEN = {
    "_worker": {"cli", "plan", "runner", "progress", "report", "cluster", "executor", "spawn"},
    "scenarios": {"cli", "plan", "runner", "progress", "report", "_worker", "runtimes"},
    "runtimes": {"cli", "plan", "runner", "progress", "report", "_worker", "stats", "results"},
    "models": {"cli", "plan", "runner", "progress", "report", "_worker", "runtimes"},
    "measure": {"cli", "plan", "runner", "progress", "report", "_worker", "runtimes", "models"},
    "stats": {"cli", "plan", "runner", "progress", "report", "_worker", "runtimes", "models",
              "measure", "results"},
    "results": {"cli", "plan", "runner", "progress", "report", "_worker", "runtimes", "models",
                "loadgen", "envs"},
    # Reports, comparisons and history read stored runs only: never a runtime or the runner.
    "report": {"cli", "plan", "runner", "progress", "_worker", "runtimes", "scenarios", "loadgen",
               "envs", "training"},
    "_train": {"cli", "plan", "runner", "progress", "report", "loadgen", "envs", "runtimes",
               "training"},
    "_serve": {"cli", "plan", "runner", "progress", "report", "loadgen", "envs", "advisor",
               "serve"},
    # The advisor sits above load tests and below the CLI; nothing below may reach up to it.
    "loadgen": {"cli", "advisor", "report", "serve"},
    "advisor": {"cli", "serve"},
    # The server sits on the load tests' pool; the protocol's codec is a leaf both share.
    "serve": {"cli", "advisor", "report", "runner", "plan"},
    "oip": {"cli", "plan", "runner", "progress", "report", "_worker", "runtimes", "models",
            "measure", "results", "loadgen", "serve", "advisor", "envs"},
    # Executors run work and know nothing of runs: the runner drives them, Ray sits behind one.
    "spawn": {"cli", "plan", "runner", "progress", "report", "executor", "cluster", "advisor",
              "serve", "loadgen"},
    "executor": {"cli", "plan", "runner", "progress", "report", "cluster", "advisor", "serve",
                 "loadgen"},
    "cluster": {"cli", "plan", "runner", "progress", "report", "advisor", "serve", "loadgen"},
}
for _lower in ("_worker", "scenarios", "runtimes", "models", "measure", "stats", "results",
               "report", "_train"):
    FORBIDDEN[_lower] = FORBIDDEN[_lower] | {"advisor"}
# The commands' work sits under the CLI and the Python API, over everything else: nothing
# below reaches up to either face, and the work never imports the CLI that prints it.
for _lower in list(FORBIDDEN):
    FORBIDDEN[_lower] = FORBIDDEN[_lower] | {"commands", "api"}
FORBIDDEN["commands"] = {"cli", "api"}
FORBIDDEN["api"] = {"cli"}


def _layer(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imported_layers(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    rel_parts = path.relative_to(PKG).parts[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(rel_parts[: len(rel_parts) - (node.level - 1)])
            target = [*base, *(node.module.split(".") if node.module else [])]
            if target:
                found.add(target[0])
            else:  # "from .. import x" at package root
                found.update(a.name for a in node.names)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            for n in names:
                if n and n.startswith("inferometer."):
                    found.add(n.split(".")[1])
    return found


def test_imports_only_go_downward() -> None:
    problems = []
    for path in PKG.rglob("*.py"):
        layer = _layer(path)
        bad = _imported_layers(path) & FORBIDDEN.get(layer, set())
        if bad:
            problems.append(f"{path.relative_to(PKG)} imports {sorted(bad)}")
    assert not problems, problems


def test_the_rule_checker_sees_violations(tmp_path: Path) -> None:
    f = PKG / "measure" / "memory.py"
    assert "stats" not in _imported_layers(f)
    assert _imported_layers(PKG / "runner.py") >= {"results", "plan", "runtimes"}


def test_worker_imports_only_numpy_psutil_and_the_stdlib() -> None:
    code = ("import sys, inferometer._worker, inferometer._serve, inferometer.runtimes._null;"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    allowed = set(sys.stdlib_module_names) | {"numpy", "psutil", "inferometer", "__main__"}
    extra = sorted(m for m in out if m not in allowed and not m.startswith("_"))
    assert not extra, f"the worker pulls in {extra}"
