"""The quality harness on a tiny set the tests make (expected metrics computed by hand), and
on the shared dev set when it is present (skipped cleanly otherwise)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alphacut import evaluate as ev
from alphacut.models.catalog import CATALOG

DEV = Path(__file__).resolve().parents[1] / ".." / "shared" / "eval" / "dev"


def make_set(root: Path) -> Path:
    """Three 40x30 images: GT left half foreground (one soft-matte, two binary masks)."""
    (root / "images").mkdir(parents=True)
    (root / "gt").mkdir()
    manifest = []
    for name, kind, cat in [("a1", "alpha", "object"), ("m1", "mask", "person"), ("m2", "mask", "animal")]:
        rgb = np.zeros((30, 40, 3), np.uint8)
        rgb[:, :20] = (200, 40, 40)
        rgb[:, 20:] = (30, 30, 200)
        Image.fromarray(rgb).save(root / "images" / f"{name}.png")
        gt = np.zeros((30, 40), np.uint8)
        gt[:, :20] = 255
        Image.fromarray(gt).save(root / "gt" / f"{name}.png")
        manifest.append({"name": name, "kind": kind, "category": cat,
                         "image_file": f"images/{name}.png", "gt_file": f"gt/{name}.png"})
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


class ConstantOutputs:
    """Stands in for the model: every raw output is a constant 1024x1024 map."""

    def __init__(self, value: float):
        self.spec = CATALOG["isnet"]
        self.value = value
        self.calls: list[str] = []

    def get(self, item, rgba, prep):  # experiments' model inputs
        self.calls.append(prep)
        return np.full((1024, 1024), self.value, np.float32), 0.25

    def cached(self, tensor, quality, compute):  # the shipped path's model runs
        runs = ["pipeline", "flip"] if quality == "best" else ["pipeline"]
        self.calls += runs
        return [np.full((1, 1, 1024, 1024), self.value, np.float32) for _ in runs], 0.25


def test_score_by_hand():
    gt = np.zeros((10, 10), np.float32)
    gt[:, :5] = 1
    s = ev.score(np.full((10, 10), 0.5, np.float32), gt, "mask")
    assert s["mae"] == pytest.approx(0.5) and s["mse"] == pytest.approx(0.25)
    assert s["sad"] == pytest.approx(50 * 0.5 * 2 / 1000)  # 100 px × 0.5, in thousands
    # Predicted all foreground at 0.5: IoU = 50/100, precision 0.5, recall 1.
    assert s["iou"] == pytest.approx(0.5)
    assert s["fbeta"] == pytest.approx(1.3 * 0.5 / (0.3 * 0.5 + 1))
    perfect = ev.score(gt, gt, "alpha")
    assert perfect["mae"] == 0 and perfect["iou"] == 1 and perfect["fbeta"] == pytest.approx(1)
    empty = ev.score(np.zeros_like(gt), np.zeros_like(gt), "mask")
    assert empty["iou"] == 1.0 and empty["mae"] == 0
    with pytest.raises(ValueError):
        ev.score(np.zeros((3, 3)), np.zeros((3, 4)), "mask")


def test_harness_on_tiny_set(tmp_path):
    set_dir = make_set(tmp_path / "set")
    outs = ConstantOutputs(0.5)
    results = ev.evaluate(set_dir, variants=["baseline", "float", "cwgf"], outputs=outs)
    assert len(results) == 9 and set(outs.calls) == {"browser", "pipeline"}
    rows = {(r["group"], r["variant"]): r for r in ev.aggregate(results)}
    assert {g for g, _ in rows} == {"overall", "alpha", "alpha/object", "mask", "mask/animal", "mask/person"}
    f = rows["overall", "float"]
    # A constant 0.5 against a half-foreground GT: MAE 0.5, everything predicted foreground.
    assert f["n"] == 3 and f["mae"] == pytest.approx(0.5, abs=1e-6) and f["iou"] == pytest.approx(0.5)
    assert rows["alpha", "float"]["sad"] == pytest.approx(1200 * 0.5 / 1000, abs=1e-5)
    # Baseline truncates 0.5·255 to 127: 127/255 < 0.5, so nothing is foreground.
    b = rows["mask", "baseline"]
    assert b["iou"] == 0.0 and b["mae"] == pytest.approx(0.5, abs=1e-6)
    assert f["infer_s"] == pytest.approx(0.25) and rows["overall", "cwgf"]["refine_s"] > 0
    # A flat 0.5 in a two-colour photo is no evidence for either side: no change of IoU.
    assert rows["overall", "cwgf"]["iou"] == pytest.approx(0.5)


def test_best_averages_a_mirrored_run(tmp_path):
    set_dir = make_set(tmp_path / "set")
    outs = ConstantOutputs(0.9)
    ev.evaluate(set_dir, variants=["best"], outputs=outs)
    assert outs.calls.count("pipeline") == 3 and outs.calls.count("flip") == 3


def test_unknown_variant(tmp_path):
    with pytest.raises(ValueError, match="unknown variant"):
        ev.evaluate(make_set(tmp_path / "s"), variants=["nope"], outputs=ConstantOutputs(0.5))


def test_main_tables_json_and_exit_codes(tmp_path, monkeypatch, capsys):
    set_dir = make_set(tmp_path / "set")
    monkeypatch.setattr(ev, "Outputs", lambda model="isnet": ConstantOutputs(0.75))
    out = tmp_path / "r.json"
    assert ev.main(set_dir, variants=["baseline", "float"], json_out=out) == 0
    text = capsys.readouterr().out
    assert "overall" in text and "mask/person" in text and "baseline" in text
    data = json.loads(out.read_text())
    assert len(data["images"]) == 6 and data["summary"][0]["group"] == "overall"
    assert ev.main(tmp_path / "missing") == 2
    assert ev.main(set_dir, variants=["nope"]) == 2
    md = ev.markdown_table(data["summary"])
    assert md.count("\n") == len(data["summary"]) + 1


def test_browser_resize_matches_reference_formula():
    src = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    out = ev.browser_resize(src, 8, 6)
    # x = 3 → srcX = 1.5: halfway between columns 1 and 2 (top-left aligned sampling).
    assert out[0, 3] == round((src[0, 1] + src[0, 2]) / 2)
    assert out[0, 0] == src[0, 0] and out[-1, -1] == src[-1, -1]


def test_outputs_cache_roundtrip(tmp_path, monkeypatch):
    """The disk cache is keyed by image hash, model and preprocessing; a hit skips the model."""
    o = ev.Outputs.__new__(ev.Outputs)
    o.model, o.key, o.spec, o.cache = "isnet", "isnet", CATALOG["isnet"], tmp_path / "c"

    class Sess:
        n = 0

        def run(self, t):
            Sess.n += 1
            assert t.shape == (1, 3, 1024, 1024)
            return np.ones((1, 1, 1024, 1024), np.float32) * 0.25

    o._session = Sess()
    item = ev.Item("x", "mask", "c", Path("x"), Path("y"), "ab" * 32)
    rgba = np.zeros((20, 30, 4), np.uint8)
    r1, _ = o.get(item, rgba, "flip")
    r2, t2 = o.get(item, rgba, "flip")
    assert Sess.n == 1 and r1.shape == (1024, 1024) and np.array_equal(r1, r2) and t2 >= 0


@pytest.mark.model
def test_dev_set_two_images(tmp_path):
    """Real model on the two smallest dev images (cached runs are fast)."""
    if not (DEV / "manifest.json").is_file():
        pytest.skip(f"dev evaluation set not present at {DEV}")
    from alphacut.models import store

    try:
        store.resolve(None)  # the default model
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"IS-Net not installed: {e}")
    items = json.loads((DEV / "manifest.json").read_text())
    small = sorted(items, key=lambda e: e["width"] * e["height"])[:2]
    sub = tmp_path / "sub"
    sub.mkdir()
    for e in small:
        e["image_file"] = str((DEV / e["image_file"]).resolve())
        e["gt_file"] = str((DEV / e["gt_file"]).resolve())
    (sub / "manifest.json").write_text(json.dumps(small))
    rows = ev.aggregate(ev.evaluate(sub, variants=["baseline", "float", "cwgf"]))
    overall = {r["variant"]: r for r in rows if r["group"] == "overall"}
    for v in overall.values():
        assert 0 <= v["mae"] < 0.2 and 0.5 < v["iou"] <= 1


def test_paired_counts_against_baseline(tmp_path):
    set_dir = make_set(tmp_path / "set")
    rows = ev.aggregate(ev.evaluate(set_dir, variants=["baseline", "float"], outputs=ConstantOutputs(0.5)))
    f = next(r for r in rows if r["group"] == "overall" and r["variant"] == "float")
    # float (0.5: everything foreground, IoU 0.5) beats baseline (127/255: nothing, IoU 0) on
    # IoU on all three images; both have MAE 0.5 on a half-foreground GT, so neither wins MAE.
    assert f["paired"] == 3 and f["better_iou"] == 3 and f["better_mae"] == 0
    assert "paired" not in next(r for r in rows if r["variant"] == "baseline")


def test_fuse_runs():
    a = np.array([[0.9, 0.5]], np.float32)
    b = np.array([[0.3, 0.5]], np.float32)
    assert np.allclose(ev.fuse_runs([a, b]), [[0.6, 0.5]])
    c = ev.fuse_runs([a, b], "conf")
    # 0.9 (confidence 0.8) outweighs 0.3 (confidence 0.4): (0.72 + 0.12) / 1.2 = 0.7.
    assert c[0, 0] == pytest.approx((0.9 * 0.801 + 0.3 * 0.401) / 1.202, abs=1e-6) and c[0, 1] == 0.5
    assert c.dtype == np.float32


def test_outputs_cache_key_of_a_model_file_is_its_hash_not_its_path(tmp_path):
    """A user's .onnx file is cached under its content hash: no path in a file name, and a
    changed file is never served another file's outputs."""
    m = tmp_path / "sub" / "mine.onnx"
    m.parent.mkdir()
    m.write_bytes(b"not really a model, but hashed all the same")
    o = ev.Outputs(str(m), cache=tmp_path / "c")
    assert o.key.startswith("file-") and "/" not in o.key and len(o.key) == 21
    m.write_bytes(b"another model")
    assert ev.Outputs(str(m), cache=tmp_path / "c").key != o.key


