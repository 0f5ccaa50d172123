"""The pipeline's options: one definition that the CLI, the Python API, the HTTP API and the
OpenAPI document are all derived from, validated in one place.

Each ``Option`` says what the value is (type, default, range or choices), how it is spelt on
each surface (CLI flags, API parameter name; ``None`` where a surface does not offer it) and
one line of help. ``Options`` holds a validated set of values: building one checks every
value and the rules between them (``RULES``), so no entry point can accept what another
refuses. ``cli.py`` turns ``OPTIONS`` into Typer parameters, ``serve/api.py`` parses query
strings and form fields with ``Options.from_text``, and ``serve/openapi.py`` writes their
schemas. Adding an option means a row here and the code that uses it in its stage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alphacut import formats

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}


#: Which lossy AVIF outputs are refused (docs/api.md states it; a test holds the two together):
#: the verify stage's tolerance, ``verify.lossy_tolerance``.
AVIF_QUALITY_RULE = (
    "Every quality 0-99 is encoded; the answer is refused with 422 (cannot_encode) only when, "
    "decoded again, its mean error over visible colour or over alpha exceeds "
    "max(4, (100 - quality) / 4) levels of 255. Photos pass at every quality; "
    "noise-like images can fail at low ones."
)


class OptionError(ValueError):
    """A value or a combination of values that no entry point accepts."""


@dataclass(frozen=True)
class Option:
    name: str  # the Python keyword (Remover, CutOut.save, Options)
    kind: str  # "str", "bool", "int", "float", "background", "padding", "ratio"
    default: Any  # a value, or a function giving it (where it lives in a heavy module)
    help: str
    cli: tuple[str, ...] = ()  # flags; () for no CLI option
    api: str | None = None  # the HTTP API's parameter name; None for none
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] | None = None  # a function where the list lives in a heavy module
    minimum: float | None = None
    maximum: float | None = None
    applies: str = "mask"  # "mask": changes the mask (the Remover's work); "output": the encoding

    def label(self, surface: str) -> str:
        """How the option is spelt where the error is reported."""
        if surface == "cli" and self.cli:
            return self.cli[0].split("/")[0]
        if surface == "api" and self.api:
            return self.api
        return self.name

    def convert(self, value: Any, surface: str = "python") -> Any:
        """``value`` (text from the CLI or the API, or a Python value) checked and converted."""
        if value is None:
            return None
        what = self.label(surface)
        if self.kind == "bool":
            if isinstance(value, str):
                v = value.strip().lower()
                if v not in TRUE | FALSE:
                    raise OptionError(f"{what} {value!r}: use true or false")
                return v in TRUE
            return bool(value)
        if self.kind == "background":
            return _background(value, what, surface)
        if self.kind == "padding":
            from alphacut.stages.background import padding_pixels

            try:
                padding_pixels(str(value), 1, 1)
            except ValueError as e:
                raise OptionError(f"{what}: {e}") from None
            return str(value).strip()
        if self.kind == "ratio":
            if isinstance(value, tuple) and len(value) == 2 and min(int(v) for v in value) >= 1:
                return tuple(int(v) for v in value)
            try:
                ratio = tuple(int(v) for v in str(value).split(":"))
                if len(ratio) != 2 or min(ratio) < 1:
                    raise ValueError
            except ValueError:
                raise OptionError(f"bad {what} {value!r}: give W:H, e.g. 1:1 or 16:9") from None
            return ratio
        if self.kind in ("int", "float"):
            cast = int if self.kind == "int" else float
            try:
                v = cast(value)
            except (TypeError, ValueError):
                noun = "a whole number" if self.kind == "int" else "a number"
                raise OptionError(f"{what} {value!r}: give {noun}{self._range()}") from None
            if isinstance(value, float) and self.kind == "int" and v != value:
                raise OptionError(f"{what} {value!r}: give a whole number{self._range()}")
            if (self.minimum is not None and v < self.minimum) or (self.maximum is not None and v > self.maximum):
                raise OptionError(f"{what} {v}: give {'a whole number' if self.kind == 'int' else 'a number'}{self._range()}")
            return v
        v = str(value).strip()
        if self.choices is not None:
            allowed = self.allowed()
            if v.lower() in allowed:
                v = v.lower()
            elif v not in allowed:
                raise OptionError(f"{what} {value!r}: choose {', '.join(allowed)}")
        return v

    def default_value(self) -> Any:
        return self.default() if callable(self.default) else self.default

    def allowed(self) -> tuple[str, ...]:
        return self.choices() if callable(self.choices) else tuple(self.choices or ())

    def _range(self) -> str:
        fmt = (lambda x: f"{x:g}") if self.kind == "float" else (lambda x: f"{int(x)}")
        if self.minimum is not None and self.maximum is not None:
            return f" {fmt(self.minimum)}-{fmt(self.maximum)}"
        return ""


def _background(value: Any, what: str, surface: str):
    """A colour tuple, or a ``stages.background.Background`` (blur, or an image file: never
    from the API, which takes no paths and does not say whether one exists)."""
    from alphacut.stages import background as bg
    from alphacut.stages.compose import parse_color

    if isinstance(value, (tuple, bg.Background)):
        parsed = value
    else:
        text = str(value).strip()
        try:
            if surface == "api":  # never a path from a client: a colour or blur only
                parsed = bg.parse_background(text) if text.lower().startswith("blur") else parse_color(text)
                if isinstance(parsed, bg.Background) and parsed.kind != "blur":
                    raise ValueError(f"bad background {text!r}")
            else:
                parsed = bg.parse_background(text)
        except ValueError as e:
            raise OptionError(f"{what}: {e}") from None
    if isinstance(parsed, bg.Background) and parsed.kind == "color":
        parsed = parsed.color
    return parsed


def _refine_methods() -> tuple[str, ...]:
    from alphacut.stages.refine import REFINERS

    return tuple(REFINERS)


def _default_refine() -> str:
    from alphacut.stages.refine import DEFAULT_REFINE

    return DEFAULT_REFINE


#: Every option, in the order the CLI's help lists them.
OPTIONS: tuple[Option, ...] = (
    Option("format", "str", None,
           "Output format; default: the output file's extension (.png, .webp, .avif; .jpg/.jpeg with a background), "
           "else png. PNG and WebP are lossless; AVIF is lossless unless a lossy quality is set; JPEG (quality 90) "
           "only for flattened outputs.",
           cli=("--format", "-f"), api="format", choices=tuple(formats.native()), applies="output"),
    Option("mask_only", "bool", False,
           "Write the 8-bit alpha mask as a grey image instead of the cut-out (its values are the cut-out's alpha).",
           cli=("--mask-only",), api="mask_only", applies="output"),
    Option("background", "background", None,
           "Flatten onto an opaque colour (#rrggbb, #rgb, r,g,b or a CSS colour name), blur / blur:R (the photo itself "
           "blurred, radius R px; default 2 % of the longer side) or an image file (scaled to cover, centred; in the API "
           "an upload in the multipart field background_image, never a path), instead of transparency. Not with mask-only.",
           cli=("--background", "-b"), api="background", applies="output"),
    Option("shadow", "bool", False, "With a background: a soft drop shadow from the alpha under the subject.",
           cli=("--shadow",), api="shadow", applies="output"),
    Option("crop", "bool", False, "Crop to the subject: the pixels with alpha > 0, grown by the padding, clipped to the photo.",
           cli=("--crop",), api="crop", applies="output"),
    Option("padding", "padding", "0", "With crop: pixels (10) or a percentage of the subject box's longer side (5%).",
           cli=("--padding",), api="padding", applies="output"),
    Option("aspect", "ratio", None, "With crop: widen the box to W:H (1:1, 4:5, 16:9), centred on the subject.",
           cli=("--aspect",), api="aspect", applies="output"),
    Option("avif_quality", "int", None,
           "AVIF only: absent or 100 is lossless, below 100 lossy (smaller). " + AVIF_QUALITY_RULE,
           cli=("--avif-quality",), api="quality", minimum=0, maximum=100, applies="output"),
    Option("quality", "str", "default",
           "default: one inference and edge refinement. best: also the mirrored photo, masks averaged (twice the inference time).",
           cli=("--quality",), api="mode", choices=("default", "best")),
    Option("threshold", "float", None,
           "Make the mask hard: pixels with mask >= T become opaque, the rest transparent. Off by default.",
           cli=("--threshold",), api="threshold", minimum=0.0, maximum=1.0),
    Option("settle", "bool", True,
           "Restore large parts of the subject the model half-believes when the photo's colours say subject "
           "(docs/quality.md); a note names photos where a large part stays uncertain.",
           cli=("--settle/--no-settle",)),
    Option("refine", "str", _default_refine,
           "Edge refinement method (none, gf-grey, gf-colour, cwgf-grey, cwgf; see docs/architecture.md); default: the measured best (cwgf).",
           cli=("--refine",), api="refine", choices=_refine_methods),
    Option("decontaminate", "bool", False,
           "Estimate the subject's own colour in semi-transparent edges, so no background colour bleeds onto a new "
           "background (changes RGB there; off by default).",
           cli=("--decontaminate",), api="decontaminate"),
)
#: The API's multipart file field for the background option's image form (the CLI's
#: ``--background IMAGE``): an upload, never a path on the server.
BACKGROUND_FIELD = "background_image"
BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}
BY_API: dict[str, Option] = {o.api: o for o in OPTIONS if o.api}


# ----------------------------------------------------------------------------- rules


def _mask_only_or_background(v: dict, say: Callable[[str], str]) -> None:
    if v["mask_only"] and v["background"] is not None:
        raise OptionError(f"{say('mask_only')} and {say('background')} exclude each other")


def _lossy_quality_needs_a_lossy_format(v: dict, say: Callable[[str], str]) -> None:
    # no format yet (the CLI takes it from the output's extension): checked once it is known
    if v["avif_quality"] is not None and v["format"] is not None and not formats.FORMATS[v["format"]].lossy_quality:
        native = formats.native().values()
        lossy = [f.name for f in native if f.lossy_quality]
        lossless = [f.name for f in native if f.lossless and not f.lossy_quality]
        fixed = [f.name for f in native if not f.lossless and not f.lossy_quality]
        raise OptionError(
            f"{say('avif_quality')} applies to {say('format')} {' or '.join(lossy)} only "
            f"({' and '.join(lossless)} are always lossless"
            + (f"; {' and '.join(fixed)} has its fixed quality)" if fixed else ")")
        )


def _opaque_format_needs_a_background(v: dict, say: Callable[[str], str]) -> None:
    f = formats.FORMATS.get(v["format"] or "")
    if f is not None and not f.alpha and (v["background"] is None or v["mask_only"]):
        raise OptionError(
            f"{f.name.upper()} has no transparency: it is written only for a flattened output (with "
            f"{say('background')}, not {say('mask_only')}); choose {', '.join(n for n, g in formats.native().items() if g.alpha)}"
        )


def _shadow_needs_a_background(v: dict, say: Callable[[str], str]) -> None:
    if v["shadow"] and v["background"] is None:
        raise OptionError(f"{say('shadow')} needs {say('background')} (on transparency it would change the photo's colours)")


def _padding_and_aspect_need_crop(v: dict, say: Callable[[str], str]) -> None:
    if (v["padding"] != "0" or v["aspect"] is not None) and not v["crop"]:
        raise OptionError(f"{say('padding')} and {say('aspect')} apply with {say('crop')}")


def check_format(fmt: str, *, background: Any = None, mask_only: bool = False, surface: str = "python") -> str:
    """``fmt`` (lower case) if it is a format the Python side writes and can hold the output
    asked for (the format rules above, for the format known only once an output path is
    chosen); an ``OptionError`` naming options as ``surface`` spells them otherwise."""
    fmt = fmt.lower()
    if fmt not in formats.native():
        raise OptionError(f"unknown output format {fmt!r}; choose {formats.choices_text()}")
    say = lambda name: BY_NAME[name].label(surface)  # noqa: E731
    v = {"format": fmt, "background": background, "mask_only": bool(mask_only)}
    for rule in FORMAT_RULES:
        rule(v, say)
    return fmt


#: The rules ``check_format`` applies (they need only the format, background and mask-only).
FORMAT_RULES = (_mask_only_or_background, _opaque_format_needs_a_background)

#: Rules between options, checked after each value on its own.
RULES: tuple[Callable[[dict, Callable[[str], str]], None], ...] = (
    _mask_only_or_background,
    _lossy_quality_needs_a_lossy_format,
    _opaque_format_needs_a_background,
    _shadow_needs_a_background,
    _padding_and_aspect_need_crop,
)


# ----------------------------------------------------------------------------- values


def _validate(obj, surface: str) -> None:
    values = {}
    for o in OPTIONS:
        v = getattr(obj, o.name)
        values[o.name] = o.convert(o.default_value() if v is None else v, surface)
    say = lambda name: BY_NAME[name].label(surface)  # noqa: E731
    for rule in RULES:
        rule(values, say)
    for k, v in values.items():
        object.__setattr__(obj, k, v)


def _create(values: dict[str, Any], surface: str = "python") -> Options:
    """Options from values keyed by Python name; errors name options as ``surface`` spells them."""
    unknown = [k for k in values if k not in BY_NAME]
    if unknown:
        raise OptionError(f"unknown option(s) {', '.join(unknown)}")
    obj = object.__new__(Options)
    for o in OPTIONS:
        object.__setattr__(obj, o.name, values.get(o.name))
    _validate(obj, surface)
    return obj


def _from_text(raw: dict[str, str], surface: str = "api", **given: Any) -> Options:
    """Options from text keyed by the API's parameter names (blank values count as absent;
    the format defaults to png: there is no file name to take it from), and values ``given``
    already parsed (the API's uploaded background image), all checked together."""
    values = {"format": formats.DEFAULT_FORMAT, **given}
    for key, text in raw.items():
        o = BY_API.get(key)
        if o is not None and text is not None and str(text).strip() != "":
            values[o.name] = str(text).strip()
    return _create(values, surface)


def _replace(self, surface: str = "python", **changes) -> Options:
    return _create({**self.values(), **changes}, surface)


def _values(self) -> dict[str, Any]:
    return {o.name: getattr(self, o.name) for o in OPTIONS}


def _mask_key(self) -> tuple:
    """The values the mask depends on (the Remover's work): equal keys give equal masks."""
    return tuple(getattr(self, o.name) for o in OPTIONS if o.applies == "mask")


Options = dataclasses.make_dataclass(
    "Options",
    [(o.name, Any, dataclasses.field(default=None if callable(o.default) else o.default)) for o in OPTIONS],
    frozen=True,
    namespace={
        "__post_init__": lambda self: _validate(self, "python"),
        "create": staticmethod(_create),
        "from_text": staticmethod(_from_text),
        "replace": _replace,
        "values": _values,
        "mask_key": _mask_key,
    },
)
Options.__module__ = __name__
Options.__doc__ = """A validated set of values for every option in ``OPTIONS`` (attributes by name).

``Options(format="webp", refine="none")`` checks each value and the rules between them;
``Options.create(values, surface="cli")`` does the same naming options as that surface spells
them in errors; ``Options.from_text(query)`` parses the API's text parameters."""
