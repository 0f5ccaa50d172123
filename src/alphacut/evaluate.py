"""Quality harness: score cut-outs against ground truth (``alphacut eval SET_DIR``).

A set directory holds ``manifest.json`` (a list of entries with at least ``name``,
``image_file``, ``gt_file``, ``kind`` and ``category``), ``images/`` and ``gt/`` (8-bit grey,
255 = foreground, same size as the image). Each *variant* turns an image into a float alpha in
[0, 1]; it is scored with

- ``kind == "alpha"`` (soft mattes): MAE, MSE, SAD (sum of |alpha - gt|, alpha in [0, 1],
  in thousands) and edge SAD (the same sum only where the ground truth is soft, 0 < gt < 1,
  dilated by ``EDGE_PX`` px: what remains of the error once the edges are counted apart);
- ``kind == "mask"`` (binary): MAE, IoU and F-beta (beta² = 0.3) with both sides thresholded
  at 0.5.

MAE and IoU are also computed for every image (IoU on the ground truth thresholded at 0.5) so
that an overall MAE and IoU can be reported; results are averaged per image, per kind, per
(kind, category) and overall, and the soft mattes are also listed photo by photo. Time per
image is reported as inference and post-processing (settle + refine) separately, with
post-processing and the whole per megapixel. Each variant is also paired image by image with
a reference variant (``baseline`` when scored, else the first): on how many images it is
better (MAE lower / IoU higher), and the mean difference of the main metrics with a 95 %
paired bootstrap interval (a mean can hide a few large changes; 25 photos are few).

The shipped variants (``default``, ``float``, each refinement, ``best``, ``flip``) are
``Options`` of the one pipeline path: they run ``pipeline.Remover.remove`` on the image file,
so what is scored is what ``alphacut remove`` writes. The other variants (``baseline``,
``browser-input``, ``centre``, ``centre-float``, ``best-conf``) are experiments with other
model inputs or fusions that nothing ships; they keep their own short flows here.

Raw model outputs are cached (``$ALPHACUT_EVAL_CACHE`` or ``/tmp/alphacut-evalcache``), keyed
by the model input's hash + model + quality mode (shipped variants) or by image hash + model +
preprocessing (experiments), so trying refinements never re-runs the network; the inference
time recorded when an output was computed is reported with it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from alphacut.errors import AlphacutError
from alphacut.models.catalog import CATALOG, DEFAULT_MODEL
from alphacut.options import Options
from alphacut.pipeline import Remover
from alphacut.stages import mask as mask_mod
from alphacut.stages import preprocess, refine, settle

FBETA2 = 0.3
#: Edge SAD: the ground truth's soft pixels dilated by this many pixels (Euclidean).
EDGE_PX = 10


# ----------------------------------------------------------------------------- the set


@dataclass
class Item:
    name: str
    kind: str
    category: str
    image: Path
    gt: Path
    sha: str


def load_set(set_dir: Path) -> list[Item]:
    set_dir = Path(set_dir)
    entries = json.loads((set_dir / "manifest.json").read_text())
    if isinstance(entries, dict):
        entries = entries.get("items") or entries.get("images") or []
    items = []
    for e in entries:
        img = set_dir / e.get("image_file", f"images/{e['name']}.png")
        gt = set_dir / e.get("gt_file", f"gt/{e['name']}.png")
        sha = e.get("sha256_image") or hashlib.sha256(img.read_bytes()).hexdigest()
        items.append(Item(e["name"], e.get("kind", "mask"), e.get("category", "other"), img, gt, sha))
    return items


def load_image(path: Path) -> np.ndarray:
    from alphacut.stages.decode import decode

    return decode(path).rgba


def load_gt(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        g = np.asarray(im.convert("L"), dtype=np.float32)
    return g / 255.0


# ----------------------------------------------------------------------------- metrics


def edge_zone(gt: np.ndarray, px: int = EDGE_PX) -> np.ndarray:
    """Where the ground truth is soft (0 < gt < 1), dilated by ``px`` pixels."""
    from scipy import ndimage as ndi

    soft = (gt > 0) & (gt < 1)
    if not soft.any():
        return soft
    return ndi.distance_transform_edt(~soft) <= px


def score(alpha: np.ndarray, gt: np.ndarray, kind: str) -> dict[str, float]:
    """Metrics for one image; alpha and gt float in [0, 1], same shape."""
    if alpha.shape != gt.shape:
        raise ValueError(f"prediction {alpha.shape} and ground truth {gt.shape} differ in size")
    a = alpha.astype(np.float64)
    g = gt.astype(np.float64)
    d = np.abs(a - g)
    out = {"mae": float(d.mean()), "mse": float((d * d).mean()), "sad": float(d.sum() / 1000.0)}
    pb = a >= 0.5
    gb = g >= 0.5
    tp = float(np.count_nonzero(pb & gb))
    fp = float(np.count_nonzero(pb & ~gb))
    fn = float(np.count_nonzero(~pb & gb))
    union = tp + fp + fn
    out["iou"] = tp / union if union else 1.0
    prec = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
    rec = tp / (tp + fn) if tp + fn else 1.0
    den = FBETA2 * prec + rec
    out["fbeta"] = (1 + FBETA2) * prec * rec / den if den else 0.0
    if kind == "alpha":
        out["edge"] = float(d[edge_zone(g)].sum() / 1000.0)
    return out


#: Metrics shown per kind (all are computed; these are the ones that kind is judged by).
KIND_METRICS = {"alpha": ["mae", "mse", "sad", "edge"], "mask": ["mae", "iou", "fbeta"]}
OVERALL_METRICS = ["mae", "iou"]


# ----------------------------------------------------------------------------- preprocessing


def browser_resize(rgb: np.ndarray, new_w: int, new_h: int) -> np.ndarray:
    """The common browser pipeline's resize: bilinear, no antialiasing, src = dst * scale
    (top-left aligned), rounded to uint8. Works on (H, W) or (H, W, C) uint8."""
    src = rgb.astype(np.float32)
    h, w = src.shape[:2]
    sx = np.arange(new_w, dtype=np.float64) * (w / new_w)
    sy = np.arange(new_h, dtype=np.float64) * (h / new_h)
    x1 = np.floor(sx).astype(np.intp)
    y1 = np.floor(sy).astype(np.intp)
    x2 = np.minimum(np.ceil(sx).astype(np.intp), w - 1)
    y2 = np.minimum(np.ceil(sy).astype(np.intp), h - 1)
    dx = (sx - x1).astype(np.float32)
    dy = (sy - y1).astype(np.float32)
    if src.ndim == 3:
        dx = dx[:, None]
    top = src[y1][:, x1] * (1 - dx) + src[y1][:, x2] * dx
    bot = src[y2][:, x1] * (1 - dx) + src[y2][:, x2] * dx
    dyb = dy[:, None, None] if src.ndim == 3 else dy[:, None]
    out = top * (1 - dyb) + bot * dyb
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)


def _prep_pipeline(rgba, spec):
    return preprocess.preprocess(rgba, spec)


def _prep_browser(rgba, spec):
    w, h = spec.input_size
    return preprocess.to_tensor(browser_resize(rgba[..., :3], w, h), spec)


def centre_resize(rgb: np.ndarray, new_w: int, new_h: int) -> np.ndarray:
    """The model's training-code resize: bilinear, no antialiasing, pixel centres aligned
    (PyTorch ``interpolate(mode="bilinear", align_corners=False)``), float, not rounded."""
    src = rgb.astype(np.float32)
    h, w = src.shape[:2]

    def axis(n_out, n_in):
        c = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
        c = np.clip(c, 0, n_in - 1)
        i0 = np.floor(c).astype(np.intp)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, (c - i0).astype(np.float32)

    x0, x1, dx = axis(new_w, w)
    y0, y1, dy = axis(new_h, h)
    rows = src[y0] * (1 - dy)[:, None, None] + src[y1] * dy[:, None, None]
    return rows[:, x0] * (1 - dx)[None, :, None] + rows[:, x1] * dx[None, :, None]


def _prep_centre(rgba, spec):
    w, h = spec.input_size
    x = centre_resize(rgba[..., :3], w, h)
    x -= np.asarray(spec.mean, np.float32)
    x /= np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def _prep_flip(rgba, spec):
    return preprocess.preprocess(np.ascontiguousarray(rgba[:, ::-1]), spec)


#: name -> (tensor maker, un-flip the output horizontally)
PREPS: dict[str, tuple[Callable, bool]] = {
    "pipeline": (_prep_pipeline, False),
    "browser": (_prep_browser, False),
    "flip": (_prep_flip, True),
    "centre": (_prep_centre, False),
}


def cache_dir() -> Path:
    return Path(os.environ.get("ALPHACUT_EVAL_CACHE", "/tmp/alphacut-evalcache"))


class Outputs:
    """Raw model outputs, (h, w) float32 at the model's size, cached on disk."""

    def __init__(self, model: str = DEFAULT_MODEL, cache: Path | None = None):
        from alphacut.models import hashing, store

        self.model = model
        self.spec, self.model_path = store.resolve(model)
        self.cache = Path(cache) if cache else cache_dir()
        self._session = None
        # Cache key part: the catalog id, or (a user's file) its content hash, never its path.
        self.key = self.spec.id if self.spec.id in CATALOG else "file-" + hashing.sha256_file(self.model_path)[:16]

    @property
    def session(self):
        if self._session is None:
            from alphacut.stages import infer

            self._session = infer.get_session(self.model_path, self.spec)
        return self._session

    def cached(self, tensor: np.ndarray, quality: str, compute: Callable[[], list[np.ndarray]]) -> tuple[list[np.ndarray], float]:
        """(the shipped path's raw outputs for this model input and quality mode, seconds the
        inference took when they were computed); ``compute`` runs the model on a miss."""
        digest = hashlib.sha256(np.ascontiguousarray(tensor).data).hexdigest()[:24]
        key = f"t{digest}-{self.key}-{quality}"
        npy = self.cache / f"{key}.npy"
        meta = self.cache / f"{key}.json"
        if npy.is_file() and meta.is_file():
            return list(np.load(npy)), float(json.loads(meta.read_text())["infer_s"])
        t = time.perf_counter()
        raws = compute()
        t_inf = time.perf_counter() - t
        self.cache.mkdir(parents=True, exist_ok=True)
        tmp = npy.with_suffix(".tmp.npy")
        np.save(tmp, np.stack([np.asarray(r, np.float32) for r in raws]))
        os.replace(tmp, npy)
        meta.write_text(json.dumps({"infer_s": t_inf}))
        return raws, t_inf

    def get(self, item: Item, rgba: np.ndarray, prep: str) -> tuple[np.ndarray, float]:
        """(raw output at model size, seconds the inference took when it was computed)."""
        key = f"{item.sha[:24]}-{self.key}-{prep}"
        npy = self.cache / f"{key}.npy"
        meta = self.cache / f"{key}.json"
        if npy.is_file() and meta.is_file():
            return np.load(npy), float(json.loads(meta.read_text())["infer_s"])
        make, unflip = PREPS[prep]
        t = time.perf_counter()
        tensor = make(rgba, self.spec)
        t_pre = time.perf_counter() - t
        t = time.perf_counter()
        raw = np.asarray(self.session.run(tensor), np.float32)
        t_inf = time.perf_counter() - t
        while raw.ndim > 2:
            raw = raw[0]
        if unflip:
            raw = raw[:, ::-1]
        raw = np.ascontiguousarray(raw)
        self.cache.mkdir(parents=True, exist_ok=True)
        tmp = npy.with_suffix(".tmp.npy")
        np.save(tmp, raw)
        os.replace(tmp, npy)
        meta.write_text(json.dumps({"infer_s": t_inf, "preprocess_s": t_pre, "name": item.name}))
        return raw, t_inf


