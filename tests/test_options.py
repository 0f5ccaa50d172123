"""One definition per concept: the format table and the option table are what the CLI, the
HTTP API, the OpenAPI document, the static site and the browser's config derive from, and
``Options`` refuses the same values whatever the surface."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from alphacut import formats
from alphacut.cli import app
from alphacut.options import BY_API, OPTIONS, OptionError, Options


def test_every_surface_lists_the_formats_of_the_table():
    from alphacut.serve import site
    from alphacut.serve.api import Api, Limits
    from alphacut.serve.openapi import document

    names = list(formats.native())  # what the Python encoder writes
    doc = document(Api("isnet", Limits()), "/api/v1")
    params = {p["name"]: p for p in doc["paths"]["/api/v1/remove"]["post"]["parameters"]}
    assert params["format"]["schema"]["enum"] == names
    assert set(doc["paths"]["/api/v1/remove"]["post"]["responses"]["200"]["content"]) == {f.mime for f in formats.native().values()}
    for f in formats.FORMATS.values():
        for ext in f.extensions:
            assert site.mime_type("x" + ext) == f.mime
    assert [f["name"] for f in formats.browser_config()] == [f.name for f in formats.FORMATS.values() if f.browser]
    help_text = CliRunner().invoke(app, ["remove", "--help"], terminal_width=200).output
    assert "[" + "|".join(names) + "]" in help_text


def test_every_option_is_offered_where_the_table_says():
    from alphacut.serve.api import PARAMS, Api, Limits
    from alphacut.serve.openapi import document

    help_text = CliRunner().invoke(app, ["remove", "--help"], terminal_width=200).output
    doc = document(Api("isnet", Limits()), "/api/v1")
    api_params = {p["name"] for p in doc["paths"]["/api/v1/remove"]["post"]["parameters"]}
    for o in OPTIONS:
        for flag in o.cli:
            for name in flag.split("/"):  # --settle/--no-settle: both spellings are listed
                assert name in help_text, name
        if o.api:
            assert o.api in api_params and o.api in PARAMS, o.api
    assert api_params == {"model", *BY_API}


@pytest.mark.parametrize(
    "values,cli_message,api_query",
    [
        ({"format": "gif"}, "--format 'gif': choose png, webp, avif", {"format": "gif"}),
        ({"format": "png", "avif_quality": "50"}, "--avif-quality applies to --format avif only", {"quality": "50"}),
        ({"format": "jpeg", "background": "white", "avif_quality": "50"},
         "(png and webp are always lossless; jpeg has its fixed quality)", {"format": "jpeg", "background": "white", "quality": "50"}),
        ({"format": "jpeg"}, "JPEG has no transparency", {"format": "jpeg"}),
        ({"mask_only": True, "background": "red"}, "--mask-only and --background exclude each other",
         {"mask_only": "true", "background": "red"}),
        ({"refine": "cwfg"}, "--refine 'cwfg': choose none", {"refine": "cwfg"}),
        ({"threshold": "1.5"}, "--threshold 1.5: give a number 0-1", {"threshold": "1.5"}),
        ({"quality": "better"}, "--quality 'better': choose default, best", {"mode": "better"}),
        ({"background": "notacolour"}, "bad colour", {"background": "notacolour"}),
    ],
)
def test_one_validation_for_every_surface(values, cli_message, api_query):
    """The same bad value is refused by Python, by the CLI (usage error, before any work) and
    by the API parser, each naming the option as that surface spells it."""
    from alphacut.serve import api

    with pytest.raises(OptionError):
        Options(**values)
    with pytest.raises(OptionError) as e:
        Options.create(values, surface="cli")
    assert cli_message in str(e.value)
    with pytest.raises(api.ApiError) as e:
        api.parse_params(api_query, "isnet")
    assert e.value.status == 400 and e.value.error == "bad_parameter"
    args = ["remove", "in.png"]
    for k, v in values.items():
        flag = next(o.cli[0] for o in OPTIONS if o.name == k)
        args += [flag] if v is True else [flag, str(v)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2 and cli_message in r.output, r.output


def test_options_convert_text_and_fill_defaults():
    o = Options.from_text({"format": "AVIF", "quality": "80", "mask_only": "yes", "threshold": "0.5", "mode": "best"})
    assert (o.format, o.avif_quality, o.mask_only, o.threshold, o.quality) == ("avif", 80, True, 0.5, "best")
    from alphacut.stages.refine import DEFAULT_REFINE

    assert Options().refine == DEFAULT_REFINE and Options().format is None  # None: from the output name, else png
    assert Options.from_text({}).format == formats.DEFAULT_FORMAT
    assert Options(background="#ff0000").background == (255, 0, 0)
    assert Options().replace(refine="none").mask_key() != Options().mask_key()
    assert Options().replace(format="webp").mask_key() == Options().mask_key()  # output-only


def test_a_path_extension_selects_its_format():
    for f in formats.native().values():
        for ext in f.extensions:
            assert formats.for_extension(ext.upper()) is f
    assert formats.for_extension(".gif") is None
    assert formats.for_extension(".jpg").name == "jpeg"
    with pytest.raises(ValueError, match="choose"):
        formats.get("gif")


@pytest.mark.parametrize("ratio", [(0, 1), (4, 0), (-1, 2)])
def test_an_aspect_tuple_is_checked_like_its_text(ratio):
    with pytest.raises(OptionError):
        Options(crop=True, aspect=ratio)
    assert Options(crop=True, aspect=(4, 5)).aspect == (4, 5)


def test_format_rules_are_the_options_rules(tmp_path):
    """The format known only from an output path is checked by the same rules as an option
    (``options.check_format``), named as the asking surface spells them."""
    from alphacut.errors import UsageError
    from alphacut.stages import encode

    assert encode.format_for_path(tmp_path / "x.JPG", background=(255, 255, 255)) == "jpeg"
    for path, kw, message in [
        ("x.jpg", {}, "JPEG has no transparency"),
        ("x.png", {"mask_only": True, "background": (0, 0, 0)}, "--mask-only and --background exclude each other"),
        ("x.tif", {}, "cannot tell the output format from '.tif'"),
    ]:
        with pytest.raises(UsageError, match=re.escape(message)):
            encode.format_for_path(tmp_path / path, surface="cli", **kw)
    with pytest.raises(UsageError, match="mask_only and background exclude"):
        encode.check_output("png", mask_only=True, background=(0, 0, 0))
