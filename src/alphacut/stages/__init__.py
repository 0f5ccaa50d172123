"""The pipeline's stages, one module each, in the order an image meets them:
decode → preprocess → infer → mask → refine → compose → encode → verify → output.

``alphacut.pipeline`` is the one path that calls them; the rules they follow are in
``docs/alpha-contract.md``.
"""
