"""Inception v3 at 299x299 (no auxiliary head: inference only)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class _C(nn.Sequential):
    """Conv + BN(eps=1e-3) + ReLU, the unit every Inception branch is built of."""

    def __init__(self, cin: int, cout: int, k: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0) -> None:
        super().__init__(nn.Conv2d(cin, cout, k, stride, padding, bias=False),
                         nn.BatchNorm2d(cout, eps=1e-3), nn.ReLU(inplace=True))


def _seq(*mods: nn.Module) -> nn.Sequential:
    return nn.Sequential(*mods)


class _Branches(nn.Module):
    """Runs each branch on the same input and concatenates along channels."""

    def __init__(self, *branches: nn.Module) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([b(x) for b in self.branches], 1)


def _pool_proj(cin: int, cout: int) -> nn.Sequential:
    return _seq(nn.AvgPool2d(3, 1, 1), _C(cin, cout, 1))


def _a(cin: int, pool: int) -> _Branches:
    return _Branches(_C(cin, 64, 1),
                     _seq(_C(cin, 48, 1), _C(48, 64, 5, padding=2)),
                     _seq(_C(cin, 64, 1), _C(64, 96, 3, padding=1), _C(96, 96, 3, padding=1)),
                     _pool_proj(cin, pool))


def _b(cin: int) -> _Branches:
    return _Branches(_C(cin, 384, 3, 2),
                     _seq(_C(cin, 64, 1), _C(64, 96, 3, padding=1), _C(96, 96, 3, 2)),
                     nn.MaxPool2d(3, 2))


def _c(cin: int, c7: int) -> _Branches:
    def c17(a: int, b: int) -> _C:
        return _C(a, b, (1, 7), padding=(0, 3))

    def c71(a: int, b: int) -> _C:
        return _C(a, b, (7, 1), padding=(3, 0))

    return _Branches(_C(cin, 192, 1),
                     _seq(_C(cin, c7, 1), c17(c7, c7), c71(c7, 192)),
                     _seq(_C(cin, c7, 1), c71(c7, c7), c17(c7, c7), c71(c7, c7), c17(c7, 192)),
                     _pool_proj(cin, 192))


def _d(cin: int) -> _Branches:
    return _Branches(_seq(_C(cin, 192, 1), _C(192, 320, 3, 2)),
                     _seq(_C(cin, 192, 1), _C(192, 192, (1, 7), padding=(0, 3)),
                          _C(192, 192, (7, 1), padding=(3, 0)), _C(192, 192, 3, 2)),
                     nn.MaxPool2d(3, 2))


def _split(cin: int) -> _Branches:
    return _Branches(_C(cin, 384, (1, 3), padding=(0, 1)), _C(cin, 384, (3, 1), padding=(1, 0)))


def _e(cin: int) -> _Branches:
    return _Branches(_C(cin, 320, 1),
                     _seq(_C(cin, 384, 1), _split(384)),
                     _seq(_C(cin, 448, 1), _C(448, 384, 3, padding=1), _split(384)),
                     _pool_proj(cin, 192))


class InceptionV3(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.stem = _seq(_C(3, 32, 3, 2), _C(32, 32, 3), _C(32, 64, 3, padding=1),
                         nn.MaxPool2d(3, 2), _C(64, 80, 1), _C(80, 192, 3), nn.MaxPool2d(3, 2))
        self.blocks = _seq(_a(192, 32), _a(256, 64), _a(288, 64), _b(288),
                           _c(768, 128), _c(768, 160), _c(768, 160), _c(768, 192),
                           _d(768), _e(1280), _e(2048))
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(self.stem(x)).mean((2, 3))
        return self.fc(self.dropout(x))


def inception_v3() -> InceptionV3:
    return InceptionV3()
