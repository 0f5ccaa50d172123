"""Model store: chunk verification and assembly, atomic install, corruption, concurrency."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap

import pytest

from alphacut.errors import ModelError
from alphacut.models import catalog, store
from alphacut.models.catalog import ModelFile, ModelSpec


@pytest.fixture
def fake_package(tmp_path, monkeypatch, rng):
    """A data package laid out like @imgly/background-removal-data, with 3 chunks."""
    pkg = tmp_path / "pkg"
    (pkg / "dist").mkdir(parents=True)
    payload = rng.integers(0, 256, 250_000, dtype="uint8").tobytes()
    chunks, off = [], 0
    for part in (payload[:100_000], payload[100_000:200_000], payload[200_000:]):
        h = hashlib.sha256(part).hexdigest()
        (pkg / "dist" / h).write_bytes(part)
        chunks.append({"hash": h, "offsets": [off, off + len(part)]})
        off += len(part)
    (pkg / "dist" / "resources.json").write_text(json.dumps({"/models/test": {"chunks": chunks, "size": len(payload), "mime": "x"}}))
    spec = ModelSpec(
        id="test-model", title="t", files=(ModelFile("m.onnx", len(payload), hashlib.sha256(payload).hexdigest(), "npm:/models/test"),),
        input_size=(8, 8), mean=(0, 0, 0), std=(1, 1, 1), embedded=True,
    )
    monkeypatch.setenv("ALPHACUT_DATA_PACKAGE", str(pkg))
    monkeypatch.setenv("ALPHACUT_HOME", str(tmp_path / "home"))
    monkeypatch.setitem(catalog.CATALOG, spec.id, spec)
    monkeypatch.setitem(catalog.IMGLY_CHUNKS, "/models/test",
                        tuple((c["hash"], c["offsets"][1] - c["offsets"][0]) for c in chunks))
    return pkg, spec, payload, chunks


def test_assembles_and_verifies(fake_package):
    pkg, spec, payload, _ = fake_package
    path = store.install(spec.id)
    assert path.read_bytes() == payload
    assert not list(path.parent.glob("*.part"))
    assert store.verify_file(path, spec.main_file, deep=True)
    # A second install is a no-op that trusts the stamp (file unchanged).
    mtime = path.stat().st_mtime_ns
    assert store.install(spec.id) == path and path.stat().st_mtime_ns == mtime


def test_corrupt_chunk_refused_and_nothing_installed(fake_package):
    pkg, spec, _, chunks = fake_package
    bad = pkg / "dist" / chunks[1]["hash"]
    data = bytearray(bad.read_bytes())
    data[10] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="chunk is corrupt"):
        store.install(spec.id)
    d = store.file_path(spec).parent
    assert not store.file_path(spec).exists() and not list(d.glob("*.part"))


def test_offline_without_package_says_how_to_install_by_hand(fake_package, monkeypatch, tmp_path):
    _, spec, _, _ = fake_package
    monkeypatch.setenv("ALPHACUT_DATA_PACKAGE", str(tmp_path / "nowhere"))
    monkeypatch.setenv("ALPHACUT_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(store, "__file__", str(tmp_path / "x" / "store.py"))
    with pytest.raises(ModelError, match="ALPHACUT_OFFLINE is set.*--from-npm DIR"):
        store.install(spec.id)
    assert not store.file_path(spec).exists()


def test_from_npm_takes_the_package_dist_or_node_modules(fake_package, monkeypatch, tmp_path):
    pkg, spec, payload, _ = fake_package
    monkeypatch.setenv("ALPHACUT_DATA_PACKAGE", str(tmp_path / "nowhere"))
    monkeypatch.setenv("ALPHACUT_OFFLINE", "1")  # a local copy needs no network
    lines = []
    path = store.install(spec.id, from_npm=pkg / "dist", announce=lines.append)
    assert path.read_bytes() == payload
    assert lines == [f"assembling test-model from 3 chunks (0.2 MB) in {pkg / 'dist'} into {path}"]
    with pytest.raises(ModelError, match="no chunks of @imgly/background-removal-data"):
        store.install(spec.id, from_npm=tmp_path, force=True)


def test_corrupt_store_file_detected_and_reinstalled(fake_package):
    _, spec, payload, _ = fake_package
    path = store.install(spec.id)
    with open(path, "r+b") as f:  # same size, different bytes, newer mtime
        f.seek(5)
        f.write(b"\x00\x01\x02")
    got_spec, got_path = store.resolve(spec.id)
    assert got_path.read_bytes() == payload


def test_truncated_store_file_detected(fake_package):
    _, spec, payload, _ = fake_package
    path = store.install(spec.id)
    path.write_bytes(payload[:1000])
    assert not store.verify_file(path, spec.main_file)
    assert store.resolve(spec.id)[1].read_bytes() == payload


def test_two_processes_install_at_once(fake_package, tmp_path):
    pkg, spec, payload, _ = fake_package
    script = textwrap.dedent(
        f"""
        import sys
        from alphacut.models import catalog, store
        from alphacut.models.catalog import ModelFile, ModelSpec
        spec = ModelSpec(id="test-model", title="t", files=(ModelFile("m.onnx", {len(payload)}, "{spec.main_file.sha256}", "npm:/models/test"),),
                         input_size=(8, 8), mean=(0, 0, 0), std=(1, 1, 1), embedded=True)
        catalog.CATALOG[spec.id] = spec
        catalog.IMGLY_CHUNKS["/models/test"] = {catalog.IMGLY_CHUNKS["/models/test"]!r}
        print(store.install(spec.id, force=True))
        """
    )
    env = {**__import__("os").environ}
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    path = store.file_path(spec)
    assert path.read_bytes() == payload
    assert not list(path.parent.glob("*.part"))


def test_user_file_for_gated_model_is_hash_checked(fake_package, tmp_path):
    _, spec, payload, _ = fake_package
    gated = ModelSpec(**{**spec.__dict__, "id": "gated-test", "gated": True, "embedded": False,
                         "files": (ModelFile("g.onnx", len(payload), spec.main_file.sha256, "https://127.0.0.1:9/none"),)})
    catalog.CATALOG[gated.id] = gated
    try:
        wrong = tmp_path / "wrong.onnx"
        wrong.write_bytes(payload[:-1] + b"!")
        with pytest.raises(ModelError, match="SHA-256"):
            store.install(gated.id, source_file=wrong)
        assert not store.file_path(gated).exists()
        right = tmp_path / "right.onnx"
        right.write_bytes(payload)
        assert store.install(gated.id, source_file=right).read_bytes() == payload
    finally:
        del catalog.CATALOG[gated.id]


def test_gated_without_token_says_how(fake_package, monkeypatch):
    _, spec, payload, _ = fake_package
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(ModelError, match="gated.*--token"):
        store.install("rmbg-2.0")


def test_remote_model_not_installed_is_not_downloaded_implicitly(fake_package):
    with pytest.raises(ModelError, match="alphacut models install rmbg-1.4"):
        store.resolve("rmbg-1.4")


def test_real_catalog_entries_are_complete():
    for spec in catalog.CATALOG.values():
        assert spec.licence and spec.origin, spec.id
        assert spec.input_size[0] > 0 and len(spec.mean) == 3 and len(spec.std) == 3
        f = spec.main_file
        assert f.source.startswith(("npm:", "https://")), spec.id
        if f.sha256:
            assert len(f.sha256) == 64
