"""The model's packed chunks (alphacut.serve.pack): exact round trips, the shared vectors the
JS unpacker reads, the cache computed once, and the real model's chunks packed and served."""

from __future__ import annotations

import base64
import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from alphacut.models.catalog import CATALOG, DEFAULT_MODEL
from alphacut.serve import pack, site

VECTORS = Path(__file__).parents[1] / "js" / "pack_vectors.json"


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 4096, 65539])
def test_round_trip_any_size_and_content(size):
    rng = np.random.default_rng(size)
    for raw in (rng.integers(0, 256, size, dtype=np.uint8).tobytes(), bytes(size)):
        packed = pack.pack(raw)
        assert pack.unpack(packed, size) == raw
    with pytest.raises(ValueError):
        pack.unpack(pack.pack(b"x" * (size + 1)), size)


def test_planes_are_what_makes_widened_weights_small():
    """Widened fp16 weights: byte planes + RLE deflate beat plain deflate clearly (the point)."""
    import zlib

    w = (np.random.default_rng(0).standard_normal(1 << 18) * 0.05).astype(np.float16).astype("<f4").tobytes()
    packed = pack.pack(w)
    assert pack.unpack(packed, len(w)) == w
    assert len(packed) < 0.5 * len(w) and len(packed) < 0.8 * len(zlib.compress(w, 9)), (len(packed), len(zlib.compress(w, 9)))


def test_damaged_packed_chunks_are_refused():
    raw = bytes(range(256)) * 64
    packed = pack.pack(raw)
    with pytest.raises(ValueError):
        pack.unpack(packed[: len(packed) // 2], len(raw))
    with pytest.raises(ValueError):
        pack.unpack(packed + b"\0", len(raw))
    bad = bytearray(packed)
    bad[len(bad) // 2] ^= 0x55
    try:
        assert pack.unpack(bytes(bad), len(raw)) != raw
    except ValueError:
        pass


def test_shared_vectors_unpack_to_their_sha256():
    """tests/js/pack_vectors.json (Python's packer output): store.test.js unpacks the same bytes."""
    doc = json.loads(VECTORS.read_text())
    assert doc["format"] == pack.FORMAT
    for v in doc["vectors"]:
        raw = pack.unpack(base64.b64decode(v["packed"]), v["size"])
        assert hashlib.sha256(raw).hexdigest() == v["sha256"]


def _pieces(data: bytes, size: int):
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_cache_is_written_once_atomically_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("ALPHACUT_HOME", str(tmp_path / "home"))
    w = (np.random.default_rng(1).standard_normal(3 << 16) * 0.1).astype(np.float16).astype("<f4").tobytes()
    data = w + np.random.default_rng(2).integers(0, 256, 70_001, dtype=np.uint8).tobytes()  # the last chunk incompressible
    model = tmp_path / "m.onnx"
    model.write_bytes(data)
    size = 1 << 18
    pieces = _pieces(data, size)
    chunks = tuple((hashlib.sha256(b).hexdigest(), len(b)) for b in pieces)
    reads = []

    def read(path, i):
        reads.append(i)
        return pieces[i]

    sha = hashlib.sha256(data).hexdigest()
    got = pack.packed_chunks(model, sha, chunks, read)
    assert got is not None and got.folder == pack.cache_root() / f"{sha}-{pack.FORMAT}"
    assert set(got.sizes) == {c[0] for c in chunks[:-1]}, "the random last chunk stays plain"
    for (h, n), piece in zip(chunks[:-1], pieces):
        assert pack.unpack(got.path(h).read_bytes(), n) == piece
        assert got.sizes[h] == got.path(h).stat().st_size < 0.6 * n
    assert got.path(chunks[-1][0]) is None
    assert not [p for p in pack.cache_root().iterdir() if p.name.startswith(".tmp-")]
    n = len(reads)
    assert pack.packed_chunks(model, sha, chunks, read) == got and len(reads) == n, "computed once"
    # a damaged cache (a packed file missing) is computed again and replaced
    next(iter(got.folder.glob("[0-9a-f]*"))).unlink()
    again = pack.packed_chunks(model, sha, chunks, read)
    assert again == got and len(reads) > n
    # the same file changed in place: its new packing replaces the old one
    data2 = data[: 1 << 18] + bytes(1000)
    model.write_bytes(data2)
    pieces2 = _pieces(data2, size)
    chunks2 = tuple((hashlib.sha256(b).hexdigest(), len(b)) for b in pieces2)
    new = pack.packed_chunks(model, hashlib.sha256(data2).hexdigest(), chunks2, lambda p, i: pieces2[i])
    assert new is not None and new.folder != got.folder and not got.folder.exists()
    assert [p.name for p in pack.cache_root().iterdir()] == [new.folder.name]
    # an unwritable cache: no packing, the page takes the plain chunks
    monkeypatch.setenv("ALPHACUT_HOME", str(model))  # a file, not a folder
    assert pack.packed_chunks(model, sha, chunks, read) is None


@pytest.mark.model
def test_real_model_chunks_pack_unpack_and_are_served():
    """isnet-fp32's packed chunks unpack to the chunk hashes, which add up to the catalog's
    SHA-256; the server sends them under models/packed/ and the whole is under 80 MB."""
    from alphacut.serve.app import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Starlette's notice about httpx
        from starlette.testclient import TestClient

        client = TestClient(create_app(), base_url="http://127.0.0.1:8000")
    cfg = client.get("/config.json").json()["model"]
    assert cfg["packing"] == pack.FORMAT and cfg["packed_base"] == pack.PACKED_DIR
    whole = hashlib.sha256()
    for c in cfg["chunks"]:
        r = client.get(f"/models/packed/{c['sha256']}")
        assert r.status_code == 200 and r.headers["cache-control"] == site.IMMUTABLE
        assert r.headers["content-type"] == "application/octet-stream" and "content-encoding" not in r.headers
        assert len(r.content) == c["packed"]
        raw = pack.unpack(r.content, c["size"])
        assert hashlib.sha256(raw).hexdigest() == c["sha256"]
        whole.update(raw)
    assert whole.hexdigest() == CATALOG[DEFAULT_MODEL].main_file.sha256
    total = sum(c["packed"] for c in cfg["chunks"])
    assert total < 80e6, total
    assert client.get("/models/packed/" + "0" * 64).status_code == 404
