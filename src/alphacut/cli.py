"""The ``alphacut`` command line: cut-outs, the model store, the local app.

Heavy imports (ONNX Runtime, the server) happen inside the commands, so ``--help`` is quick.
Every expected failure prints one line naming the file and the reason, and the exit code
says whether everything succeeded: 0 all good, 1 some inputs failed, 2 usage or setup error.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import warnings
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from alphacut import formats
from alphacut.errors import AlphacutError, UsageError
from alphacut.models.catalog import DEFAULT_MODEL
from alphacut.options import OPTIONS, Option, OptionError, Options

app = typer.Typer(
    help=(
        "Remove image backgrounds on your own machine. Nothing is uploaded: the model runs "
        "locally, and outputs keep the photo's exact colours with a straight alpha channel."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
models_app = typer.Typer(help="List, install and verify models in the local model store.", no_args_is_help=True)
app.add_typer(models_app, name="models")

err = Console(stderr=True, highlight=False)


def _version(value: bool) -> None:
    if value:
        from alphacut import __version__

        print(f"alphacut {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Remove image backgrounds on your own machine. Nothing is uploaded."""


def _install_with_progress(model_id: str, quiet: bool = False, **kw) -> Path:
    """``store.install`` with the one-line plan and a download bar on stderr."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from alphacut.models import store

    with Progress("{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=err,
                  disable=quiet, transient=False) as p:
        task = p.add_task(f"installing {model_id}", total=None, visible=False)

        def progress(done: int, total: int | None) -> None:
            p.update(task, completed=done, total=total, visible=True)

        return store.install(model_id, progress=progress, announce=lambda line: p.console.print(line, markup=False, soft_wrap=True), **kw)


def _ensure_model(model: str, quiet: bool = False) -> None:
    """Install a catalog model that installs on first use, visibly, before any work starts."""
    from alphacut.models import store
    from alphacut.models.catalog import CATALOG

    spec = CATALOG.get(model)
    if spec is None or not spec.embedded or store.verify_file(store.file_path(spec), spec.main_file):
        return
    try:
        _install_with_progress(model, quiet=quiet)
    except AlphacutError as e:
        _fail(str(e))


class Engine(str, Enum):
    local = "local"
    ray = "ray"


# The device names of ``alphacut.stages.infer.DEVICES`` (kept here so --help stays quick;
# tests/test_device.py checks that the two agree).
Device = Enum("Device", {d: d for d in ("auto", "cuda", "dml", "coreml", "cpu")}, type=str)
DEVICE_HELP = (
    "Where inference runs: auto (a GPU provider the installed ONNX Runtime has, else the CPU), cpu, "
    "cuda (pip install 'alphacut[gpu]'), dml (DirectML, Windows) or coreml (macOS). "
    "A device that is not usable here falls back to the CPU with a note."
)


@contextlib.contextmanager
def _device_notes(quiet: bool = False):
    """Print a device fallback (``DeviceFallbackWarning``) as one ``note:`` line."""
    from alphacut.stages.infer import DeviceFallbackWarning

    shown = warnings.showwarning

    def show(message, category, *args, **kw):
        if issubclass(category, DeviceFallbackWarning):
            if not quiet:
                err.print(f"note: {message}", markup=False, soft_wrap=True)
        else:
            shown(message, category, *args, **kw)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


def _inference_on(remover) -> str:
    """'inference on cpu (CPUExecutionProvider)' once the session is loaded, else ''."""
    session = remover._session
    return f"inference on {session.device} ({session.provider})" if session is not None else ""


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[red]error:[/red] {escape(message)}", markup=True, soft_wrap=True)
    raise typer.Exit(code)


_PY_TYPES = {"str": str, "background": str, "padding": str, "ratio": str, "bool": bool, "int": int, "float": float}


def _typer_param(o: Option) -> inspect.Parameter:
    """A Typer option for one entry of ``options.OPTIONS`` (values are checked by ``Options``)."""
    py = _PY_TYPES[o.kind]
    extra = {}
    if isinstance(o.choices, tuple):
        extra["metavar"] = "[" + "|".join(o.choices) + "]"
    ann = Annotated[py if o.kind == "bool" else Optional[py], typer.Option(*o.cli, help=o.help, **extra)]
    default = None if callable(o.default) else o.default  # a lazy default is filled in by Options
    return inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=ann)


def with_options(command):
    """Give ``command`` a CLI option for each pipeline option that has flags, and call it
    with them gathered in one validated ``Options`` as ``options`` (a bad value or
    combination is a usage error, exit 2, before any work starts)."""
    sig = inspect.signature(command, eval_str=True)
    own = [p for p in sig.parameters.values() if p.name != "options"]
    table = [o for o in OPTIONS if o.cli]
    params = own + [_typer_param(o) for o in table]

    def wrapper(**kw):
        values = {o.name: kw.pop(o.name) for o in table}
        try:
            opts = Options.create(values, surface="cli")
        except OptionError as e:
            _fail(str(e))
        return command(options=opts, **kw)

    wrapper.__name__, wrapper.__doc__, wrapper.__module__ = command.__name__, command.__doc__, command.__module__
    wrapper.__signature__ = sig.replace(parameters=params)
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


@app.command()
@with_options
def remove(
    inputs: Annotated[list[str], typer.Argument(help="Image files, directories (searched recursively), or - for stdin.", show_default=False)],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Output file for one input; output directory (mirroring the inputs) for a directory or several inputs; - for stdout.")] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Model id from `alphacut models list`, or a path to an .onnx file.")] = DEFAULT_MODEL,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing output files (inputs are never overwritten).")] = False,
    skip_existing: Annotated[bool, typer.Option("--skip-existing", help="Leave existing outputs alone and count them as done (resume a batch).")] = False,
    suffix: Annotated[str, typer.Option("--suffix", help="Text added to each output's file name stem.")] = "",
    max_pixels: Annotated[Optional[int], typer.Option("--max-pixels", help="Refuse images with more pixels than this (read from the header; default 120 MP).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar; errors only.")] = False,
    engine: Annotated[Engine, typer.Option("--engine", help="local: this process. ray: a Ray cluster (pip install alphacut[ray]) for very large batches.")] = Engine.local,
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="Ray cluster address (with --engine ray); default: start a local Ray instance.")] = None,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="With one input folder: keep running and cut out new and changed images as they arrive (once a file stops growing), until Ctrl+C.")] = False,
    device: Annotated[Device, typer.Option("--device", help=DEVICE_HELP)] = Device.auto,
    *,
    options: Options,
) -> None:
    """Cut out the subject of each input and write it with a transparent background.

    Examples:

      alphacut remove photo.jpg                  # writes photo-cutout.png beside it

      alphacut remove photo.jpg -o cut.webp -f webp

      alphacut remove shoots/ -o cutouts/        # mirrors shoots/ into cutouts/

      cat in.jpg | alphacut remove - -o - > out.png

      alphacut remove inbox/ -o cutouts/ --watch  # until Ctrl+C
    """
    from alphacut.engines import batch
    from alphacut.pipeline import Remover
    from alphacut.stages import encode

    # Every option was checked by Options (with_options) before this line; the format, when
    # not given, comes from the output file's name.
    bg, mask_only = options.background, options.mask_only
    asked = options.format
    one_file = inputs == ["-"] or (len(inputs) == 1 and inputs[0] != "-" and not Path(inputs[0]).is_dir())
    try:
        if engine is Engine.local and output is not None and str(output) != "-" and one_file and not output.is_dir():
            fmt = encode.format_for_path(output, asked, background=bg, mask_only=mask_only, surface="cli")
        else:
            fmt = encode.check_output(asked or formats.DEFAULT_FORMAT, background=bg, mask_only=mask_only, surface="cli")
        options = options.replace(format=fmt, surface="cli")  # the rules again, now the format is known
    except (UsageError, OptionError) as e:
        _fail(str(e))
    if overwrite and skip_existing:
        _fail("--overwrite and --skip-existing contradict each other; choose one")
    try:
        batch.check_suffix(suffix)
    except AlphacutError as e:
        _fail(str(e))
    opts = batch.SaveOptions(options, overwrite, skip_existing)
    if watch:
        if engine is not Engine.local or len(inputs) != 1 or not Path(inputs[0]).is_dir() or str(output) == "-":
            _fail("--watch takes one input folder (and -o OUTPUT_FOLDER), with the local engine")
        _watch(Path(inputs[0]), output, opts, model=model, suffix=suffix, quiet=quiet,
               remover_kw=dict(max_pixels=max_pixels, options=options, device=device.value))
    if engine is Engine.ray:
        if device is not Device.auto:
            _fail("--device is not available with --engine ray yet")
        if getattr(bg, "kind", None) == "image":
            _fail("an image --background is not available with --engine ray yet (each worker would read it)")
        if output is None or str(output) == "-" or "-" in inputs:
            _fail("--engine ray needs input directories or URIs and -o OUTPUT (a directory or URI)")
        try:
            from alphacut.engines import ray as ray_engine
        except ImportError as e:
            _fail(f"--engine ray needs Ray: pip install 'alphacut[ray]' ({e})")
        code = ray_engine.run_cli(
            inputs, str(output), opts, model=model, address=ray_address,
            max_pixels=max_pixels, quiet=quiet, suffix=suffix,
        )
        raise typer.Exit(code)

    to_stdout = output is not None and str(output) == "-"
    not_images: list[Path] = []
    multi = False
    if inputs == ["-"]:
        data = sys.stdin.buffer.read()
        to_stdout = output is None or to_stdout
        jobs, errors = [batch.Job(data, None if to_stdout else output, "<stdin>")], []
    else:
        if "-" in inputs:
            _fail("- (stdin) cannot be mixed with other inputs")
        paths = [Path(p) for p in inputs]
        if to_stdout:
            if len(paths) != 1 or paths[0].is_dir():
                _fail("-o - (stdout) takes exactly one input file")
            jobs, errors = [batch.Job(paths[0], None, str(paths[0]))], []
        else:
            try:
                jobs, errors = batch.plan_outputs(paths, output, fmt, suffix=suffix, not_images=not_images)
            except UsageError as e:
                _fail(str(e))
            multi = len(paths) > 1 or paths[0].is_dir()
            if multi and output is not None:
                try:
                    batch.ensure_writable_dir(output)
                except AlphacutError as e:
                    _fail(str(e))
    for e in errors:
        err.print(f"[red]error:[/red] {escape(str(e))}", markup=True, soft_wrap=True)
    if not jobs:
        if not_images and not quiet:
            err.print(f"0 cut out, {_not_images(len(not_images))} skipped", soft_wrap=True)
        raise typer.Exit(1 if errors else 0)

    _ensure_model(model, quiet=quiet or to_stdout)
    try:
        remover = Remover(model, max_pixels=max_pixels, options=options, device=device.value)
    except (AlphacutError, ValueError) as e:
        _fail(str(e))

    failed = len(errors)
    cut = existing = 0
    show_bar = not quiet and len(jobs) > 1 and not to_stdout
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=err, disable=not show_bar, transient=False,
    )
    with progress, _device_notes(quiet):
        task = progress.add_task("cutting out", total=len(jobs))

        def done(o: batch.Outcome) -> None:
            nonlocal failed, cut, existing
            progress.advance(task)
            cut += o.ok and not o.skipped
            existing += o.ok and o.skipped
            if not o.ok:
                failed += 1
                progress.console.print(f"[red]error:[/red] {escape(o.message)}", markup=True, soft_wrap=True)
            elif o.message and not quiet:
                progress.console.print(f"note: {o.message}", markup=False, soft_wrap=True)
            if o.ok and o.data is not None:
                sys.stdout.buffer.write(o.data)
                sys.stdout.buffer.flush()
            elif o.ok and not o.skipped and not quiet and not show_bar and o.job.target is not None:
                err.print(f"wrote {o.job.target}", markup=False, soft_wrap=True, highlight=False)

        batch.run_batch(remover, jobs, opts, done)
    total = len(jobs) + len(errors)
    skipped = f", {_not_images(len(not_images))} skipped" if not_images else ""
    on = _inference_on(remover)  # where inference ran: "; inference on cpu (CPUExecutionProvider)"
    on = f"; {on}" if on else ""
    if failed:
        err.print(f"{total - failed} of {total} succeeded, {failed} failed{skipped}{on}", soft_wrap=True)
        raise typer.Exit(1)
    if not quiet and not to_stdout:
        there = f", {existing} already there" if existing else ""
        err.print(f"{cut} cut out{there}{skipped}{on}", soft_wrap=True, highlight=False)


def _not_images(n: int) -> str:
    return f"{n} not image{'' if n == 1 else 's'}"


def _watch(folder: Path, output: Optional[Path], opts, *, model: str, suffix: str, quiet: bool, remover_kw: dict) -> None:
    """``remove FOLDER --watch``: the watch loop of ``engines.watch`` until Ctrl+C."""
    from alphacut.engines import batch
    from alphacut.engines import watch as watcher
    from alphacut.pipeline import Remover

    try:
        output = output if output is not None else batch.default_output_dir(folder)
        if output.resolve() == folder.resolve():
            _fail(f"--watch: the output folder is the watched folder {folder} (each cut-out would be a new input); "
                  "give -o another folder")
        batch.ensure_writable_dir(output)
    except AlphacutError as e:
        _fail(str(e))
    _ensure_model(model, quiet=quiet)
    try:
        remover = Remover(model, **remover_kw)
    except (AlphacutError, ValueError) as e:
        _fail(str(e))
    counts = {"cut": 0, "failed": 0, "not_images": 0}

    def done(o) -> None:
        if o.ok:
            counts["cut"] += 1
            if not quiet:
                err.print(f"wrote {o.job.target}", markup=False, soft_wrap=True, highlight=False)
        else:
            plan_error(o.message)

    def plan_error(message: str) -> None:
        counts["failed"] += 1
        err.print(f"[red]error:[/red] {escape(message)}", markup=True, soft_wrap=True)

    def not_image(path: Path) -> None:
        counts["not_images"] += 1
        if not quiet:
            err.print(f"note: {path}: not an image, skipped", markup=False, soft_wrap=True, highlight=False)

    if not quiet:
        err.print(f"watching {folder} -> {output} (Ctrl+C to stop)", markup=False, soft_wrap=True, highlight=False)
    try:
        with _device_notes(quiet):
            watcher.watch(remover, folder, output, opts, done, suffix=suffix, on_not_image=not_image,
                          on_plan_error=plan_error)
    except KeyboardInterrupt:
        pass
    failed = f", {counts['failed']} failed" if counts["failed"] else ""
    err.print(f"stopped: {counts['cut']} cut out, {_not_images(counts['not_images'])} skipped{failed}",
              soft_wrap=True)
    raise typer.Exit(1 if counts["failed"] else 0)


@models_app.command("list")
def models_list(
    device: Annotated[Device, typer.Option("--device", help="Report which provider this device would use here.")] = Device.auto,
) -> None:
    """Show every model in the catalog, its size, licence and whether it is installed, and
    which ONNX Runtime execution provider inference would use."""
    from rich.table import Table

    from alphacut.models import store

    table = Table("id", "installed", "size", "licence", "notes", show_lines=False)
    for row in store.status():
        size = f"{row['size'] / 1e6:.0f} MB" if row["size"] else "?"
        flags = ", ".join(f for f, on in (("embedded", row["embedded"]), ("gated", row["gated"])) if on)
        table.add_row(row["id"], "yes" if row["installed"] else "no", size, row["licence"], flags)
    Console().print(table)
    print(f"model store: {store.models_dir()}")
    from alphacut.stages import infer

    available = infer.available_providers()
    choice = infer.choose_device(device.value, available)
    print(f"inference (--device {device.value}): {choice.device} ({choice.provider}); "
          f"this ONNX Runtime build has {', '.join(available)}")
    if choice.notice:
        print(f"note: {choice.notice}")


@models_app.command("install")
def models_install(
    model_id: Annotated[str, typer.Argument(help="Model id from `alphacut models list`.")],
    file: Annotated[Optional[Path], typer.Option("--file", help="Install from a file you already have (gated models); its SHA-256 is checked.")] = None,
    token: Annotated[Optional[str], typer.Option("--token", envvar="HF_TOKEN", help="Access token for gated models (or set HF_TOKEN).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Install again even if a verified copy exists.")] = False,
    from_npm: Annotated[Optional[Path], typer.Option("--from-npm", help="IS-Net models: assemble from a copy of the npm package @imgly/background-removal-data (its folder, dist/ or node_modules) instead of downloading.")] = None,
) -> None:
    """Install a model into the store, verified: IS-Net from a local copy of its npm data package
    or from the package's CDN (ALPHACUT_MODEL_MIRROR overrides it), others from their hub."""
    try:
        path = _install_with_progress(model_id, force=force, token=token, source_file=file, from_npm=from_npm)
    except AlphacutError as e:
        _fail(str(e), 1)
    print(path)


