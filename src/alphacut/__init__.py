"""alphacut: background removal that never uploads your image.

    import alphacut
    cut = alphacut.remove("photo.jpg")          # path, bytes or PIL image
    cut.mask                                   # float32 (H, W) in [0, 1]
    cut.rgba                                   # uint8 (H, W, 4), straight alpha, RGB untouched
    cut.save("photo.png")                      # encoded, decoded again, checked, written atomically

    remover = alphacut.Remover()  # one session for many images
"""

from alphacut.errors import AlphacutError, InputError, ModelError, OutputError, VerifyError
from alphacut.pipeline import CutOut, Remover, remove

__all__ = [
    "AlphacutError",
    "CutOut",
    "InputError",
    "ModelError",
    "OutputError",
    "Remover",
    "VerifyError",
    "remove",
]
__version__ = "0.1.0"
