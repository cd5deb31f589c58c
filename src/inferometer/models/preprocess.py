"""Fixed inputs and the uint8 HWC -> float NCHW conversion every runtime starts from."""

from __future__ import annotations

import numpy as np

from .ref import ModelRef

INPUT_SEED = 20261122


def make_images(n: int, height: int, width: int, seed: int = INPUT_SEED) -> np.ndarray:
    """n decoded RGB images, uint8 NHWC.  Image i depends only on (seed, i), so the first k
    images are the same at every batch size and integrity compares like with like."""
    out = np.empty((n, height, width, 3), np.uint8)
    for i in range(n):
        out[i] = np.random.default_rng((seed, i)).integers(0, 256, (height, width, 3), np.uint8)
    return out


class Normalizer:
    """(x/255 - mean)/std folded into one multiply-add, then NHWC -> NCHW (contiguous)."""

    def __init__(self, model: ModelRef) -> None:
        std = np.asarray(model.std, np.float32)
        self.scale = (1.0 / (255.0 * std)).astype(np.float32)
        self.shift = (-np.asarray(model.mean, np.float32) / std).astype(np.float32)

    def nhwc(self, batch: np.ndarray) -> np.ndarray:
        return batch.astype(np.float32) * self.scale + self.shift

    def nchw(self, batch: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self.nhwc(batch).transpose(0, 3, 1, 2))


def calibration_images(model: ModelRef, n: int = 32) -> tuple[np.ndarray, str]:
    """The images int8 conversions calibrate on, and a short id of them for cache keys."""
    import hashlib

    if model.calibration:
        images = np.load(model.calibration)
    else:
        images = make_images(n, *model.input_shape[1:], seed=INPUT_SEED + 1)
    return images, hashlib.sha256(images.tobytes()).hexdigest()[:12]


def calibration_batches(model: ModelRef, batch: int) -> list[np.ndarray]:
    """The calibration images as normalised float32 NCHW batches of `batch` images (repeated
    to fill one batch when there are fewer), for converters calibrated at a fixed shape."""
    images, _ = calibration_images(model)
    if len(images) < batch:
        images = np.resize(images, (batch, *images.shape[1:]))
    norm = Normalizer(model)
    return [norm.nchw(images[i:i + batch]) for i in range(0, len(images) - batch + 1, batch)]
