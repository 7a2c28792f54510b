"""Distribution version: the installed ``pipvault-client``'s, as its metadata records it."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pipvault-client")
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"
USER_AGENT = f"pipvault-client/{__version__}"
