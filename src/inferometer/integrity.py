"""Output integrity: a runtime's outputs on the fixed inputs against the reference's."""

from __future__ import annotations

import numpy as np

from .results.schema import Integrity

# precision -> (rule in words, check).  fp32 must match the reference to float rounding;
# reduced precisions must keep the direction of the output vector.
_FP32_REL = 1e-3
_COSINE = {"bf16": 0.99, "fp16": 0.99, "int8": 0.98}


def compare(out: np.ndarray, ref: np.ndarray, precision: str, reference: str,
            output_kind: str) -> Integrity:
    if out.shape != ref.shape:
        raise ValueError(f"output shape {out.shape} differs from the reference's {ref.shape}")
    a = out.reshape(out.shape[0], -1).astype(np.float64)
    b = ref.reshape(ref.shape[0], -1).astype(np.float64)
    max_abs = float(np.max(np.abs(a - b))) if a.size else 0.0
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cos = np.where(norms > 0, np.sum(a * b, axis=1) / np.where(norms > 0, norms, 1.0), 1.0)
    cosine = float(np.min(cos)) if cos.size else 1.0
    top1 = None
    if output_kind == "classes" and a.shape[1] > 1:
        top1 = float(np.mean(np.argmax(a, axis=1) == np.argmax(b, axis=1)))
    if precision in _COSINE:
        bound = _COSINE[precision]
        passed, rule = cosine >= bound, f"{precision}: min cosine >= {bound}"
    else:
        passed, rule = rel <= _FP32_REL, f"fp32: max|d|/max|ref| <= {_FP32_REL:g}"
    return Integrity(reference=reference, precision=precision, max_abs_diff=max_abs,
                     rel_max_abs_diff=rel, cosine=cosine, top1_agreement=top1,
                     passed=bool(passed), rule=rule)
