"""Load test of the HTTP API on loopback: N distinct images from T client threads.

Starts ``create_app`` under uvicorn in this process on a free 127.0.0.1 port (or uses
``--url`` of a running ``alphacut serve``), sends every image once, and checks that each answer
is its own input's cut-out (the RGB of the response equals the RGB of the request; alpha is the
mask). Reports throughput, latency percentiles, and how many requests were answered 503 (busy)
and retried after their Retry-After.

    .venv/bin/python bench/api_load.py --requests 12 --threads 4 --size 200
    .venv/bin/python bench/api_load.py --url http://127.0.0.1:8000 --token XYZ
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import sys
import threading
import time

import httpx
import numpy as np
from PIL import Image


def start_server(queue: int):
    import os

    import uvicorn

    from alphacut.serve.app import create_app

    os.environ.setdefault("ALPHACUT_API_QUEUE", str(queue))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    app = create_app()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    t = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    t0 = time.perf_counter()
    t.start()
    while not server.started:
        time.sleep(0.05)
    print(f"server up (model loaded) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=12)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--size", type=int, default=200, help="side of the square test images, px")
    ap.add_argument("--url", help="a running server; default: start one here")
    ap.add_argument("--token")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--baseline", type=int, default=0, help="also time this many direct Remover calls (no HTTP)")
    args = ap.parse_args()

    server = None
    url = args.url
    if url is None:
        url, server = start_server(queue=args.threads)
    headers = {"Content-Type": "image/png"}
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"

    rng = np.random.default_rng(6)
    images = []
    for i in range(args.requests):
        a = rng.integers(0, 256, (args.size, args.size, 3), np.uint8)
        a[: args.size // 2, : args.size // 2] = (i * 37 % 256, 80, 200)  # a flat block: some structure
        images.append(a)
    bodies = []
    for a in images:
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, "PNG")
        bodies.append(buf.getvalue())

    todo = list(range(args.requests))
    lock = threading.Lock()
    latencies: list[float] = []
    results: dict[int, bytes] = {}
    busy = 0
    errors: list[str] = []

    def worker() -> None:
        nonlocal busy
        with httpx.Client(timeout=600) as c:
            while True:
                with lock:
                    if not todo:
                        return
                    i = todo.pop()
                while True:
                    t = time.perf_counter()
                    r = c.post(f"{url}/api/v1/remove", content=bodies[i], headers=headers)
                    if r.status_code == 503:
                        with lock:
                            busy += 1
                        time.sleep(float(r.headers.get("retry-after", "1")))
                        continue
                    break
                with lock:
                    latencies.append(time.perf_counter() - t)
                    if r.status_code == 200:
                        results[i] = r.content
                    else:
                        errors.append(f"request {i}: {r.status_code} {r.text[:200]}")

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(args.threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t0

    mixed = [i for i, data in results.items() if not np.array_equal(np.asarray(Image.open(io.BytesIO(data)))[..., :3], images[i])]
    lost = sorted(set(range(args.requests)) - set(results))
    lat = np.array(latencies) if latencies else np.zeros(1)
    report = {
        "requests": args.requests,
        "threads": args.threads,
        "size": args.size,
        "seconds": round(elapsed, 2),
        "images_per_s": round(len(results) / elapsed, 3),
        "latency_p50_s": round(float(np.percentile(lat, 50)), 2),
        "latency_max_s": round(float(lat.max()), 2),
        "busy_503_retried": busy,
        "lost": lost,
        "mixed_up": mixed,
        "errors": errors,
    }
    if args.baseline:
        from alphacut import Remover

        r = Remover()  # the default model, as the server uses
        r.session  # noqa: B018 - loaded already when the server runs here
        t = time.perf_counter()
        for i in range(args.baseline):
            r.remove(bodies[i % len(bodies)]).encode("png")
        report["direct_images_per_s"] = round(args.baseline / (time.perf_counter() - t), 3)
    if args.json:
        print(json.dumps(report))
    else:
        for k, v in report.items():
            print(f"{k:>18}: {v}")
    if server is not None:
        server.should_exit = True
    sys.exit(1 if lost or mixed or errors else 0)


if __name__ == "__main__":
    main()
