"""Runtimes of the studies that cannot run on these machines.  They keep their row in
`inferometer runtimes` with the precise reason, so a user is never left guessing."""

from __future__ import annotations

from typing import ClassVar

from ..models.ref import ModelRef
from .base import Availability, LoadOptions, Variant


class _Unavailable:
    name: ClassVar[str] = ""
    variants: ClassVar[tuple[Variant, ...]] = (Variant("default"),)
    default_variants: ClassVar[tuple[str, ...]] = ("default",)
    reason: ClassVar[str] = ""
    install: ClassVar[str | None] = None

    def available(self) -> Availability:
        return Availability(False, reason=self.reason, install=self.install)

    def version(self) -> str:
        return "-"

    def supports(self, model: ModelRef) -> str | None:
        return self.reason

    def load(self, model: ModelRef, options: LoadOptions) -> object:
        raise RuntimeError(self.reason)


class Caffe2(_Unavailable):
    name: ClassVar[str] = "caffe2"
    reason: ClassVar[str] = ("removed from PyTorch 2.x (torch 2.13 ships no caffe2 module) and "
                             "no maintained package exists")


class OneFlow(_Unavailable):
    name: ClassVar[str] = "oneflow"
    reason: ClassVar[str] = ("PyPI's oneflow for Python 3.11 is a placeholder that raises on "
                             "import; real wheels stop at Python 3.10")


class OnnxRuntimeDnnl(_Unavailable):
    name: ClassVar[str] = "onnxruntime_dnnl"
    reason: ClassVar[str] = ("no published onnxruntime wheel includes the oneDNN (DNNL) "
                             "execution provider; it needs a source build with --use_dnnl "
                             "(the default CPU provider already uses MLAS)")

