"""SHA-256 of files, read in blocks: what the store checks installed models against and what the
downloader checks fetched files against (its own module, so neither imports the other)."""

from __future__ import annotations

import hashlib
from pathlib import Path

BLOCK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            h.update(block)
    return h.hexdigest()
