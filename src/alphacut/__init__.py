"""alphacut: background removal that never uploads your image.

    import alphacut
    cut = alphacut.remove("photo.jpg")          # path, bytes or PIL image
    cut.mask                                   # float32 (H, W) in [0, 1]
    cut.rgba                                   # uint8 (H, W, 4), straight alpha, RGB untouched
    cut.save("photo.png")                      # encoded, decoded again, checked, written atomically

    remover = alphacut.Remover()  # one session for many images
    remover.remove("b.png", options=alphacut.Options(refine="none", quality="best"))
"""

import os as _os

# ONNX Runtime 1.29+ starts a telemetry uploader when it is imported: on Linux and macOS it
# writes a device id and an event queue under ~/.cache/Microsoft/DeveloperTools/.onnxruntime.
# ORT_DISABLE_TELEMETRY=1, read at that import, stops all of it (no uploader, no file); set
# here, first, so every entry point (CLI, server, library, Ray workers) has it before
# ONNX Runtime is loaded. A value of 0 left by the user is overridden on purpose.
_os.environ["ORT_DISABLE_TELEMETRY"] = "1"
_os.environ["ORT_TELEMETRY_DISABLED"] = "1"  # the name ONNX Runtime's tracker also uses; harmless where unread

from alphacut.errors import AlphacutError, InputError, ModelError, OutputError, VerifyError
from alphacut.options import OptionError, Options
from alphacut.pipeline import CutOut, Remover, remove

__all__ = [
    "AlphacutError",
    "CutOut",
    "InputError",
    "ModelError",
    "OptionError",
    "Options",
    "OutputError",
    "Remover",
    "VerifyError",
    "remove",
]
__version__ = "0.1.0"
