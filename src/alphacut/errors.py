"""Errors a user can read: each says which file and what went wrong, in one line.

Every failure that reaches the CLI or the HTTP API is an ``AlphacutError``; anything else is a
bug. The subclasses let callers (batch runner, HTTP API) map failures to exit codes and
status codes without parsing messages.
"""

from __future__ import annotations


class AlphacutError(Exception):
    """Base class: a clear, specific failure that is reported, not a crash."""


class UsageError(AlphacutError, ValueError):
    """A request no entry point accepts, found before any work (CLI exit 2, HTTP 400)."""


class InputError(AlphacutError):
    """The input cannot be read or decoded (empty, truncated, not an image, unsupported)."""


class ImageTooLargeError(InputError):
    """The image has more pixels than the configured limit (read from the header, not decoded)."""


class OutputError(AlphacutError):
    """An output cannot be written (exists, not writable, format limit, disk full)."""


class VerifyError(AlphacutError):
    """A written file did not decode back to the pixels we intended to write."""


class ModelError(AlphacutError):
    """A model is unknown, missing, corrupt, gated or cannot be loaded."""


class DownloadError(ModelError):
    """A model download failed after all retries, or its bytes did not verify."""
