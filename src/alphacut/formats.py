"""The output formats: one table that everything else reads.

The CLI's ``--format`` choices, the file extension an output gets (and the format a path's
extension selects), the HTTP API's media types and its OpenAPI enum, the static site's MIME
map and the browser app's format list (sent in ``config.json``) all come from ``FORMATS``.
Adding a format means a row here and its branch in ``stages/encode.py`` (and, for the
browser, in ``serve/web/codecs.js``); nothing else lists formats.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    name: str  # the value of --format / ?format=
    extensions: tuple[str, ...]  # the first is what outputs get; all select this format from a path
    mime: str
    label: str  # what the browser app's menu shows
    lossless: bool  # every pixel kept exactly (without a lossy quality asked for)
    alpha: bool  # carries straight alpha (else only flattened outputs, with a background)
    max_side: int | None = None  # the codec's largest side in pixels
    lossy_quality: bool = False  # accepts a quality below 100 (lossy; verified within a tolerance)
    browser: bool = True  # the browser app encodes it (serve/web/codecs.js)
    native: bool = True  # the Python encoder writes it (stages/encode.py): CLI, API, library

    @property
    def extension(self) -> str:
        return self.extensions[0]

    def to_config(self) -> dict:
        """The browser app's view of this format (``config.json``)."""
        return {"name": self.name, "label": self.label, "ext": self.extension, "mime": self.mime,
                "max_side": self.max_side, "lossless": self.lossless, "alpha": self.alpha}


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("png", (".png",), "image/png", "PNG", lossless=True, alpha=True),
        Format("webp", (".webp",), "image/webp", "WebP (lossless)", lossless=True, alpha=True, max_side=16383),
        Format("avif", (".avif",), "image/avif", "AVIF (lossless)", lossless=True, alpha=True, lossy_quality=True),
        # flattened outputs only (no alpha): with a background; quality 90, checked within a tolerance
        Format("jpeg", (".jpg", ".jpeg"), "image/jpeg", "JPEG (with a background)", lossless=False, alpha=False),
    )
}
DEFAULT_FORMAT = "png"


def native() -> dict[str, Format]:
    """The formats the Python side writes (the CLI's choices, the API's)."""
    return {n: f for n, f in FORMATS.items() if f.native}


def get(name: str) -> Format:
    """The natively written format called ``name`` (any case); ValueError naming the choices otherwise."""
    f = native().get(name.lower()) if isinstance(name, str) else None
    if f is None:
        raise ValueError(f"unknown format {name!r}; choose {choices_text()}")
    return f


def for_extension(ext: str) -> Format | None:
    """The natively written format a file extension (``.png``, ``.WebP``) selects, or None."""
    ext = ext.lower()
    return next((f for f in native().values() if ext in f.extensions), None)


def choices_text() -> str:
    names = list(native())
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


def media_types() -> dict[str, str]:
    """Format name → MIME type, of the formats the Python side writes."""
    return {f.name: f.mime for f in native().values()}


def browser_config() -> list[dict]:
    return [f.to_config() for f in FORMATS.values() if f.browser]
