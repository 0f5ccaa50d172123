"""The pipeline, stage by stage: decode → preprocess → infer → mask (→ settle) → refine →
compose, then encode → verify → write when a result is saved.

``Remover`` holds one model session for many images (a batch, the HTTP API, a script);
``remove()`` is the one-call convenience on top of a cached ``Remover``. A ``CutOut`` keeps
the float mask and the straight-alpha RGBA pixels, and turns them into verified bytes or an
atomically written file in any supported format.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from alphacut import formats
from alphacut.errors import OutputError
from alphacut.models import store
from alphacut.models.catalog import ModelSpec
from alphacut.options import Options
from alphacut.stages import background as background_stage
from alphacut.stages import compose, encode, foreground, infer, mask, output, preprocess, settle, verify
from alphacut.stages import refine as refine_stage
from alphacut.stages import settle as settle_stage
from alphacut.stages.decode import DecodedImage, decode, decode_rgb_for_model

Source = str | os.PathLike | bytes | Image.Image


@dataclass
class CutOut:
    """A finished cut-out: float mask, straight-alpha RGBA, and how long each stage took."""

    mask: np.ndarray | None  # (H, W) float32 in [0, 1]: the refined mask before input alpha (None once a batch freed it)
    rgba: np.ndarray  # (H, W, 4) uint8: original RGB, alpha = round(input alpha × mask)
    icc_profile: bytes | None = None
    name: str = "image"
    notice: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    #: Share of the photo still a large uncertain (half-transparent) region after the settle
    #: stage, and its bounds as fractions (x0, y0, x1, y1); 0 and None when settle is off.
    uncertain: float = 0.0
    uncertain_box: tuple[float, float, float, float] | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.rgba.shape[1], self.rgba.shape[0]

    @property
    def alpha(self) -> np.ndarray:
        return self.rgba[..., 3]

    def to_pil(self) -> Image.Image:
        return Image.fromarray(self.rgba, "RGBA")

    def pixels(
        self,
        *,
        mask_only: bool = False,
        background: tuple[int, int, int] | background_stage.Background | None = None,
        crop: str | int | None = None,
        aspect: tuple[int, int] | None = None,
        shadow: bool = False,
    ) -> np.ndarray:
        """The array that will be encoded for the chosen output kind (rules 5, 6, 11)."""
        if mask_only:
            if crop is not None:
                x0, y0, x1, y1 = background_stage.crop_box(self.alpha, crop, aspect)
                return np.ascontiguousarray(self.alpha[y0:y1, x0:x1])
            return self.alpha
        if isinstance(background, tuple) and crop is None and not shadow:
            return compose.flatten(self.rgba, background)
        if background is None and crop is None and not shadow:
            return self.rgba
        if isinstance(background, tuple):
            background = background_stage.Background("color", color=background)
        return background_stage.compose_file(self.rgba, background, shadow=shadow, crop=crop, aspect=aspect)

    def encode(
        self,
        format: str = "png",
        *,
        mask_only: bool = False,
        background: tuple[int, int, int] | str | background_stage.Background | None = None,
        quality: int | None = None,
        crop: str | int | None = None,
        aspect: tuple[int, int] | None = None,
        shadow: bool = False,
        options: Options | None = None,
    ) -> bytes:
        """Encoded bytes, already decoded again and checked against the intended pixels.
        ``background``: a colour, ``"blur"``/``"blur:R"``, an image path (rule 11);
        ``crop``: a padding (``10`` pixels or ``"5%"``) to crop to the subject with;
        ``options`` (an ``Options``) gives all of the output options at once."""
        if options is not None:
            format, kw = _output_keywords(options, format)
            return self.encode(format, **kw)
        data, check = self._encode(format, mask_only=mask_only, background=background, quality=quality,
                                   crop=crop, aspect=aspect, shadow=shadow)
        check()
        return data

    def _encode(self, format: str, *, mask_only: bool, background, quality: int | None,
                crop=None, aspect=None, shadow: bool = False):
        """(bytes, a function that decodes them again and raises if they are not what was
        intended); the check is separate so ``save`` can write while it runs."""
        if isinstance(background, str):
            background = background_stage.parse_background(background)
            if background.kind == "color":
                background = background.color
        format = encode.check_output(format, background=background, mask_only=mask_only)
        t = time.perf_counter()
        px = self.pixels(mask_only=mask_only, background=background, crop=crop, aspect=aspect, shadow=shadow)
        if not formats.get(format).alpha and px.ndim == 3 and px.shape[2] == 4:
            px = np.ascontiguousarray(px[..., :3])  # a composed file is opaque: its RGB is the file
        jpeg = format == "jpeg"
        icc = None if mask_only or jpeg else self.icc_profile
        data = encode.encode(px, format, icc_profile=icc, quality=quality, label=self.name)
        self.timings["encode"] = time.perf_counter() - t
        spec = formats.get(format)
        lossless = spec.lossless and (not spec.lossy_quality or quality is None or quality >= 100)
        tolerance = encode.JPEG_MAE if jpeg else None

        def check() -> None:
            t = time.perf_counter()
            verify.verify(data, px, lossless=lossless, label=self.name, quality=100 if quality is None else quality,
                          tolerance=tolerance)
            self.timings["verify"] = time.perf_counter() - t

        return data, check

    def save(
        self,
        path: str | os.PathLike,
        format: str | None = None,
        *,
        overwrite: bool = False,
        protect: Path | None = None,
        mask_only: bool = False,
        background: tuple[int, int, int] | str | background_stage.Background | None = None,
        quality: int | None = None,
        crop: str | int | None = None,
        aspect: tuple[int, int] | None = None,
        shadow: bool = False,
        options: Options | None = None,
    ) -> Path:
        """Encode, verify, and write atomically, in the format the path's extension names
        (``encode.format_for_path``: another extension, or a ``format`` it contradicts, is
        a ``UsageError``).

        The bytes go to a temporary file beside the target while the check runs (writing
        waits on the disk, the check on the CPU); the file is renamed into place only once
        the check passed, and removed if it failed."""
        if options is not None:
            format, kw = _output_keywords(options, format)
            return self.save(path, format, overwrite=overwrite, protect=protect, **kw)
        path = Path(path)
        if isinstance(background, str):
            background = background_stage.parse_background(background)
            if background.kind == "color":
                background = background.color
        fmt = encode.format_for_path(path, format, background=background, mask_only=mask_only)
        if path.exists() and not overwrite:
            raise OutputError(f"{path}: exists (use --overwrite to replace it, or --skip-existing)")
        data, check = self._encode(fmt, mask_only=mask_only, background=background, quality=quality,
                                   crop=crop, aspect=aspect, shadow=shadow)
        t = time.perf_counter()
        with ThreadPoolExecutor(1, thread_name_prefix="alphacut-write") as pool:
            pending = pool.submit(output.stage, path, data, overwrite=overwrite, protect=protect)
            try:
                check()
            except BaseException:
                with contextlib.suppress(Exception):
                    pending.result().discard()
                raise
            staged = pending.result()
        staged.commit()
        self.timings["write"] = time.perf_counter() - t - self.timings["verify"]  # beyond the check
        return path


def _output_keywords(options: Options, format: str | None) -> tuple[str | None, dict]:
    """``CutOut.encode``/``save`` keywords from an ``Options`` (its format wins when set)."""
    kw = {"mask_only": options.mask_only, "background": options.background, "quality": options.avif_quality,
          "crop": options.padding if options.crop else None, "aspect": options.aspect, "shadow": options.shadow}
    return options.format or format, kw


#: Above this many pixels a batch decodes the photo twice rather than hold it during inference.
LOW_MEMORY_PIXELS = 16_000_000


@dataclass
class Prepared:
    """An image between stages: its model input, and its pixels unless they were dropped."""

    source: Source
    name: str
    tensor: np.ndarray | None
    size: tuple[int, int]
    image: DecodedImage | None
    timings: dict[str, float]
    guide: np.ndarray | None = None  # the settle stage's colour guide, kept when the tensor goes


class Remover:
    """Holds one model session and cuts out any number of images with it.

    ``remove`` is the one path every entry point takes (the CLI's batches, ``alphacut.remove``,
    the HTTP API, the Ray actors, the quality harness's shipped variants): ``prepare`` (decode,
    model input), ``infer``, ``finish`` (mask, settle, upscale, refine, compose). A batch calls
    the three steps itself so that they overlap; the bytes are the same.
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        refine: str | None = None,
        threshold: float | None = None,
        max_pixels: int | None = None,
        quality: str = "default",
        decontaminate: bool = False,
        settle: bool = True,
        device: str = infer.DEFAULT_DEVICE,
        options: Options | None = None,
    ):
        """``options`` (an ``Options``) replaces the keywords refine, threshold, quality,
        decontaminate and settle; either way ``Options`` checks them before any work. The
        model, the device and the pixel limit belong to the Remover (its session)."""
        if options is None:
            options = Options(refine=refine, threshold=threshold, quality=quality, decontaminate=decontaminate,
                              settle=settle)
        self.requested_device = infer.check_device(device)
        self.spec: ModelSpec
        self.spec, self.model_path = store.resolve(model)
        self.max_pixels = max_pixels
        self._session: infer.Session | None = None
        self._use(options)

    def _use(self, options: Options) -> None:
        self.options = options
        self.refine, self.threshold, self.quality = options.refine, options.threshold, options.quality
        self.decontaminate, self.settle = options.decontaminate, options.settle
        if self.settle:
            settle_stage.preload()

    def _with(self, options: Options | None, max_pixels: int | None) -> Remover:
        """This Remover, or a copy sharing its session with other options or pixel limit."""
        if (options is None or options == self.options) and (max_pixels is None or max_pixels == self.max_pixels):
            return self
        r = copy.copy(self)
        r.max_pixels = max_pixels or self.max_pixels
        r._use(options or self.options)
        return r  # shares the session: infer.get_session keeps one per model file per process

    @property
    def session(self) -> infer.Session:
        if self._session is None:
            self._session = infer.get_session(self.model_path, self.spec, device=self.requested_device)
            if self._session.notice:  # the device asked for is not usable: running on the CPU
                warnings.warn(self._session.notice, infer.DeviceFallbackWarning, stacklevel=2)
        return self._session

    @property
    def device(self) -> str:
        """The device inference runs on ("cpu", "cuda", ...; loads the session): the one
        asked for, or the CPU after a fallback (``session.notice`` says why)."""
        return self.session.device

    def decode(self, source: Source, name: str | None = None) -> DecodedImage:
        return decode(source, name=name, max_pixels=self.max_pixels)

    def prepare(self, source: Source, name: str | None = None, *, keep_pixels: bool = True) -> Prepared:
        """Decode and build the model's input tensor.

        A large image (over ``LOW_MEMORY_PIXELS``) given as a path or bytes gets its model
        input from ``decode_rgb_for_model`` (a JPEG from a reduced-scale decode), whether its
        pixels are kept or not, so a batch and a single call give the same mask (other
        formats give the same tensor either way, so with their pixels kept they are decoded
        once). With
        ``keep_pixels=False`` its full-resolution pixels are not decoded until ``finish``
        needs them, so the model's working memory and the photo are never held at once.
        """
        label = name or (str(source) if isinstance(source, (str, os.PathLike)) else "image")
        timings: dict[str, float] = {}
        t = time.perf_counter()
        readable_again = isinstance(source, (str, os.PathLike, bytes))
        if readable_again:
            found = decode_rgb_for_model(
                source, name=label, max_pixels=self.max_pixels, min_pixels=LOW_MEMORY_PIXELS,
                model_size=self.spec.input_size, reduced_only=keep_pixels,  # else one decode serves both
            )
            if found is not None:  # large 8-bit photo: model input straight from Pillow's pixels
                rgb, size = found
                timings["decode"] = time.perf_counter() - t
                t = time.perf_counter()
                tensor = preprocess.to_tensor(preprocess.resize_image(rgb, self.spec.input_size), self.spec)
                timings["preprocess"] = time.perf_counter() - t
                del rgb, found
                image = None
                if keep_pixels:
                    t = time.perf_counter()
                    image = self.decode(source, label)
                    timings["decode"] += time.perf_counter() - t
                    size = image.size
                return Prepared(source, label, tensor, size, image, timings)
        image = self.decode(source, label)
        timings["decode"] = time.perf_counter() - t
        t = time.perf_counter()
        tensor = preprocess.preprocess(image.rgba, self.spec)
        timings["preprocess"] = time.perf_counter() - t
        w, h = image.size
        if not keep_pixels and readable_again and w * h > LOW_MEMORY_PIXELS:
            image = None  # other modes (16-bit, CMYK…): decoded again in ``finish``
        return Prepared(source, label, tensor, (w, h), image, timings)

    def run_model(self, tensor: np.ndarray) -> list[np.ndarray]:
        """Raw model outputs: one, or with quality "best" also the mirrored photo's, un-mirrored."""
        raws = [self.session.run(tensor)]
        if self.quality == "best":
            mirrored = self.session.run(np.ascontiguousarray(tensor[..., ::-1]))
            raws.append(np.ascontiguousarray(mirrored[..., ::-1]))
        return raws

    def infer(self, prepared: Prepared) -> list[np.ndarray]:
        t = time.perf_counter()
        raw = self.run_model(prepared.tensor)
        prepared.timings["infer"] = time.perf_counter() - t
        prepared.guide = self.guide(prepared.tensor, prepared.timings)
        prepared.tensor = None  # not needed any more; frees 12 MB per queued image
        return raw

    def guide(self, tensor: np.ndarray, timings: dict[str, float]) -> np.ndarray | None:
        """The settle stage's colour guide (0.75 MB) from the model input, when settle is on."""
        if not self.settle:
            return None
        t = time.perf_counter()
        g = settle_stage.guide_from_tensor(tensor, self.spec.mean, self.spec.std)
        timings["settle"] = time.perf_counter() - t
        return g

    def finish(self, prepared: Prepared, raw: list[np.ndarray]) -> CutOut:
        """Mask at full resolution, refined, applied to the photo: the cut-out."""
        timings = prepared.timings
        image = prepared.image
        prepared.image = None
        guide, prepared.guide = prepared.guide, None
        if guide is None and prepared.tensor is not None:  # finished with another's inference
            guide = self.guide(prepared.tensor, timings)
        if image is None:
            # Decoding the photo again (one core) needs no mask and the upscale (threads)
            # needs only the size: run them side by side.
            def decode_again() -> DecodedImage:
                t = time.perf_counter()
                img = self.decode(prepared.source, prepared.name)
                timings["decode"] += time.perf_counter() - t
                return img

            small, settled = self.settle_mask(raw, guide, timings)
            with ThreadPoolExecutor(1, thread_name_prefix="alphacut-decode") as pool:
                pending = pool.submit(decode_again)
                full = self.upscale_mask(small, prepared.size, timings)
                image = pending.result()
            if image.size != prepared.size:  # the file changed between the two reads
                full = self.upscale_mask(small, image.size, timings)
        else:
            small, settled = self.settle_mask(raw, guide, timings)
            full = self.upscale_mask(small, image.size, timings)
        m = self.refine_mask(full, image.rgba, timings)
        return self._cutout(m, image, prepared.name, timings, settled)

    def _cutout(self, m: np.ndarray, image: DecodedImage, name: str, timings: dict[str, float],
                settled: settle.Settled | None) -> CutOut:
        cut = CutOut(m, self.compose(image.rgba, m, timings), image.icc_profile, name, image.notice, timings)
        if settled is not None:
            cut.uncertain, cut.uncertain_box = settled.uncertain, settled.box
            note = settled.notice()
            if note:
                cut.notice = f"{cut.notice}; {note}" if cut.notice else f"{name}: {note}"
        return cut

    def compose(self, rgba: np.ndarray, m: np.ndarray, timings: dict[str, float]) -> np.ndarray:
        """Apply the mask (the one quantisation); optionally decontaminate edge colours."""
        t = time.perf_counter()
        out = compose.apply_mask(rgba, m, in_place=True)
        timings["compose"] = time.perf_counter() - t
        if self.decontaminate:
            t = time.perf_counter()
            out[..., :3] = foreground.estimate_foreground(out, out[..., 3])
            timings["decontaminate"] = time.perf_counter() - t
        return out

    def settle_mask(
        self, raws: list[np.ndarray], guide: np.ndarray | None, timings: dict[str, float]
    ) -> tuple[np.ndarray, settle.Settled | None]:
        """The model's output(s) as one float mask on the model's grid, its large half-believed
        regions settled by colour when a guide is given (settle on)."""
        t = time.perf_counter()
        masks = [mask.from_output(r, self.spec) for r in raws]
        small = masks[0] if len(masks) == 1 else np.mean(masks, axis=0, dtype=np.float32)
        timings["upscale"] = time.perf_counter() - t
        if guide is None:
            return small, None
        t = time.perf_counter()
        settled = settle_stage.settle(guide, small)
        timings["settle"] = timings.get("settle", 0.0) + time.perf_counter() - t
        return settled.mask, settled

    def upscale_mask(self, small: np.ndarray, size: tuple[int, int], timings: dict[str, float]) -> np.ndarray:
        """The model-grid mask as a float mask at ``size`` (W, H)."""
        t = time.perf_counter()
        full = mask.upscale(small, size)
        timings["upscale"] = timings.get("upscale", 0.0) + time.perf_counter() - t
        return full

    def refine_mask(self, full: np.ndarray, rgba: np.ndarray, timings: dict[str, float]) -> np.ndarray:
        """Refine (in place: ``full`` is the upscale's own array), then threshold if asked."""
        t = time.perf_counter()
        full = refine_stage.refine(self.refine, rgba, full, in_place=True)
        if self.threshold is not None:
            full = mask.threshold(full, self.threshold)
        timings["refine"] = time.perf_counter() - t
        return full

    def mask_from_output(
        self, raws: list[np.ndarray], rgba: np.ndarray, timings: dict[str, float], guide: np.ndarray | None = None
    ) -> tuple[np.ndarray, settle.Settled | None]:
        small, settled = self.settle_mask(raws, guide, timings)
        full = self.upscale_mask(small, (rgba.shape[1], rgba.shape[0]), timings)
        return self.refine_mask(full, rgba, timings), settled

    def _predict(self, rgba: np.ndarray, timings: dict[str, float]) -> tuple[np.ndarray, settle.Settled | None]:
        t = time.perf_counter()
        tensor = preprocess.preprocess(rgba, self.spec)
        timings["preprocess"] = time.perf_counter() - t
        t = time.perf_counter()
        raws = self.run_model(tensor)
        timings["infer"] = time.perf_counter() - t
        guide = self.guide(tensor, timings)
        del tensor
        return self.mask_from_output(raws, rgba, timings, guide)

    def predict_mask(self, rgba: np.ndarray, timings: dict[str, float] | None = None) -> np.ndarray:
        """Full-resolution float32 mask for straight RGBA pixels (input alpha not applied)."""
        return self._predict(rgba, {} if timings is None else timings)[0]

    def remove(
        self, source: Source, name: str | None = None, *, options: Options | None = None, max_pixels: int | None = None
    ) -> CutOut:
        """Cut out one image (a path, bytes or a PIL image), with this Remover's options or
        the ``options`` given (the mask options; the output options are ``CutOut``'s)."""
        r = self._with(options, max_pixels)
        prepared = r.prepare(source, name)
        return r.finish(prepared, r.infer(prepared))

_removers: dict[tuple, Remover] = {}


def remove(source: Source, model: str | os.PathLike | None = None, **kw) -> CutOut:
    """Cut out one image: a path, bytes or a PIL image. Sessions are reused between calls."""
    key = (str(model), tuple(sorted(kw.items())))
    r = _removers.get(key)
    if r is None:
        r = _removers[key] = Remover(model, **kw)
    return r.remove(source)
