"""The model's chunks packed for the browser's download: byte planes, then raw deflate.

Why: the default model is float32 widened from fp16, so every weight's low 13 bits are zero
and its exponent byte takes few values; deflate sees none of that in the interleaved bytes
(plain zlib: 60 % of the file). Split into four byte planes (every 4th byte together; chunk
offsets are multiples of 4 MiB, so every chunk has the file's 4-byte grid) and deflated with
zlib's run-length strategy, the 176 MB file becomes about 77 MB, in about 2 s. Measured on
six 4 MiB chunks of isnet-fp32 (packed / raw): zlib RLE memLevel 7 0.439, zlib level 9 0.457
(60 times slower), zlib level 6 0.460, ISA-L level 3 0.475; planes deflated one by one gained
nothing. The browser inflates with its native ``DecompressionStream('deflate-raw')`` and puts
the planes back (``web/store.js``); the result must hash to the chunk's SHA-256, so the
content addressing and verification of the plain chunks stay as they are. Any file packs;
a chunk that does not get at least ``KEEP_BELOW`` smaller is sent plain.

The packing is computed once per model file and cached beside the store's models
(``<store>/models/.web-packed/<file sha256>-<FORMAT>/``, built in a temporary folder and
renamed into place; a new version of the same file replaces its older packing), not on
each ``serve`` start or request.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: The packed form's name: the page refuses a format it does not know.
FORMAT = "planes4-deflate-raw"
#: A packed chunk is kept only if it is smaller than this fraction of the plain one.
KEEP_BELOW = 0.97
PACKED_DIR = "models/packed/"


def pack(raw: bytes) -> bytes:
    """Byte planes of the whole 4-byte words (the 0-3 bytes after them stay at the end), deflated
    raw (no zlib header: what ``DecompressionStream('deflate-raw')`` reads)."""
    n = len(raw) // 4 * 4
    planes = np.frombuffer(raw, np.uint8, n).reshape(-1, 4).T.tobytes() + bytes(raw[n:])
    c = zlib.compressobj(9, zlib.DEFLATED, -15, 7, zlib.Z_RLE)
    return c.compress(planes) + c.flush()


def unpack(packed: bytes, size: int) -> bytes:
    """The inverse of ``pack`` for a chunk of ``size`` bytes; ValueError if it is not exactly that."""
    d = zlib.decompressobj(-15)
    try:
        planes = d.decompress(packed, size + 1)
    except zlib.error as e:
        raise ValueError(f"not a packed chunk: {e}") from None
    if len(planes) != size or not d.eof or d.unused_data:
        raise ValueError(f"packed chunk unpacks to {len(planes)}{'+' if not d.eof else ''} bytes, expected {size}")
    n = size // 4 * 4
    out = np.empty(size, np.uint8)
    out[:n] = np.frombuffer(planes, np.uint8, n).reshape(4, -1).T.reshape(-1)
    out[n:] = np.frombuffer(planes, np.uint8)[n:]
    return out.tobytes()


@dataclass(frozen=True)
class Packed:
    """Where a model file's packed chunks are, and which chunks have one (sha256 → packed size)."""

    folder: Path
    sizes: dict[str, int]

    def path(self, sha256: str) -> Path | None:
        return self.folder / sha256 if sha256 in self.sizes else None


def cache_root() -> Path:
    from alphacut.models import store

    return store.models_dir() / ".web-packed"


def packed_chunks(path: Path, file_sha256: str, chunks: tuple[tuple[str, int], ...], read_chunk) -> Packed | None:
    """The packed chunks of the model file ``path`` (its SHA-256 and ``(sha256, size)`` chunk list
    given), from the cache or computed once into it; ``None`` when the cache cannot be written
    (the page then downloads the plain chunks). Each packed chunk is unpacked and checked
    against its SHA-256 before it is kept."""
    import hashlib

    root = cache_root()
    final = root / f"{file_sha256}-{FORMAT}"
    found = _load(final, chunks)
    if found is not None:
        return found
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    except OSError:
        return None
    try:
        sizes: dict[str, int] = {}
        for i, (sha, size) in enumerate(chunks):
            raw = read_chunk(path, i)
            if hashlib.sha256(raw).hexdigest() != sha or len(raw) != size:
                raise ValueError(f"{path} changed while it was packed")
            packed = pack(raw)
            if hashlib.sha256(unpack(packed, size)).hexdigest() != sha:  # pragma: no cover - a packer bug
                raise AssertionError("packed chunk does not unpack to its SHA-256")
            if len(packed) < KEEP_BELOW * size:
                (tmp / sha).write_bytes(packed)
                sizes[sha] = len(packed)
        index = {"format": FORMAT, "file": str(path), "file_sha256": file_sha256,
                 "chunks": [[s, n, sizes.get(s)] for s, n in chunks]}
        (tmp / "index.json").write_text(json.dumps(index))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if final.exists() and _load(final, chunks) is None:
            shutil.rmtree(final, ignore_errors=True)  # damaged or partial: replaced
        try:
            os.rename(tmp, final)  # atomic; fails if another process got there first
        except OSError:
            pass
        _drop_older(root, final, path)
    except (OSError, ValueError):
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _load(final, chunks)


def _drop_older(root: Path, keep: Path, path: Path) -> None:
    """Remove the packings of earlier versions of the same model file (a model updated in place)."""
    for other in root.iterdir():
        if other == keep or other.name.startswith(".tmp-"):
            continue
        try:
            if json.loads((other / "index.json").read_text()).get("file") == str(path):
                shutil.rmtree(other, ignore_errors=True)
        except (OSError, ValueError, AttributeError):
            continue


def _load(folder: Path, chunks) -> Packed | None:
    """The cached packing in ``folder`` if it is complete and for exactly these chunks."""
    try:
        index = json.loads((folder / "index.json").read_text())
        if index.get("format") != FORMAT or [tuple(c[:2]) for c in index["chunks"]] != [tuple(c) for c in chunks]:
            return None
        sizes = {s: p for s, _, p in index["chunks"] if p is not None}
        if any((folder / s).stat().st_size != p for s, p in sizes.items()):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return Packed(folder, sizes)
