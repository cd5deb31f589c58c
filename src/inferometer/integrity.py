"""Output integrity: every output of a runtime on the fixed inputs against the reference's."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .results.schema import Integrity, OutputCheck

# precision -> (rule in words, check).  fp32 must match the reference to float rounding;
# reduced precisions must keep the direction of each output's rows.
_FP32_REL = 1e-3
_COSINE = {"bf16": 0.99, "fp16": 0.99, "int8": 0.98}


def _rule(precision: str, outputs: int) -> str:
    each = " on every output" if outputs > 1 else ""
    if precision in _COSINE:
        return f"{precision}: min cosine >= {_COSINE[precision]}{each}"
    return f"fp32: max|d|/max|ref| <= {_FP32_REL:g}{each}"


def check_output(name: str, out: np.ndarray, ref: np.ndarray, precision: str,
                 kind: str) -> OutputCheck:
    if out.shape != ref.shape:
        raise ValueError(f"output '{name}' has shape {out.shape}; the reference's is {ref.shape}")
    rows = out.shape[0] if out.ndim > 1 else 1
    a = out.reshape(rows, -1).astype(np.float64)
    b = ref.reshape(rows, -1).astype(np.float64)
    max_abs = float(np.max(np.abs(a - b))) if a.size else 0.0
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cos = np.where(norms > 0, np.sum(a * b, axis=1) / np.where(norms > 0, norms, 1.0),
                   np.where(np.linalg.norm(a - b, axis=1) == 0, 1.0, 0.0))
    cosine = float(np.min(cos)) if cos.size else 1.0
    top1 = None
    if kind == "classes" and out.ndim >= 2 and out.shape[-1] > 1:
        top1 = float(np.mean(np.argmax(out, axis=-1) == np.argmax(ref, axis=-1)))
    passed = cosine >= _COSINE[precision] if precision in _COSINE else rel <= _FP32_REL
    return OutputCheck(name, max_abs, rel, cosine, top1, bool(passed))


def compare_outputs(outs: Sequence[np.ndarray], refs: Sequence[np.ndarray], precision: str,
                    reference: str, names: Sequence[str], kinds: Sequence[str]) -> Integrity:
    if len(outs) != len(refs):
        raise ValueError(f"{len(outs)} outputs; the reference gave {len(refs)}")
    checks = [check_output(n, o, r, precision, k)
              for n, o, r, k in zip(names, outs, refs, kinds, strict=True)]
    worst = next((c for c in checks if not c.passed), min(checks, key=lambda c: c.cosine))
    return Integrity(reference=reference, precision=precision, max_abs_diff=worst.max_abs_diff,
                     rel_max_abs_diff=worst.rel_max_abs_diff, cosine=worst.cosine,
                     top1_agreement=worst.top1_agreement,
                     passed=all(c.passed for c in checks), rule=_rule(precision, len(checks)),
                     output=worst.name if len(checks) > 1 else "", outputs=tuple(checks))


def compare(out: np.ndarray, ref: np.ndarray, precision: str, reference: str,
            output_kind: str) -> Integrity:
    """One output (the accuracy and training paths)."""
    return compare_outputs([out], [ref], precision, reference, ["output"], [output_kind])
