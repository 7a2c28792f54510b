"""``python -m vaultctl``."""

from __future__ import annotations

import sys

from vaultctl.main import main

sys.exit(main())
