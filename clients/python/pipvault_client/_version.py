"""Distribution version."""

from __future__ import annotations

__version__ = "0.1.0"
USER_AGENT = f"pipvault-client/{__version__}"
