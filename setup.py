"""Build hook: the wheel and sdist carry the browser app's vendor files.

``alphacut serve`` and ``build-site`` need ONNX Runtime Web, the jSquash codecs and fflate.
They come from the locked npm packages (``npm ci`` from package-lock.json); this hook copies
exactly the files listed in ``alphacut.serve.site.VENDOR_FILES`` (plus each package's
package.json, for its version, and its licence) into ``alphacut/serve/vendor/<package>/`` of
the wheel, and into the sdist's source tree, so a wheel built from the sdist needs no Node.js.
An editable install reads them from the checkout's node_modules instead.
"""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent
SITE = ROOT / "src" / "alphacut" / "serve" / "site.py"
NODE_MODULES = ROOT / "node_modules"
SDIST_VENDOR = ROOT / "src" / "alphacut" / "serve" / "vendor"  # present in an unpacked sdist only
LICENCES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "LICENCE")


def vendor_files() -> dict[str, tuple[str, ...]]:
    """``VENDOR_FILES`` read from site.py without importing the package (no deps at build time)."""
    for node in ast.parse(SITE.read_text()).body:
        target = node.target if isinstance(node, ast.AnnAssign) else (node.targets[0] if isinstance(node, ast.Assign) else None)
        if isinstance(target, ast.Name) and target.id == "VENDOR_FILES":
            return ast.literal_eval(node.value)
    raise RuntimeError(f"{SITE}: VENDOR_FILES not found")


def copy_vendor(dest: Path) -> None:
    """Write the vendor files into ``dest`` from node_modules, or from an sdist's copy."""
    files = vendor_files()
    src = NODE_MODULES
    if not all((src / pkg / "package.json").is_file() for pkg in files):
        src = SDIST_VENDOR
    missing = [f"{pkg}/{rel}" for pkg, rels in files.items() for rel in ("package.json", *rels)
               if not (src / pkg / rel).is_file()]
    if missing:
        raise SystemExit(
            f"alphacut build: the browser app's vendor files are missing ({', '.join(missing[:3])}, ...); "
            "run `npm ci --ignore-scripts` in the checkout first (or `make dist`)"
        )
    if dest.exists():
        shutil.rmtree(dest)
    for pkg, rels in files.items():
        extra = [n for n in LICENCES if (src / pkg / n).is_file()]
        for rel in ("package.json", *extra, *rels):
            out = dest / pkg / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / pkg / rel, out)
        version = json.loads((src / pkg / "package.json").read_text())["version"]
        print(f"alphacut build: vendored {pkg}@{version} ({len(rels)} files) from {src}")


class BuildPyWithVendor(build_py):
    def run(self):
        super().run()
        if not getattr(self, "editable_mode", False):
            copy_vendor(Path(self.build_lib) / "alphacut" / "serve" / "vendor")


class SdistWithVendor(sdist):
    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        copy_vendor(Path(base_dir) / "src" / "alphacut" / "serve" / "vendor")


setup(cmdclass={"build_py": BuildPyWithVendor, "sdist": SdistWithVendor})
