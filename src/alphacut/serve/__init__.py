"""The local app: the Starlette server (``app``), its HTTP API (``api``), the static-site
writer (``site``), and the browser app's files (``web/``, ``api_docs/``)."""
