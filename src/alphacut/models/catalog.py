"""The model catalog: what each model is, where its bytes come from, and how to feed and read it.

A ``ModelSpec`` holds everything the pipeline needs to know about a model so that no stage
hard-codes a particular network: input size, channel normalisation (in 0..255 pixel units),
which output to read and how to turn it into a 0..1 mask, plus provenance and licence.
User-supplied ONNX files get a spec from a small JSON file (see ``spec_from_file``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from alphacut.errors import ModelError

IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)

#: npm package (pinned in package.json) that ships the embedded IS-Net weights as chunks.
IMGLY_DATA_PACKAGE = "@imgly/background-removal-data"
IMGLY_DATA_VERSION = "1.4.5"


@dataclass(frozen=True)
class ModelFile:
    """One file of a model: its name in the store, size, SHA-256, and where it comes from.

    ``source`` is either ``npm:<resource key>`` (a key of the data package's
    ``dist/resources.json``, assembled from content-addressed chunks) or an ``https://`` URL.
    ``derive`` names a deterministic conversion applied to the source before the SHA-256 check
    (``"fp32"``: the fp16 graph widened to float32 by ``alphacut.models.widen``).
    """

    name: str
    size: int | None
    sha256: str | None
    source: str
    derive: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    id: str
    title: str
    files: tuple[ModelFile, ...]
    input_size: tuple[int, int]  # (width, height) the network takes
    mean: tuple[float, float, float]  # per channel, in 0..255 pixel units
    std: tuple[float, float, float]
    output: str | int = 0  # output name or index to read
    activation: str = "none"  # "none" (already 0..1) or "sigmoid"
    normalize: str = "clip"  # "clip" to 0..1, or "minmax" (guarded against empty images)
    licence: str = ""
    origin: str = ""
    gated: bool = False  # the user must supply the file or a token
    embedded: bool = False  # installed offline from a package, no network needed
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def main_file(self) -> ModelFile:
        return self.files[0]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["files"] = [asdict(f) for f in self.files]
        return d


_ISNET_NOTE = (
    "IS-Net (Qin et al., DIS, ECCV 2022) as packaged by IMG.LY. The data package is AGPL-3.0; "
    "its third-party list names IS-Net itself MIT."
)

def _isnet(model_id: str, title: str, name: str, size: int, sha256: str, variant: str, note: str = "",
           derive: str | None = None) -> ModelSpec:
    """An IS-Net build from the npm data package (``/models/<variant>``): same I/O, other weights."""
    return ModelSpec(
        id=model_id,
        title=title,
        files=(ModelFile(name, size, sha256, f"npm:/models/{variant}", derive),),
        input_size=(1024, 1024),
        mean=(128.0, 128.0, 128.0),
        std=(256.0, 256.0, 256.0),
        output="output",
        activation="none",
        normalize="clip",
        licence="AGPL-3.0 (package @imgly/background-removal-data); IS-Net weights MIT",
        origin=f"npm {IMGLY_DATA_PACKAGE}@{IMGLY_DATA_VERSION} /models/{variant}",
        embedded=True,
        notes=_ISNET_NOTE + note,
    )


CATALOG: dict[str, ModelSpec] = {
    spec.id: spec
    for spec in [
        _isnet("isnet-fp32", "IS-Net general-use (float32: the fp16 weights widened at install)",
               "isnet-fp32.onnx", 176_174_277,
               "7c31b8ee5933fa5fb48ed1a21f39125ef321afa83fab93d2761177293d313cbe", "medium",
               " Same weights and masks as `isnet` (max difference 4e-5), but ONNX Runtime's CPU and"
               " WASM backends run it without per-node fp16 casts: faster on CPUs, the default.",
               derive="fp32"),
        _isnet("isnet", "IS-Net general-use (fp16 weights, float32 I/O)", "isnet-fp16.onnx", 88_188_479,
               "b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb", "medium",
               " Half the download of isnet-fp32; computes in fp16 where the backend can (WebGPU"
               " with shader-f16)."),
        _isnet("isnet-quint8", "IS-Net general-use (dynamically quantised, uint8)", "isnet-quint8.onnx", 44_342_436,
               "7001d60734fdc112dd9c062635fb59cd401fb82a9d4213134bce4dbd655c803a", "small",
               " Half the size, but slower than fp16 on CPUs without VNNI."),
        ModelSpec(
            id="rmbg-1.4",
            title="BRIA RMBG-1.4 (IS-Net architecture, fp32)",
            files=(
                ModelFile(
                    "rmbg-1.4.onnx",
                    176_153_355,
                    "8cafcf770b06757c4eaced21b1a88e57fd2b66de01b8045f35f01535ba742e0f",
                    "https://huggingface.co/briaai/RMBG-1.4/resolve/main/onnx/model.onnx",
                ),
            ),
            input_size=(1024, 1024),
            # Reference code: x / 255, then normalize(mean 0.5, std 1.0).
            mean=(127.5, 127.5, 127.5),
            std=(255.0, 255.0, 255.0),
            output=0,
            activation="none",  # the network ends in a sigmoid
            normalize="minmax",  # as BRIA's reference postprocess_image does
            licence="bria-rmbg-1.4 (non-commercial)",
            origin="Hugging Face briaai/RMBG-1.4 onnx/model.onnx",
            notes=(
                "Non-commercial use only; commercial use needs an agreement with BRIA. "
                "Size and SHA-256 are those of the LFS object behind onnx/model.onnx "
                "(revision 2ceba5a5efaec153162aedea169f76caf9b46cf8)."
            ),
        ),
        ModelSpec(
            id="rmbg-2.0",
            title="BRIA RMBG-2.0 (BiRefNet architecture, fp32)",
            files=(
                ModelFile(
                    "rmbg-2.0.onnx",
                    1_024_331_469,
                    "5b486f08200f513f460da46dd701db5fbb47d79b4be4b708a19444bcd4e79958",
                    "https://huggingface.co/briaai/RMBG-2.0/resolve/main/onnx/model.onnx",
                ),
            ),
            input_size=(1024, 1024),
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            output=-1,  # the final prediction; the eval-mode export has a single output
            activation="none",
            normalize="clip",
            licence="CC BY-NC 4.0 (BRIA RMBG-2.0, non-commercial)",
            origin="Hugging Face briaai/RMBG-2.0 onnx/model.onnx (gated)",
            gated=True,
            notes=(
                "Gated: accept the licence on the hub page and pass --token / HF_TOKEN, or "
                "install a downloaded copy with --file. The same bytes (same SHA-256) are "
                "rembg's bria-rmbg-2.0.onnx. Output: the PyTorch reference applies "
                ".sigmoid() to the last prediction, but this ONNX export already outputs "
                "0..1 probabilities: rembg reads it without a sigmoid (it adds one for the "
                "BiRefNet exports, which emit logits), so activation is 'none'. Not checked "
                "against the graph here; if masks come out as logits, set activation to "
                "'sigmoid'."
            ),
        ),
        ModelSpec(
            id="birefnet-lite",
            title="BiRefNet general, lite (Swin-T backbone)",
            files=(
                ModelFile(
                    "birefnet-lite.onnx",
                    224_005_088,
                    "5600024376f572a557870a5eb0afb1e5961636bef4e1e22132025467d0f03333",
                    "https://github.com/danielgatis/rembg/releases/download/v0.0.0/"
                    "BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx",
                ),
            ),
            input_size=(1024, 1024),
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            output=0,
            activation="sigmoid",  # the export emits logits
            normalize="clip",
            licence="MIT (BiRefNet, Zheng et al.)",
            origin="rembg release v0.0.0 BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx",
            notes=(
                "BiRefNet (Zheng et al., CAAI AIR 2024), general-use weights with the Swin-T "
                "backbone, as exported by its authors and mirrored in rembg's model release."
            ),
        ),
    ]
}

DEFAULT_MODEL = "isnet-fp32"


def get_spec(model_id: str) -> ModelSpec:
    try:
        return CATALOG[model_id]
    except KeyError:
        known = ", ".join(sorted(CATALOG))
        raise ModelError(
            f"unknown model {model_id!r}; known models: {known} (or give a path to an .onnx file)"
        ) from None


def spec_from_file(onnx_path: Path) -> ModelSpec:
    """Spec for a user-supplied ONNX file, read from ``<file>.json`` beside it if present.

    The JSON may set ``input_size`` [w, h], ``mean``, ``std`` (0..255 units), ``output``,
    ``activation`` and ``normalize``; anything missing takes IS-Net's values.
    """
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise ModelError(f"{onnx_path}: model file not found")
    side = onnx_path.with_suffix(onnx_path.suffix + ".json")
    if not side.exists():
        side = onnx_path.with_suffix(".json")
    cfg: dict = {}
    if side.exists():
        try:
            cfg = json.loads(side.read_text())
        except (OSError, ValueError) as e:
            raise ModelError(f"{side}: cannot read model spec: {e}") from None
    allowed = {"input_size", "mean", "std", "output", "activation", "normalize", "title", "licence"}
    unknown = set(cfg) - allowed
    if unknown:
        raise ModelError(f"{side}: unknown keys in model spec: {', '.join(sorted(unknown))}")
    base = CATALOG["isnet"]
    spec = ModelSpec(
        id=f"file:{onnx_path}",
        title=cfg.get("title", onnx_path.name),
        files=(ModelFile(onnx_path.name, onnx_path.stat().st_size, None, str(onnx_path)),),
        input_size=tuple(cfg.get("input_size", base.input_size)),
        mean=tuple(cfg.get("mean", base.mean)),
        std=tuple(cfg.get("std", base.std)),
        output=cfg.get("output", 0),
        activation=cfg.get("activation", "none"),
        normalize=cfg.get("normalize", "clip"),
        licence=cfg.get("licence", "as supplied by the user"),
        origin=str(onnx_path),
    )
    if spec.activation not in ("none", "sigmoid") or spec.normalize not in ("clip", "minmax"):
        raise ModelError(f"{side}: activation must be none|sigmoid, normalize clip|minmax")
    if len(spec.input_size) != 2 or len(spec.mean) != 3 or len(spec.std) != 3:
        raise ModelError(f"{side}: input_size needs 2 numbers, mean and std 3 each")
    return spec
