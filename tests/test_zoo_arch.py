"""The zoo's architectures, as PyTorch modules."""

from __future__ import annotations

import importlib
from collections import Counter

import pytest

from inferometer.models.zoo import ZOO


@pytest.mark.parametrize("name", [e.name for e in ZOO.values()])
def test_each_module_is_called_once_per_forward(name: str) -> None:
    """PT2E quantizers (torch's int8 variant) group graph nodes by the module that made them: a
    module reused at several call sites turns into one partition with several outputs, and
    quantisation fails ("Input partition has more than one output node", as it did on
    ResNet-50 when its blocks reused one ReLU)."""
    import torch

    entry = ZOO[name]
    module, _, fn = entry.builder.partition(":")
    net = getattr(importlib.import_module(module), fn)().eval()
    calls: Counter[str] = Counter()
    names = {m: n for n, m in net.named_modules()}
    for m in names:
        # leaves: the modules that make graph nodes (dropout makes none in eval mode)
        if not list(m.children()) and not isinstance(m, torch.nn.Dropout):
            m.register_forward_hook(lambda mod, i, o: calls.update([names[mod]]))
    shapes = entry.io.bind(1, {})
    args = [torch.zeros(shapes[i.name]) if i.tensor.dtype == "float32"
            else torch.ones(shapes[i.name], dtype=getattr(torch, i.tensor.dtype))
            for i in entry.io.inputs]
    with torch.no_grad():
        out = net(*args)
    assert calls, "no module ran"
    assert [n for n, k in calls.items() if k > 1] == []
    # the sizes the zoo states (a server's metadata and the exported file carry them) are the
    # module's: a classifier says [-1, 1000], not [-1, -1]
    outs = out if isinstance(out, (tuple, list)) else (out,)
    for o, t in zip(entry.io.outputs, outs, strict=True):
        assert len(t.shape) == len(o.shape), o.name
        assert [(k, d) for k, d in enumerate(o.shape) if isinstance(d, int)] == \
            [(k, t.shape[k]) for k, d in enumerate(o.shape) if isinstance(d, int)], o.name
    if entry.io.inputs[0].is_image:
        assert all(isinstance(d, int) for d in entry.io.outputs[0].shape[1:])
