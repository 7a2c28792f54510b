"""A venue's endpoint allow-list and fund-moving block-list, declared as data.

An endpoint passes only if it is listed (exactly, or by a per-method pattern), no blocked word
occurs in its decoded, lower-cased path, and no guarded word occurs in it unless the endpoint
is one of that word's exceptions (Binance's ``/sapi/`` except ``apiRestrictions``). Only the
path counts: a query string never changes the verdict, and the error names the path alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

from vault_server.brokers.base import deny_endpoint

Endpoint = tuple[str, str]  # (METHOD, path)


@dataclass(frozen=True)
class Endpoints:
    allowed: frozenset[Endpoint] = frozenset()
    # (methods, pattern): paths with identifiers in them (order ids, account ids).
    patterns: tuple[tuple[frozenset[str], re.Pattern[str]], ...] = ()
    blocked_words: tuple[str, ...] = ()
    guarded: Mapping[str, frozenset[Endpoint]] = field(default_factory=dict)
    # Listed endpoints already found to pass (a finite set: never a path with an id in it).
    _passed: set[Endpoint] = field(default_factory=set, compare=False, repr=False)

    def check(self, method: str, path: str) -> None:
        """Raise ``EndpointNotAllowed`` unless ``method path`` passes (see the module doc)."""
        clean, verb = path.split("?", 1)[0], method.upper()
        key = (verb, clean)
        if key in self._passed:
            return
        folded = unquote(clean).lower()
        listed = key in self.allowed or any(
            verb in methods and pattern.fullmatch(clean) for methods, pattern in self.patterns
        )
        blocked = any(word in folded for word in self.blocked_words) or any(
            word in folded and key not in exceptions for word, exceptions in self.guarded.items()
        )
        if blocked or not listed:
            raise deny_endpoint(method, path)
        if key in self.allowed:
            self._passed.add(key)


def methods(*names: str) -> frozenset[str]:
    return frozenset(names)


def venue_path(url: str, base: str) -> str:
    """The path of ``url`` below the venue's base URL, without the query: what the allow-list is
    written for (IG's base ends in ``/gateway/deal``, DXtrade's in ``/dxsca-web``). A URL outside
    ``base`` keeps its whole path, which no allow-list names."""
    bare = url.split("?", 1)[0]
    prefix = base.rstrip("/")
    if prefix and bare.startswith(prefix + "/"):
        return bare[len(prefix) :]
    return "/" + bare.split("://", 1)[-1].split("/", 1)[-1]
