"""A report as a list of plain blocks, built once and rendered twice (Markdown and HTML), so the
two files can never say different things.  Every string in a block is raw text; escaping is the
renderer's job."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Items:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""


@dataclass(frozen=True)
class Image:
    name: str  # file stem under plots/
    title: str
    caption: str


@dataclass(frozen=True)
class Facts:
    """Label: value pairs (the machine and versions header)."""

    pairs: tuple[tuple[str, str], ...]


Block = Heading | Text | Items | Code | Table | Image | Facts


@dataclass(frozen=True)
class Document:
    title: str
    blocks: tuple[Block, ...]