def test_edge_sad_counts_only_near_soft_ground_truth():
    gt = np.zeros((60, 60), np.float32)
    gt[:, :30] = 1
    gt[:, 30] = 0.5  # one soft column
    alpha = gt.copy()
    alpha[:, 45] += 0.5  # 15 px from the soft column: outside the edge zone
    alpha[:, 35] += 0.25  # 5 px away: inside
    s = ev.score(alpha, gt, "alpha")
    assert s["sad"] == pytest.approx(60 * 0.75 / 1000) and s["edge"] == pytest.approx(60 * 0.25 / 1000)
    assert "edge" not in ev.score(alpha, gt, "mask")
    assert ev.score(alpha, (gt > 0.6).astype(np.float32), "alpha")["edge"] == 0  # no soft pixel


def test_paired_interval():
    mean, lo, hi = ev.paired_interval([0.1] * 10)
    assert mean == pytest.approx(0.1) and lo == pytest.approx(0.1) and hi == pytest.approx(0.1)
    mean, lo, hi = ev.paired_interval([-1.0, 1.0] * 20)
    assert mean == 0 and lo < 0 < hi and hi - lo < 1
    assert ev.paired_interval([1.0, 2.0, 3.0]) == ev.paired_interval([1.0, 2.0, 3.0])  # reproducible


def test_settle_variants_pair_and_report(tmp_path):
    """settle and best run the settle stage; every variant is paired with the reference with
    an interval; edge SAD and the whole time per megapixel are in the rows."""
    set_dir = make_set(tmp_path / "set")
    results = ev.evaluate(set_dir, variants=["cwgf", "settle", "best-plain", "best"], outputs=ConstantOutputs(0.5))
    rows = ev.aggregate(results, "cwgf")
    r = next(r for r in rows if r["group"] == "alpha" and r["variant"] == "settle")
    assert r["reference"] == "cwgf" and set(r["d_sad"]) and len(r["d_sad"]) == 3 and "edge" in r
    # A flat 0.5 has no confident subject: nothing to settle, so settle equals cwgf.
    assert r["d_sad"] == (0.0, 0.0, 0.0) and r["total_s_per_mp"] > 0
    assert not any("reference" in r for r in rows if r["variant"] == "cwgf")
    md = ev.paired_markdown(rows)
    assert "| alpha | best | cwgf | SAD |" in md