@models_app.command("verify")
def models_verify(model_id: Annotated[Optional[str], typer.Argument(help="Model id; all installed models if omitted.")] = None) -> None:
    """Re-hash installed model files against the catalog; a corrupt file is removed."""
    from alphacut.models import store
    from alphacut.models.catalog import CATALOG, get_spec

    try:
        specs = [get_spec(model_id)] if model_id else list(CATALOG.values())
    except AlphacutError as e:
        _fail(str(e))
    bad = 0
    for spec in specs:
        path = store.file_path(spec)
        if not path.exists():
            if model_id:
                print(f"{spec.id}: not installed")
                bad += 1
            continue
        if store.verify_file(path, spec.main_file, deep=True):
            print(f"{spec.id}: ok ({path})")
        else:
            bad += 1
            path.unlink()
            print(f"{spec.id}: CORRUPT, removed; run `alphacut models install {spec.id}`")
    raise typer.Exit(1 if bad else 0)


@models_app.command("path")
def models_path(model_id: Annotated[str, typer.Argument(help="Model id.")]) -> None:
    """Print the path of an installed model file (installing an embedded one if needed)."""
    from alphacut.models import store

    try:
        _, path = store.resolve(model_id)
    except AlphacutError as e:
        _fail(str(e), 1)
    print(path)


