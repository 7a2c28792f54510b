"""The call's metadata as the pipeline reads it: one value per header, or a refusal.

gRPC lets a header repeat, and reading metadata into a dict keeps the last copy: ``[junk, valid]``
authenticated, and ``[auditor, security]`` ran an admin RPC as ``security`` while a proxy or log
that looked at the first copy saw ``auditor``. The headers the vault reads as one value (the
identity, who it acts for, the reason, the forwarded address) are therefore refused when they
repeat, never merged or picked from, and a repeated header is left out of the mapping altogether
so nothing downstream (peer address, audit reason) can read one of its copies by accident.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vault_server.core.errors import InvalidArgument, Unauthenticated
from vault_server.rpc.admission import FORWARDED_HEADER, ON_BEHALF_HEADER, REASON_HEADER

AUTHORIZATION_HEADER = "authorization"
# Refused when repeated: authorization as UNAUTHENTICATED, the others as INVALID_ARGUMENT.
SINGLE_VALUED = (AUTHORIZATION_HEADER, ON_BEHALF_HEADER, REASON_HEADER, FORWARDED_HEADER)


@dataclass(frozen=True)
class CallHeaders:
    values: dict[str, str]
    repeated: frozenset[str]

    def refuse_repeated_identity(self) -> None:
        """Before identifying the caller: two credentials are no credential."""
        if AUTHORIZATION_HEADER in self.repeated:
            raise Unauthenticated(
                "the authorization header must appear at most once",
                metadata={"header": AUTHORIZATION_HEADER},
            )

    def refuse_repeated(self) -> None:
        """After identifying the caller (so the refusal is audited with its actor)."""
        for header in SINGLE_VALUED[1:]:
            if header in self.repeated:
                raise InvalidArgument(header, "must appear at most once")


def read_headers(metadata: Iterable[tuple[str, Any]] | None) -> CallHeaders:
    """Text headers by name (binary ``-bin`` values are not read by the pipeline)."""
    values: dict[str, str] = {}
    repeated: set[str] = set()
    for key, value in metadata or ():
        if not isinstance(value, str):
            continue
        if key in values and key in SINGLE_VALUED:
            repeated.add(key)
        values[key] = value
    for key in repeated:
        del values[key]
    return CallHeaders(values, frozenset(repeated))
