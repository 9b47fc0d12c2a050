"""One exception family, so every stage fails with a message a user can act on.

Each error names the thing that is wrong (a file, a config key, a URL) and
what to do about it. Scripts let these propagate: Snakemake prints the message
and marks the job failed, and atomic writes guarantee nothing half-written is
left behind.
"""

from __future__ import annotations


class CxrmaskError(Exception):
    """Base class: a problem the user can fix, described in plain words."""


class ConfigError(CxrmaskError):
    """A config key is missing, unknown or has a value out of range."""


class InputError(CxrmaskError):
    """An input file is missing, unreadable, corrupt or of an unexpected kind."""


class DecodeError(InputError):
    """An image file exists but cannot be decoded (corrupt, truncated, not an image)."""


class DownloadError(CxrmaskError):
    """A download failed after its retries, or the server refused it."""


class ChecksumError(DownloadError):
    """A file's digest differs from the expected one."""
