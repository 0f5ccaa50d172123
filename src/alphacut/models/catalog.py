"""The model catalog: what each model is, where its bytes come from, and how to feed and read it.

A ``ModelSpec`` holds everything the pipeline needs to know about a model so that no stage
hard-codes a particular network: input size, channel normalisation (in 0..255 pixel units),
which output to read and how to turn it into a 0..1 mask, plus provenance and licence.
User-supplied ONNX files get a spec from a small JSON file (see ``spec_from_file``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from alphacut.errors import ModelError

IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)

#: npm package (pinned in package.json) that ships the embedded IS-Net weights as chunks.
IMGLY_DATA_PACKAGE = "@imgly/background-removal-data"
IMGLY_DATA_VERSION = "1.4.5"

#: Where img.ly's own library loads the data package's ``dist/`` files by default (its
#: ``publicPath`` in @imgly/background-removal 1.4.5); each file there is named by its SHA-256.
IMGLY_CDN = f"https://staticimgly.com/{IMGLY_DATA_PACKAGE}/{IMGLY_DATA_VERSION}/dist/"

#: The chunks of each IS-Net resource in that ``dist/`` (``resources.json``), pinned here so a
#: download is checked against this file, not against anything the server says: (SHA-256, size).
IMGLY_CHUNKS: dict[str, tuple[tuple[str, int], ...]] = {
    "/models/medium": (
        ("fe1b9f06af9d2147016884f4eb683d4dc540244a7453c3b742ae527725df2eec", 4_194_304),
        ("724543b36c7b5eddfbd7f55cb5a7c1676b2089c277611850c257efa42212d8a2", 4_194_304),
        ("f9290547b2e34555536647c1e2ca456348170eef1aee05d8fd522f5a051f260c", 4_194_304),
        ("897d4d8a3f9f8c07f439300a5d81c8be4b0fcecf19ca6d77929b1750fedd8306", 4_194_304),
        ("cbcda0a0c830ba51928e7935d9d3cfe1c4dc258bf117f2c76d047113ab8f9f8c", 4_194_304),
        ("4c44c8b64af9f044623ceace7cc55e0bc348394f7ff63629d46118c0a03c9c54", 4_194_304),
        ("8b2e3d773d7084c5cfac1c04d69d3586e4b8914a840d2b582dfde4940d698957", 4_194_304),
        ("024e3d8beaf517d25496b73e36b0e0498110652753273e0dd8b591ad7c1c9e2f", 4_194_304),
        ("1b8eaad4cd019b76e7eba964a38711a0bdeafbd10b6208c1107403a64dbd902a", 4_194_304),
        ("0c8c5c24237304482ccc70a50008b73c8ef53e4656068da32b635607cca0c8c9", 4_194_304),
        ("a5b8c519c832bc46b2ae5a9887fac1e3d5cc76a04846d8c3544875c7f2b40960", 4_194_304),
        ("7b1dd767c5c1c0156b8d13bb34d4c1d11e014723b10cddc25c93e89a28e7cd96", 4_194_304),
        ("3f5638267419916c9d4d906ff25f721d3d2e034851ea01566f0d2d6f943550b8", 4_194_304),
        ("9927e74b3a0638d4cf5701e78e66d77476a4ba68c75831f1c8ea9117ec7f8809", 4_194_304),
        ("3315eb3c14ca3ff5c03c80fac58f486a14264dd0bb9c168c096f2bd2531ba438", 4_194_304),
        ("230f667e0332dc09ef08aacbf1992c40ce112192f95dfc14231a3ef515f9a2c7", 4_194_304),
        ("e01a157b677e0e17815cd738dcda7e6daa268898d006b52b5d3604c439e6c96e", 4_194_304),
        ("529f1df7d027b0315090ba15d42ef32998cac2efd6783c62f6b11cedf4c548f3", 4_194_304),
        ("6cfd013f552a05e9fc81156e6d6de593668e0247a3970feae22e285c16d13e62", 4_194_304),
        ("3f31511c3c16a29cf81b32379f51ead2bd082677b48b1dcc11a66beeb37cc729", 4_194_304),
        ("01f6efcc8a01c727d99073ceede8e64c654fa3c4612b006e69e22dc663236943", 4_194_304),
        ("145d8355f50b7847de5d04815124790867fe1752a0013bdf6ce28882b5e0a2fc", 108_095),
    ),
    "/models/small": (
        ("b34a3e9350ad77140964b6a2e1e32cd9738acd9d01e5899b96be71901a22ef47", 4_194_304),
        ("8a85c22e472bed10198298a3d57480a5a90946dba88bddecf8b0bf0eafc06e70", 4_194_304),
        ("5faec25d2338ae8ca2c7bff72e954cebd40a04c5f34c4b6bb8ca6720fae40996", 4_194_304),
        ("b9861d932a549be455fc8ebd8ce5d413049515bfdd3edd55e136dbe05dd34ef5", 4_194_304),
        ("f070b4c4f512cfe8dd6936c3cb9a616f132894867d3d33304d83599eb6b55636", 4_194_304),
        ("10d02652d10fbc47bf93732ff9e8ad53eefbd3bd89ab3c1fbc15ddd740bea672", 4_194_304),
        ("014c9e0229363137e92b85ed3c6f56b1386c279cdd9af2d7f1960ed8428b5e94", 4_194_304),
        ("34dd3ad760f7e31b5e9144b8c387b8ecd6dc43116248c93c56dd7051ab525e3b", 4_194_304),
        ("e7ca5cc3e0afd65581642a05ac91eb8ea4d0deb868df94b8981c910212526476", 4_194_304),
        ("0ad4ebb86cfdd847901427181b7a7804dba93d868c3cd5f11a294acf36c9413f", 4_194_304),
        ("9582c0375aed822c5577a814766c4afc6c096f4ccd3b0d08af6a1794987206a1", 2_399_396),
    ),
}


@dataclass(frozen=True)
class ModelFile:
    """One file of a model: its name in the store, size, SHA-256, and where it comes from.

    ``source`` is either ``npm:<resource key>`` (a resource of the data package: its chunks,
    pinned in ``IMGLY_CHUNKS``, read from a local copy of the package or downloaded from
    ``IMGLY_CDN``) or an ``https://`` URL.
    ``derive`` names a deterministic conversion applied to the source before the SHA-256 check
    (``"fp32"``: the fp16 graph widened to float32 by ``alphacut.models.widen``, keeping only the
    output the spec reads).
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
    embedded: bool = False  # chunks of the data package: from a local copy, or its CDN
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def main_file(self) -> ModelFile:
        return self.files[0]


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
               "isnet-fp32.onnx", 176_115_383,
               "6f36f2bb34269266caaea5e298dae41ce07c736b2dfb7e1128196978454d349b", "medium",
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
