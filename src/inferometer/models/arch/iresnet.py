"""IResNet-100, the insightface ArcFace embedding network: 112x112 face in, 512-d embedding out."""

from __future__ import annotations

from torch import Tensor, nn


class _IBasic(nn.Module):
    def __init__(self, cin: int, planes: int, stride: int, down: nn.Module | None) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, eps=1e-5)
        self.conv1 = nn.Conv2d(cin, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-5)
        self.prelu = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-5)
        self.downsample = down

    def forward(self, x: Tensor) -> Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        out = self.prelu(self.bn2(self.conv1(self.bn1(x))))
        return self.bn3(self.conv2(out)) + idt


class IResNet(nn.Module):
    def __init__(self, layers: list[int], embedding: int = 512) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64)
        cin, stages = 64, []
        for planes, blocks in zip((64, 128, 256, 512), layers, strict=True):
            down = nn.Sequential(nn.Conv2d(cin, planes, 1, 2, bias=False),
                                 nn.BatchNorm2d(planes, eps=1e-5))
            mods = [_IBasic(cin, planes, 2, down)]
            mods += [_IBasic(planes, planes, 1, None) for _ in range(1, blocks)]
            stages.append(nn.Sequential(*mods))
            cin = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
        self.dropout = nn.Dropout(0.0)
        self.fc = nn.Linear(512 * 7 * 7, embedding)
        self.features = nn.BatchNorm1d(embedding, eps=1e-5)

    def forward(self, x: Tensor) -> Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(self.bn2(x).flatten(1))
        return self.features(self.fc(x))


def iresnet100() -> IResNet:
    return IResNet([3, 13, 30, 3])
