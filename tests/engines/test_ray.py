"""The Ray engine on a real two-node Ray cluster on 127.0.0.1, against the local engine.

The cluster is two ``ray start`` process trees (a head and a second node, one CPU each)
started by a fixture and killed by process id at the end. Six small real photos and one
broken file go through ``alphacut remove --engine ray --ray-address ...``; one worker is
killed (SIGKILL) in the middle of the job; the outputs must still be byte-identical to the
local engine's (``Remover`` + ``CutOut.encode``), the broken file must be in the report
without harming the others, and a rerun must skip what exists. Every wait is bounded.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from PIL import Image

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None,
        reason="Ray is not installed: pip install 'alphacut[ray]' (make setup installs it)",
    ),
]
slow_model = [pytest.mark.slow, pytest.mark.model]

JOB_TIMEOUT = 180  # seconds for one CLI job on the cluster (about 40 s here when idle)

# name -> (skimage loader, relative path): colour JPEGs and PNGs, an RGBA logo, a grey photo
PHOTOS = {
    "astronaut": ("astronaut", "astronaut.png"),
    "coffee": ("coffee", "food/coffee.jpg"),
    "chelsea": ("chelsea", "animals/chelsea.jpg"),
    "rocket": ("rocket", "rocket.jpg"),
    "logo": ("logo", "art/logo.png"),
    "camera": ("camera", "art/camera.png"),
}
BAD = "animals/broken.jpg"


def _env(cluster, **extra: str) -> dict[str, str]:
    return {**os.environ, **cluster.driver_env, **extra}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Six real photos, downscaled to at most 384 px, in a small tree, plus a truncated JPEG."""
    from skimage import data

    root = tmp_path_factory.mktemp("ray-in")
    for loader, rel in PHOTOS.values():
        im = Image.fromarray(getattr(data, loader)())
        im.thumbnail((384, 384))
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        im.save(p, quality=90) if p.suffix == ".jpg" else im.save(p)
    whole = (root / PHOTOS["coffee"][1]).read_bytes()
    (root / BAD).write_bytes(whole[: len(whole) // 3])  # truncated: decodes to an error
    return root


@pytest.fixture(scope="module")
def reference(inputs, remover) -> dict[str, bytes]:
    """What the local engine writes for each photo: Remover + CutOut.encode("png")."""
    t0 = time.monotonic()
    ref = {rel: remover.remove(inputs / rel).encode("png") for _, rel in PHOTOS.values()}
    print(f"local engine reference: {time.monotonic() - t0:.1f} s")
    return ref


@pytest.fixture(scope="module")
def cluster():
    """Head node + a second node (separate `ray start` process trees), 1 CPU each, 127.0.0.1."""
    from alphacut.engines.ray_cluster import LocalCluster

    t0 = time.monotonic()
    c = LocalCluster(nodes=2, cpus_per_node=1, timeout=120)
    print(f"cluster up in {time.monotonic() - t0:.1f} s")
    try:
        yield c
    finally:
        c.stop()
        assert not c.processes(), "Ray processes survived the teardown"
        assert not Path(c.temp_dir).exists()


def _out_name(rel: str) -> str:
    return str(Path(rel).with_suffix(".png"))


def _alphacut(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "alphacut.cli", "remove", *args], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )


def _finish(proc: subprocess.Popen, timeout: float = JOB_TIMEOUT) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        pytest.fail(f"alphacut --engine ray did not finish in {timeout} s:\n{out[-4000:]}")
    return proc.returncode, out


@pytest.fixture(scope="module")
def first_run(inputs, cluster, tmp_path_factory) -> dict:
    """The job, with one actor SIGKILLed once the first output is written."""
    work = tmp_path_factory.mktemp("ray-run")
    out, pids = work / "out", work / "pids"
    t0 = time.monotonic()
    proc = _alphacut([str(inputs), "-o", str(out), "--engine", "ray", "--ray-address", cluster.address],
                     _env(cluster, ALPHACUT_RAY_PIDFILE_DIR=str(pids)))
    killed = None
    try:
        while time.monotonic() - t0 < JOB_TIMEOUT and proc.poll() is None:
            written = list(out.rglob("*.png")) if out.exists() else []
            actors = sorted(pids.glob("*.pid")) if pids.exists() else []
            if written and actors:
                killed = int(actors[0].read_text())
                os.kill(killed, signal.SIGKILL)
                break
            time.sleep(0.2)
    finally:
        code, log = _finish(proc, max(10.0, JOB_TIMEOUT - (time.monotonic() - t0)))
    print(f"ray job with a killed worker: {time.monotonic() - t0:.1f} s")
    return {"out": out, "code": code, "log": log, "killed": killed, "pids": pids,
            "seconds": time.monotonic() - t0, "written_before_kill": written}


@pytest.mark.slow
@pytest.mark.model
def test_job_survives_a_killed_worker_and_matches_the_local_engine(first_run, inputs, reference):
    r = first_run
    assert r["killed"] is not None, f"no actor was found to kill:\n{r['log'][-3000:]}"
    # The kill landed in the middle: some outputs were still to come.
    assert len(r["written_before_kill"]) < len(PHOTOS), r["written_before_kill"]
    with pytest.raises(ProcessLookupError):
        os.kill(r["killed"], 0)
    assert r["code"] == 1, r["log"][-3000:]  # 1: the broken file failed, nothing else
    for rel, expected in reference.items():
        got = (r["out"] / _out_name(rel)).read_bytes()
        assert got == expected, f"{rel}: Ray output differs from the local engine's"
    # Ray restarted the dead actor: a third actor process announced itself.
    assert len(list(r["pids"].glob("*.pid"))) >= 3, sorted(p.name for p in r["pids"].iterdir())
    # Both nodes took work (one actor per node: one CPU each).
    assert "6 written, 0 skipped (output exists), 1 failed, of 7" in r["log"], r["log"][-3000:]


@pytest.mark.slow
@pytest.mark.model
def test_report_records_the_bad_file_without_failing_others(first_run, inputs):
    lines = [json.loads(x) for x in (first_run["out"] / "alphacut-report.jsonl").read_text().splitlines()]
    by_path = {Path(x["path"]).relative_to(inputs).as_posix(): x for x in lines}
    assert set(by_path) == {rel for _, rel in PHOTOS.values()} | {BAD}
    bad = by_path.pop(BAD)
    assert bad["ok"] is False and "broken.jpg" in bad["error"] and ("truncated" in bad["error"] or "decode" in bad["error"])
    assert bad["output"] == str(first_run["out"] / _out_name(BAD))
    assert not (first_run["out"] / _out_name(BAD)).exists()
    for rel, line in by_path.items():
        assert line["ok"] is True and line["skipped"] is False and line["error"] is None, line
        assert line["output"] == str(first_run["out"] / _out_name(rel))
    assert f"error: {bad['error']}" in first_run["log"]


@pytest.mark.slow
@pytest.mark.model
def test_rerun_skips_existing_outputs(first_run, inputs, cluster, reference):
    out = first_run["out"]
    redo = PHOTOS["chelsea"][1]
    (out / _out_name(redo)).unlink()
    kept = {rel: (out / _out_name(rel)).stat().st_mtime_ns for rel in reference if rel != redo}
    code, log = _finish(_alphacut(
        [str(inputs), "-o", str(out), "--engine", "ray", "--ray-address", cluster.address, "-q"], _env(cluster)))
    assert code == 1, log[-3000:]  # the broken file still fails
    assert "1 written, 5 skipped (output exists), 1 failed, of 7" in log, log[-3000:]
    assert (out / _out_name(redo)).read_bytes() == reference[redo]
    for rel, mtime in kept.items():
        assert (out / _out_name(rel)).stat().st_mtime_ns == mtime, f"{rel} was rewritten"
    lines = [json.loads(x) for x in (out / "alphacut-report.jsonl").read_text().splitlines()]
    skipped = {Path(x["path"]).relative_to(inputs).as_posix() for x in lines if x["skipped"]}
    assert skipped == set(kept)


API_DRIVER = """
import json, sys, ray
from alphacut.engines.ray import cut_out_dataset
address, out, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
ray.init(address=address, log_to_driver=False)
ds = ray.data.read_binary_files(paths, include_paths=True, num_cpus=0)
rows = cut_out_dataset(ds, masks=True, concurrency=2).take_all()
for i, r in enumerate(rows):
    for k in ("cutout", "mask"):
        if r[k] is not None:
            open(f"{out}/{i}.{k}", "wb").write(r[k])
    r["index"] = i
json.dump([{k: r[k] for k in ("index", "path", "error", "note")} for r in rows], open(f"{out}/rows.json", "w"))
"""


@pytest.mark.slow
@pytest.mark.model
def test_dataset_api_returns_cutouts_masks_and_errors(cluster, inputs, reference, remover, tmp_path):
    """cut_out_dataset in a driver of its own (a subprocess: bounded in time, clean state)."""
    names = [PHOTOS["astronaut"][1], PHOTOS["logo"][1], BAD]
    proc = subprocess.Popen(
        [sys.executable, "-c", API_DRIVER, cluster.address, str(tmp_path), *[str(inputs / n) for n in names]],
        env=_env(cluster), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    code, log = _finish(proc, 120)
    assert code == 0, log[-3000:]
    rows = json.loads((tmp_path / "rows.json").read_text())
    got = {Path(r["path"]).relative_to(inputs).as_posix(): r for r in rows}
    assert set(got) == set(names)
    bad = got.pop(BAD)
    assert "broken.jpg" in bad["error"]
    assert not (tmp_path / f"{bad['index']}.cutout").exists() and not (tmp_path / f"{bad['index']}.mask").exists()
    for rel, row in got.items():
        assert row["error"] is None
        assert (tmp_path / f"{row['index']}.cutout").read_bytes() == reference[rel]
        mask = remover.remove(inputs / rel).encode("png", mask_only=True)
        assert (tmp_path / f"{row['index']}.mask").read_bytes() == mask


@pytest.mark.slow
@pytest.mark.model
def test_without_address_starts_a_local_instance(inputs, remover, tmp_path):
    """No --ray-address: a private local Ray instance; other options pass through unchanged."""
    src = tmp_path / "one"
    src.mkdir()
    rel = PHOTOS["logo"][1]
    (src / "logo.png").write_bytes((inputs / rel).read_bytes())
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    ray_tmp = tempfile.mkdtemp(prefix="acr", dir="/tmp")  # Ray's session files; short: unix sockets
    env.update(RAY_USAGE_STATS_ENABLED="0", ALPHACUT_RAY_ACTORS="1", RAY_TMPDIR=ray_tmp)
    try:
        code, log = _finish(_alphacut([str(src), "-o", str(out), "--engine", "ray", "-f", "webp",
                                       "--background", "#336699", "-q"], env))
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert code == 0, log[-3000:]
    expected = remover.remove(src / "logo.png").encode("webp", background=(0x33, 0x66, 0x99))
    assert (out / "logo.webp").read_bytes() == expected
    line = json.loads((out / "alphacut-report.jsonl").read_text())
    assert line["ok"] is True and line["path"] == str(src / "logo.png")


def test_core_does_not_import_ray():
    code = (
        "import sys, alphacut, alphacut.cli, alphacut.engines.batch, alphacut.pipeline, alphacut.serve.app\n"
        "from typer.testing import CliRunner\n"
        "CliRunner().invoke(alphacut.cli.app, ['remove', '--help'])\n"
        "bad = sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_planning_mirrors_the_local_engine(tmp_path):
    """Same output names as batch.plan_outputs, for one directory and for several inputs."""
    from alphacut.engines.batch import plan_outputs
    from alphacut.engines.ray import plan

    a = tmp_path / "a"
    (a / "x" / "y").mkdir(parents=True)
    for rel in ("p.jpg", "x/q.png", "x/y/r.tif", ".hidden.jpg", "x/t.tar.gz"):
        (a / rel).write_bytes(b"?")
    single = tmp_path / "s.jpg"
    single.write_bytes(b"?")
    out = tmp_path / "out"
    for inputs in ([a], [a, single]):
        for suffix in ("", "-cut"):
            jobs, errors = plan_outputs(inputs, out, "webp", suffix=suffix)
            p = plan([str(i) for i in inputs], str(out), "webp", suffix=suffix)
            assert not errors and not p.errors
            assert {str(j.source): str(j.target) for j in jobs} == p.targets
            assert sorted(p.todo) == sorted(p.targets)
    # Collisions are reported like the local engine does; existing outputs are skipped.
    (a / "p.png").write_bytes(b"?")
    p = plan([str(a)], str(out), "png")
    assert any("collide" in e["error"] for e in p.errors)
    (out / "x").mkdir(parents=True)
    (out / "x" / "q.png").write_bytes(b"done")
    p = plan([str(a)], str(out), "png")
    assert str(a / "x" / "q.png") in p.skipped and str(a / "x" / "q.png") not in p.todo
    assert str(a / "x" / "q.png") in plan([str(a)], str(out), "png", overwrite=True).todo


def test_uris_and_object_store_writes(tmp_path):
    """The object-store code path (no local paths, one PUT per file, the report uploaded at the
    end), on a local directory dressed as an object store; and URIs mangled by pathlib."""
    import pyarrow.fs as pafs

    from alphacut.engines.ray import Location, _line, _Report, _write_bytes, locate

    assert locate("file:/tmp/x").path == "/tmp/x" and locate("file:/tmp/x").local
    assert locate(str(tmp_path)).path == str(tmp_path)
    store = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    out = Location("mem://bucket/cut", store, "bucket/cut", False)
    _write_bytes(out, "bucket/cut/a/b.png", b"png bytes", overwrite=True, protect=None)
    assert (tmp_path / "bucket/cut/a/b.png").read_bytes() == b"png bytes"
    assert out.display("bucket/cut/a/b.png") == "mem://bucket/cut/a/b.png"
    report = _Report(out)
    report.add(_line("mem://bucket/in/a/b.jpg", "mem://bucket/cut/a/b.png", True))
    assert not (tmp_path / "bucket/cut/alphacut-report.jsonl").exists()  # uploaded at the end
    assert report.close() == "mem://bucket/cut/alphacut-report.jsonl"
    line = json.loads((tmp_path / "bucket/cut/alphacut-report.jsonl").read_text())
    assert line == {"path": "mem://bucket/in/a/b.jpg", "output": "mem://bucket/cut/a/b.png", "ok": True,
                    "skipped": False, "error": None, "note": None}


def test_output_inside_or_equal_to_the_input(tmp_path):
    from alphacut.engines.batch import plan_outputs
    from alphacut.engines.ray import plan

    a = tmp_path / "a"
    (a / "cut").mkdir(parents=True)
    (a / "p.jpg").write_bytes(b"?")
    (a / "q.png").write_bytes(b"?")
    (a / "cut" / "p.png").write_bytes(b"an earlier output")
    p = plan([str(a)], str(a / "cut"), "png")  # outputs below the input: not inputs
    assert p.skipped == [str(a / "p.jpg")] and p.todo == [str(a / "q.png")] and not p.errors
    jobs, errors = plan_outputs([a], a, "png")  # OUTPUT = INPUT: as the local engine
    p = plan([str(a)], str(a), "png")
    assert len(p.errors) == len(errors) == 2 and all("overwrite the input" in e["error"] for e in p.errors)
    assert set(p.targets) | set(p.skipped) == {str(j.source) for j in jobs}
    (a / "alphacut-report.jsonl").write_text("{}\n")  # an earlier run's report is no input
    assert str(a / "alphacut-report.jsonl") not in plan([str(a)], str(a), "png").targets