@app.command()
def serve(
    port: Annotated[int, typer.Option("--port", "-p", help="TCP port.")] = 8000,
    host: Annotated[str, typer.Option("--host", help="Interface to bind. Anything but loopback needs --token.")] = "127.0.0.1",
    open_browser: Annotated[bool, typer.Option("--open", help="Open the app in your browser.")] = False,
    token: Annotated[Optional[str], typer.Option("--token", envvar="ALPHACUT_TOKEN", help="Require this token on every request (needed off loopback).")] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Model the app uses.")] = DEFAULT_MODEL,
    device: Annotated[Device, typer.Option("--device", help=DEVICE_HELP + " Used by the HTTP API; the browser app runs its own model.")] = Device.auto,
) -> None:
    """Run the local app: in-browser cut-outs, served from this machine only."""
    from alphacut.serve import app as server

    _ensure_model(model)
    try:
        with _device_notes():
            server.serve(host=host, port=port, open_browser=open_browser, token=token, model=model, device=device.value)
    except AlphacutError as e:
        _fail(str(e))


@app.command("eval")
def eval_command(
    set_dir: Annotated[Path, typer.Argument(help="Evaluation set: manifest.json, images/, gt/ (see docs/quality.md).")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model id.")] = DEFAULT_MODEL,
    variant: Annotated[Optional[list[str]], typer.Option("--variant", help="Pipeline variant to score (repeatable): baseline, float, a refinement name, settle, best-plain, best, ...")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the per-image scores and aggregates as JSON.")] = None,
    reference: Annotated[Optional[str], typer.Option("--reference", help="Variant the others are paired with (mean difference, 95% interval, wins); default baseline when scored, else the first.")] = None,
) -> None:
    """Score cut-outs against ground truth: MAE, MSE, SAD, edge SAD for mattes; MAE, IoU, F-beta for masks."""
    from alphacut import evaluate

    try:
        code = evaluate.main(set_dir, model=model, variants=variant, json_out=json_out, reference=reference)
    except AlphacutError as e:
        _fail(str(e))
    raise typer.Exit(code)


@app.command("build-site")
def build_site(
    out_dir: Annotated[Path, typer.Argument(help="Directory to write the static site into.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model bundled with the site.")] = DEFAULT_MODEL,
) -> None:
    """Write the app as a static site (with header rules for common hosts)."""
    from alphacut.serve import site

    try:
        site.build_site(out_dir, model=model)
    except AlphacutError as e:
        _fail(str(e))
    print(out_dir)


def main() -> None:
    from alphacut._memory import configure_malloc

    configure_malloc()
    app()


if __name__ == "__main__":
    main()
