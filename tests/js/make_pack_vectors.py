"""Generate tests/js/pack_vectors.json: chunks packed by the Python packer (alphacut.serve.pack),
which the JS unpacker (src/alphacut/serve/web/store.js) must turn back into the same bytes.

Run `PYTHONPATH=src .venv/bin/python tests/js/make_pack_vectors.py` after an intended change
to the packed format; tests/js/store.test.js and tests/serve/test_pack.py read the file.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import numpy as np

from alphacut.serve import pack

OUT = Path(__file__).parent / "pack_vectors.json"


def widened_weights(n_words: int, tail: int, seed: int) -> bytes:
    """float32 weights widened from fp16 (as the default model's are), a few bytes of other
    data at an offset that is not a multiple of 4, then ``tail`` odd bytes after the words."""
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal(n_words) * 0.05).astype(np.float16).astype("<f4").tobytes()
    header = b"\x0a\x07weights\x12" + bytes([7, 200, 1])
    return header + w[len(header):] + bytes(rng.integers(0, 256, tail, dtype=np.uint8))


def main() -> None:
    raws = [widened_weights(12288, 3, 1), widened_weights(4096, 0, 2), bytes([1, 2, 3])]
    vectors = [{"size": len(r), "sha256": hashlib.sha256(r).hexdigest(), "packed": base64.b64encode(pack.pack(r)).decode()}
               for r in raws]
    OUT.write_text(json.dumps({"format": pack.FORMAT, "vectors": vectors}, indent=1) + "\n")
    print(f"wrote {OUT}: " + ", ".join(f"{v['size']} -> {len(base64.b64decode(v['packed']))} bytes" for v in vectors))


if __name__ == "__main__":
    main()
