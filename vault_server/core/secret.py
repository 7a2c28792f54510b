"""A container for secret material that refuses to reveal itself by accident.

``Secret`` is how every layer holds key material, API secrets, passphrases and private keys in
memory. Its ``repr``/``str``/``format`` print a fixed mask, it cannot be pickled or copied into a
protobuf text dump, and equality is constant-time. The only way to the bytes is the explicit
``reveal()`` call, which is easy to grep for in review. The logging pipeline drops any event field
holding a ``Secret`` (``observability.logging``).

The bytes live in a private ``bytearray`` that ``wipe()`` zeroes in place once the owner is done
with them (data keys after sealing or rewrapping, secrets read from the environment). Limits of
Python, stated plainly: ``reveal()`` hands out an immutable ``bytes`` copy, and that copy, the
``str``/``bytes`` a secret arrived in (protobuf fields, environment strings) and whatever a
library (OpenSSL, hmac) derives from it are freed by the garbage collector without being
zeroed; the allocator may also have moved old copies. Wiping shortens the life of the one copy
we own; it is not a guarantee that no copy remains in the heap (core dumps are disabled and the
process is non-dumpable for that reason).
"""

from __future__ import annotations

import hmac
from typing import Any, NoReturn

_MASK = "Secret(***)"


class Secret:
    """Opaque secret bytes. ``reveal()`` is the only accessor."""

    __slots__ = ("__value",)

    def __init__(self, value: bytes | str) -> None:
        if isinstance(value, str):
            value = value.encode("utf-8")
        if not isinstance(value, bytes | bytearray):
            raise TypeError("Secret holds bytes or str")
        self.__value = bytearray(value)

    def reveal(self) -> bytes:
        """Return the secret bytes. Call only where the bytes are about to be used."""
        return bytes(self.__value)

    def reveal_text(self) -> str:
        """Return the secret as UTF-8 text (API secrets, passphrases, PEM keys)."""
        return self.__value.decode("utf-8")

    def wipe(self) -> None:
        """Zero the held bytes in place and empty the secret (copies already revealed stay)."""
        value = self.__value
        value[:] = bytes(len(value))
        del value[:]

    def __len__(self) -> int:
        return len(self.__value)

    def __bool__(self) -> bool:
        return bool(self.__value)

    def __repr__(self) -> str:
        return _MASK

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self.__value, other.__value)

    def __hash__(self) -> int:
        # Hashing by identity keeps secrets usable in sets without exposing a value-derived hash.
        return id(self)

    def __reduce__(self) -> NoReturn:
        raise TypeError("Secret cannot be pickled")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("Secret cannot be pickled")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self


def is_secret(value: object) -> bool:
    """True when ``value`` is (or directly contains) a ``Secret``; used by log redaction."""
    if isinstance(value, Secret):
        return True
    if isinstance(value, dict):
        return any(is_secret(v) for v in value.values())
    if isinstance(value, list | tuple | set | frozenset):
        return any(is_secret(v) for v in value)
    return False
