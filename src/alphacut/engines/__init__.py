"""Ways to run the pipeline over many images: the local batch runner (``batch``) used by the
CLI, and the Ray engine (``ray``, an optional extra the core never imports)."""