# ----------------------------------------------------------------------------- variants


def fuse_runs(masks: list[np.ndarray], how: str = "mean") -> np.ndarray:
    """Several float masks of one photo → one: the mean, or a per-pixel mean weighted by each
    run's confidence |2m - 1| (a run that is sure outweighs one that is not)."""
    if how == "mean":
        return np.mean(masks, axis=0, dtype=np.float32)
    w = [np.abs(2 * m - 1) + 1e-3 for m in masks]
    return (sum(m * wi for m, wi in zip(masks, w)) / sum(w)).astype(np.float32)


def baseline_mask(raw: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Browser post-processing: trunc(m * 255) to uint8 at model size, 8-bit bilinear resize
    (rounded), / 255."""
    m = np.clip(raw, 0.0, 1.0)
    m8 = (m * np.float32(255)).astype(np.uint8)  # truncation, as a Uint8Array assignment
    big = browser_resize(m8, size[0], size[1])
    return big.astype(np.float32) / np.float32(255)


@dataclass
class Variant:
    name: str
    preps: tuple[str, ...]  # experiments: the model inputs (ignored for shipped variants)
    refine: str | None  # experiments: the refinement; None: browser post-processing (baseline)
    note: str = ""
    fuse: str = "mean"  # several runs: "mean", or "conf" (per pixel, weights |2m - 1|)
    settle: bool = False  # experiments: decide large half-believed regions by colour (stages/settle.py)
    options: Options | None = None  # a shipped variant: these options on the pipeline's own path


def _shipped(name: str, note: str, **options) -> Variant:
    o = Options(**options)
    return Variant(name, (), o.refine, note, options=o)


def variants_available() -> dict[str, Variant]:
    v = {
        "default": _shipped("default", "what `alphacut remove` does with no options (settle + refine)"),
        "baseline": Variant("baseline", ("browser",), None, "browser pipeline: no-AA resize, 8-bit mask"),
        "float": _shipped("float", "AA resize, float mask, no settle, no refinement", refine="none", settle=False),
    }
    for name in refine.REFINERS:
        if name != "none":
            v[name] = _shipped(name, f"float + refine {name}, no settle", refine=name, settle=False)
    v["flip"] = _shipped("flip", "mirrored-photo averaging, no settle, no refinement", quality="best", refine="none",
                         settle=False)
    v["browser-input"] = Variant(
        "browser-input", ("browser",), refine.DEFAULT_REFINE,
        f"the browser's model input (no-AA, top-left aligned) + float mask + {refine.DEFAULT_REFINE}",
    )
    v["centre"] = Variant(
        "centre", ("centre",), refine.DEFAULT_REFINE,
        f"training-code input sampling (no-AA, pixel centres, float) + float mask + {refine.DEFAULT_REFINE}",
    )
    v["centre-float"] = Variant("centre-float", ("centre",), "none", "training-code input sampling, no refinement")
    v["settle"] = _shipped("settle", f"float + settle + {refine.DEFAULT_REFINE} (the default)")
    v["best-plain"] = _shipped("best-plain", f"flip + refine {refine.DEFAULT_REFINE}, no settle", quality="best",
                               settle=False)
    v["best"] = _shipped("best", f"--quality best: flip + settle + {refine.DEFAULT_REFINE}", quality="best")
    v["best-conf"] = Variant(
        "best-conf", ("pipeline", "flip"), refine.DEFAULT_REFINE,
        "flip, runs fused per pixel by confidence, + default refinement", fuse="conf",
    )
    return v


DEFAULT_VARIANTS = ["baseline", "float", refine.DEFAULT_REFINE, "settle", "best-plain", "best"]


@dataclass
class Result:
    variant: str
    item: Item
    metrics: dict[str, float]
    infer_s: float
    refine_s: float  # post-processing after the model: settle + refine
    megapixels: float


class _Shipped(Remover):
    """The pipeline's own path (``Remover.remove``) with the model's outputs kept in the
    harness's cache: a miss runs ``Remover.run_model`` itself."""

    def __init__(self, outputs: Outputs):
        self.outputs = outputs
        self.spec, self.max_pixels, self._session = outputs.spec, None, None
        self.infer_s = 0.0
        self._use(Options())

    @property
    def session(self):
        return self.outputs.session

    def run_model(self, tensor: np.ndarray) -> list[np.ndarray]:
        raws, self.infer_s = self.outputs.cached(tensor, self.quality, lambda: Remover.run_model(self, tensor))
        return raws


def run_variant(
    v: Variant, item: Item, rgba: np.ndarray, outputs: Outputs, tensor: Callable[[], np.ndarray] | None = None
) -> tuple[np.ndarray, float, float]:
    """(alpha, inference seconds, post-processing seconds). A shipped variant's alpha is the
    float mask of ``Remover.remove`` on the image file (before any input alpha is applied).
    For experiments, ``tensor`` gives the model input (the settle stage's guide is made from
    it, as in the pipeline) when the caller caches it."""
    if v.options is not None:
        shipped = _Shipped(outputs)
        shipped._use(v.options)
        cut = shipped.remove(item.image, item.name)
        return cut.mask, shipped.infer_s, cut.timings["refine"] + cut.timings.get("settle", 0.0)
    h, w = rgba.shape[:2]
    raws, infer_s = [], 0.0
    for p in v.preps:
        r, t = outputs.get(item, rgba, p)
        raws.append(r)
        infer_s += t
    if v.refine is None:
        t = time.perf_counter()
        a = baseline_mask(raws[0], (w, h))
        return a, infer_s, time.perf_counter() - t
    small = [mask_mod.from_output(r, outputs.spec) for r in raws]
    small = small[0] if len(small) == 1 else fuse_runs(small, v.fuse)
    t_settle = 0.0
    if v.settle:
        x = tensor() if tensor else preprocess.preprocess(rgba, outputs.spec)
        t = time.perf_counter()
        small = settle.settle(settle.guide_from_tensor(x, outputs.spec.mean, outputs.spec.std), small).mask
        t_settle = time.perf_counter() - t
    full = mask_mod.upscale(small, (w, h))
    t = time.perf_counter()
    a = refine.refine(v.refine, rgba, full)
    return a, infer_s, t_settle + time.perf_counter() - t


def evaluate(
    set_dir: Path,
    model: str = DEFAULT_MODEL,
    variants: list[str] | None = None,
    outputs: Outputs | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Result]:
    items = load_set(set_dir)
    avail = variants_available()
    names = variants or DEFAULT_VARIANTS
    names = list(dict.fromkeys(names))
    unknown = [n for n in names if n not in avail]
    if unknown:
        raise ValueError(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(avail)}")
    outputs = outputs or Outputs(model)
    results = []
    for it in items:
        rgba = load_image(it.image)
        gt = load_gt(it.gt)
        tensor = functools.cache(functools.partial(preprocess.preprocess, rgba, outputs.spec))  # once per photo
        for n in names:
            a, ti, tr = run_variant(avail[n], it, rgba, outputs, tensor)
            results.append(Result(n, it, score(a, gt, it.kind), ti, tr, rgba.shape[0] * rgba.shape[1] / 1e6))
        if progress:
            progress(it.name)
    return results


# ----------------------------------------------------------------------------- aggregation


def paired_interval(diffs, rounds: int = 10000, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): the mean of per-image differences and its 95 % bootstrap interval
    (images resampled with replacement; a fixed seed, so a table is reproducible)."""
    d = np.asarray(diffs, np.float64)
    if d.size == 0:
        return 0.0, 0.0, 0.0
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(rounds, d.size))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(d.mean()), float(lo), float(hi)


#: Metrics whose paired difference is reported, per group kind.
PAIRED_METRICS = {"alpha": ["sad", "edge", "iou"], "mask": ["mae", "iou"], "overall": ["mae", "iou"]}


def reference_variant(results: list[Result]) -> str | None:
    """What the other variants are paired with: ``baseline`` when scored, else the first."""
    variants = list(dict.fromkeys(r.variant for r in results))
    if len(variants) < 2:
        return None
    return "baseline" if "baseline" in variants else variants[0]


def aggregate(results: list[Result], reference: str | None = None) -> list[dict]:
    """Rows {group, variant, n, metrics..., infer_s, refine_s, refine_ms_per_mp,
    total_s_per_mp} per group: overall, kind=K, kind=K/category=C; each variant but the
    reference also carries its paired comparison with the reference (``better_mae``,
    ``better_iou``, ``paired`` and ``d_<metric>`` = (mean difference, low, high))."""
    groups: dict[str, Callable[[Item], bool]] = {"overall": lambda it: True}
    kinds = sorted({r.item.kind for r in results})
    for k in kinds:
        groups[f"{k}"] = lambda it, k=k: it.kind == k
        for c in sorted({r.item.category for r in results if r.item.kind == k}):
            groups[f"{k}/{c}"] = lambda it, k=k, c=c: it.kind == k and it.category == c
    variants = list(dict.fromkeys(r.variant for r in results))
    ref = reference or reference_variant(results)
    base = {r.item.name: r.metrics for r in results if r.variant == ref}
    rows = []
    for g, pred in groups.items():
        for v in variants:
            rs = [r for r in results if r.variant == v and pred(r.item)]
            if not rs:
                continue
            row = {"group": g, "variant": v, "n": len(rs)}
            for m in dict.fromkeys(k for r in rs for k in r.metrics):
                if all(m in r.metrics for r in rs):  # edge SAD: soft mattes only
                    row[m] = float(np.mean([r.metrics[m] for r in rs]))
            row["infer_s"] = float(np.mean([r.infer_s for r in rs]))
            row["refine_s"] = float(np.mean([r.refine_s for r in rs]))
            mp = sum(r.megapixels for r in rs)
            row["refine_ms_per_mp"] = 1000.0 * sum(r.refine_s for r in rs) / mp if mp else 0.0
            row["total_s_per_mp"] = sum(r.infer_s + r.refine_s for r in rs) / mp if mp else 0.0
            row["megapixels"] = mp / len(rs)
            if base and v != ref:
                # Paired with the reference, image by image: on how many is this variant
                # better, and how sure is the mean difference?
                pairs = [(r.metrics, base[r.item.name]) for r in rs if r.item.name in base]
                row["reference"] = ref
                row["better_mae"] = sum(m["mae"] < b["mae"] for m, b in pairs)
                row["better_iou"] = sum(m["iou"] > b["iou"] for m, b in pairs)
                row["paired"] = len(pairs)
                for m in PAIRED_METRICS.get(g.split("/")[0], PAIRED_METRICS["overall"]):
                    if pairs and m in pairs[0][0] and m in pairs[0][1]:
                        row[f"d_{m}"] = paired_interval([a[m] - b[m] for a, b in pairs])
            rows.append(row)
    return rows


def _metrics_for_group(group: str) -> list[str]:
    kind = group.split("/")[0]
    return KIND_METRICS.get(kind, OVERALL_METRICS)


FMT = {"mae": "{:.4f}", "mse": "{:.4f}", "sad": "{:.1f}", "edge": "{:.1f}", "iou": "{:.4f}", "fbeta": "{:.4f}"}
HEADS = {"fbeta": "F-beta", "edge": "edge SAD"}


def _fmt_interval(m: str, d: tuple[float, float, float]) -> str:
    f = "{:+.4f}" if m in ("mae", "mse", "iou", "fbeta") else "{:+.2f}"
    return f"{f.format(d[0])} [{f.format(d[1])}, {f.format(d[2])}]"


def print_tables(rows: list[dict], console=None, results: list[Result] | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    ref = next((r["reference"] for r in rows if "reference" in r), None)
    for g in dict.fromkeys(r["group"] for r in rows):
        grows = [r for r in rows if r["group"] == g]
        ms = _metrics_for_group(g)
        t = Table(title=f"{g} (n={grows[0]['n']})", title_justify="left",
                  caption=f"wins: images where MAE is lower, IoU higher than {ref}" if g == "overall" and ref else None)
        t.add_column("variant")
        for m in ms:
            t.add_column(HEADS.get(m, m.upper()), justify="right")
        for col in ("infer s/img", "post ms/img", "post ms/MP", "total s/MP", "wins MAE,IoU"):
            t.add_column(col, justify="right")
        for r in grows:
            t.add_row(
                r["variant"],
                *[FMT[m].format(r[m]) for m in ms],
                f"{r['infer_s']:.2f}",
                f"{1000 * r['refine_s']:.1f}",
                f"{r['refine_ms_per_mp']:.1f}",
                f"{r['total_s_per_mp']:.2f}",
                f"{r['better_mae']},{r['better_iou']}/{r['paired']}" if "paired" in r else "",
            )
        console.print(t)
    paired = [r for r in rows if "reference" in r and r["group"] in ("overall", "alpha", "mask")]
    if paired:
        t = Table(title=f"paired with {ref}: mean difference per image [95 % bootstrap interval]", title_justify="left")
        for col in ("group", "variant", "metric", "difference"):
            t.add_column(col)
        for r in paired:
            for k in [k for k in r if k.startswith("d_")]:
                t.add_row(r["group"], r["variant"], HEADS.get(k[2:], k[2:].upper()), _fmt_interval(k[2:], r[k]))
        console.print(t)
    soft = [r for r in results or [] if r.item.kind == "alpha"]
    if soft:
        variants = list(dict.fromkeys(r.variant for r in soft))
        t = Table(title="soft mattes, photo by photo: SAD / edge SAD (thousands)", title_justify="left")
        t.add_column("photo")
        for v in variants:
            t.add_column(v, justify="right")
        by = {(r.item.name, r.variant): r.metrics for r in soft}
        for name in dict.fromkeys(r.item.name for r in soft):
            t.add_row(name, *[f"{by[name, v]['sad']:.1f} / {by[name, v]['edge']:.1f}" for v in variants])
        console.print(t)


def markdown_table(rows: list[dict]) -> str:
    """One Markdown table (group × variant) for docs/quality.md."""
    lines = [
        "| group | n | variant | MAE | MSE | SAD (k) | edge SAD (k) | IoU | F-beta | infer s/img | post ms/img | post ms/MP | total s/MP |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        edge = f"{r['edge']:.1f}" if "edge" in r else ""
        lines.append(
            f"| {r['group']} | {r['n']} | {r['variant']} | {r['mae']:.4f} | {r['mse']:.4f} | {r['sad']:.1f} | {edge} | "
            f"{r['iou']:.4f} | {r['fbeta']:.4f} | {r['infer_s']:.2f} | {1000 * r['refine_s']:.1f} | "
            f"{r['refine_ms_per_mp']:.1f} | {r['total_s_per_mp']:.2f} |"
        )
    return "\n".join(lines)


def paired_markdown(rows: list[dict]) -> str:
    """The paired differences with their intervals, as Markdown."""
    lines = ["| group | variant | vs | metric | mean difference [95 % CI] |", "|---|---|---|---|---|"]
    for r in rows:
        for k in [k for k in r if k.startswith("d_")]:
            lines.append(f"| {r['group']} | {r['variant']} | {r['reference']} | {HEADS.get(k[2:], k[2:].upper())} | "
                         f"{_fmt_interval(k[2:], r[k])} |")
    return "\n".join(lines)


def main(
    set_dir: Path,
    model: str = DEFAULT_MODEL,
    variants: list[str] | None = None,
    json_out: Path | None = None,
    reference: str | None = None,
) -> int:
    """Entry point for ``alphacut eval``; returns the exit code. ``reference``: the variant
    the others are paired with (default ``baseline`` when scored, else the first)."""
    from rich.console import Console

    console = Console(stderr=False)
    err = Console(stderr=True)
    set_dir = Path(set_dir)
    if not (set_dir / "manifest.json").is_file():
        err.print(f"[red]{set_dir}: no manifest.json (expected manifest.json, images/, gt/)[/red]")
        return 2
    if reference is not None and reference not in (variants or DEFAULT_VARIANTS):
        err.print(f"[red]--reference {reference}: not among the variants scored[/red]", highlight=False)
        return 2
    try:
        results = evaluate(set_dir, model, variants, progress=lambda n: err.print(f"  scored {n}", highlight=False))
    except (ValueError, FileNotFoundError, KeyError) as e:
        err.print(f"[red]{set_dir}: {e}[/red]", highlight=False)
        return 2
    except AlphacutError as e:  # model not installed, unreadable image, ...
        err.print(f"[red]{e}[/red]", highlight=False)
        return 1
    rows = aggregate(results, reference)
    print_tables(rows, console, results)
    if json_out is not None:
        per_image = [
            {"variant": r.variant, "name": r.item.name, "kind": r.item.kind, "category": r.item.category,
             **r.metrics, "infer_s": r.infer_s, "refine_s": r.refine_s, "megapixels": r.megapixels}
            for r in results
        ]
        Path(json_out).write_text(json.dumps({"summary": rows, "images": per_image}, indent=1))
    return 0
