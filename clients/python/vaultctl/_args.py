"""An ArgumentParser that never abbreviates options nor echoes stray values."""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias

_LONG = re.compile(r"--[a-z][a-z0-9-]*")
_SHORT = re.compile(r"-[A-Za-z]")
_EXPLICIT = re.compile(r"ignored explicit argument .*", re.DOTALL)


class SafeArgumentParser(argparse.ArgumentParser):
    """No abbreviated options (``--secret`` must never turn into ``--secret-stdin``), and
    error messages that do not echo unrecognized values nor a value given to a switch (they may
    be a misplaced secret)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        prefix = "unrecognized arguments: "
        if message.startswith(prefix):
            words = message.removeprefix(prefix).split(" ")
            message = prefix + " ".join(_redact(word) for word in words)
        # ``--secret-stdin=VALUE``, ``--authorization-code=VALUE``: a switch given a value.
        message = _EXPLICIT.sub("ignored explicit argument <value>", message)
        super().error(message)


def _redact(word: str) -> str:
    option, sep, _ = word.partition("=")
    if not (_LONG.fullmatch(option) or _SHORT.fullmatch(option) or option == "--"):
        return "<value>"
    return option + ("=<value>" if sep else "")


if TYPE_CHECKING:
    Subparsers: TypeAlias = argparse._SubParsersAction[SafeArgumentParser]
