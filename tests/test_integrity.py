import numpy as np
import pytest

from inferometer.integrity import compare

REF = np.random.default_rng(0).normal(size=(8, 1000)).astype(np.float32)


def test_identical_outputs_pass() -> None:
    i = compare(REF.copy(), REF, "fp32", "ref", "classes")
    assert i.passed and i.max_abs_diff == 0 and i.top1_agreement == 1.0
    assert i.cosine == pytest.approx(1.0)


def test_fp32_rounding_noise_passes_but_real_error_fails() -> None:
    rng = np.random.default_rng(1)
    scale = np.abs(REF).max()
    small = REF + rng.normal(scale=1e-5 * scale, size=REF.shape).astype(np.float32)
    big = REF + rng.normal(scale=1e-2 * scale, size=REF.shape).astype(np.float32)
    assert compare(small, REF, "fp32", "ref", "classes").passed
    worse = compare(big, REF, "fp32", "ref", "classes")
    assert not worse.passed and worse.rel_max_abs_diff > 1e-3


def test_bf16_is_judged_by_cosine() -> None:
    rng = np.random.default_rng(2)
    noisy = REF + rng.normal(scale=0.03, size=REF.shape).astype(np.float32)
    assert not compare(noisy, REF, "fp32", "ref", "classes").passed
    assert compare(noisy, REF, "bf16", "ref", "classes").passed
    assert not compare(-REF, REF, "bf16", "ref", "classes").passed


def test_top1_agreement_counts_changed_predictions() -> None:
    out = REF.copy()
    out[0] = -out[0]  # row 0's argmax moves
    assert compare(out, REF, "bf16", "ref", "classes").top1_agreement == pytest.approx(7 / 8)
    assert compare(out, REF, "bf16", "ref", "embedding").top1_agreement is None


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="shape"):
        compare(REF[:4], REF, "fp32", "ref", "classes")
