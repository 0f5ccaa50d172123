"""Images per minute: the local engine vs the Ray engine on one and on two Ray nodes.

    .venv/bin/python bench/ray_bench.py [--images 8] [--cpus-per-node 1] [--size 384]

Every run is the real command, ``alphacut remove DIR -o OUT -q``, in a subprocess, on the
same small real photos (scikit-image's samples, downscaled; IS-Net sees every one at
1024x1024, so the size matters little):

- ``local``: ``--engine local`` (one process, one ONNX Runtime session on every core);
- ``ray, 1 node`` / ``ray, 2 nodes``: ``--engine ray --ray-address`` on a loopback Ray
  cluster of that many nodes (``alphacut.engines.ray_cluster.LocalCluster``, ``--cpus-per-node``
  CPUs each, one single-threaded actor per CPU), started before the clock starts;
- ``ray, local instance``: ``--engine ray`` without an address (starts its own Ray).

Two figures per run: ``wall`` counts the whole command (Ray's driver start, the actors'
model loading); ``steady`` counts from the first output written to the last, the rate a
long batch approaches. The machine's load average is printed: on a shared machine the
figures move with it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "logo", "camera",
          "retina", "cat"]


def make_photos(d: Path, n: int, size: int) -> None:
    from PIL import Image
    from skimage import data

    for i in range(n):
        name = PHOTOS[i % len(PHOTOS)]
        im = Image.fromarray(getattr(data, name)())
        im.thumbnail((size, size))
        ext = ".png" if im.mode in ("RGBA", "L") else ".jpg"
        im.save(d / f"{i:02d}-{name}{ext}", **({"quality": 90} if ext == ".jpg" else {}))


def run(label: str, args: list[str], src: Path, out: Path, env: dict[str, str], n: int) -> dict:
    cmd = [sys.executable, "-m", "alphacut.cli", "remove", str(src), "-o", str(out), "-q", *args]
    t0 = time.time()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800, check=False)
    wall = time.time() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{label}: exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    outputs = [p for p in out.rglob("*") if p.is_file() and p.suffix in (".png", ".webp", ".avif")]
    if len(outputs) != n:
        raise SystemExit(f"{label}: {len(outputs)} outputs for {n} inputs")
    times = sorted(p.stat().st_mtime for p in outputs)
    span = times[-1] - times[0]
    return {
        "run": label,
        "images": n,
        "wall_s": round(wall, 1),
        "images_per_min_wall": round(n / wall * 60, 1),
        "images_per_min_steady": round((n - 1) / span * 60, 1) if span > 0 else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--size", type=int, default=384, help="longest side of the photos, px")
    ap.add_argument("--cpus-per-node", type=int, default=1)
    ap.add_argument("--skip-local-instance", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the results here")
    a = ap.parse_args()

    from alphacut.engines.ray_cluster import LocalCluster
    from alphacut.models import store

    store.resolve(None)  # the default model, installed before any clock starts
    results = []
    with tempfile.TemporaryDirectory(prefix="ray-bench-") as tmp:
        tmp = Path(tmp)
        src = tmp / "in"
        src.mkdir()
        make_photos(src, a.images, a.size)
        base_env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
        base_env["RAY_USAGE_STATS_ENABLED"] = "0"
        print(f"{a.images} photos, longest side {a.size} px; {os.cpu_count()} CPUs; "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)

        results.append(run("local", ["--engine", "local"], src, tmp / "out-local", base_env, a.images))
        print(results[-1], flush=True)
        for nodes in (1, 2):
            t0 = time.time()
            with LocalCluster(nodes=nodes, cpus_per_node=a.cpus_per_node) as c:
                up = time.time() - t0
                env = {**base_env, **c.driver_env}
                r = run(f"ray, {nodes} node{'s' if nodes > 1 else ''} x {a.cpus_per_node} CPU",
                        ["--engine", "ray", "--ray-address", c.address], src, tmp / f"out-ray{nodes}", env, a.images)
                r["cluster_start_s"] = round(up, 1)
                results.append(r)
                print(results[-1], flush=True)
        if not a.skip_local_instance:
            ray_tmp = tempfile.mkdtemp(prefix="acr", dir="/tmp")  # Ray's session files (short path)
            try:
                results.append(run("ray, local instance", ["--engine", "ray"], src, tmp / "out-ray-local",
                                   {**base_env, "RAY_TMPDIR": ray_tmp}, a.images))
            finally:
                shutil.rmtree(ray_tmp, ignore_errors=True)
            print(results[-1], flush=True)
        # The engines agree byte for byte.
        ref = {p.relative_to(tmp / "out-local"): p.read_bytes() for p in (tmp / "out-local").rglob("*.png")}
        for d in sorted(tmp.glob("out-ray*")):
            for rel, data in ref.items():
                assert (d / rel).read_bytes() == data, f"{d.name}/{rel} differs from the local engine"
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    print(f"{'run':<28}{'wall s':>8}{'img/min (wall)':>16}{'img/min (steady)':>18}")
    for r in results:
        print(f"{r['run']:<28}{r['wall_s']:>8}{r['images_per_min_wall']:>16}{r['images_per_min_steady'] or '-':>18}")
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
