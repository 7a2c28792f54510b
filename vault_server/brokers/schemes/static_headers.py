"""No signature: the credential itself travels in headers (OANDA bearer token, Alpaca keys).

Such a request is only ever sent by the vault (proxy mode: the venue spec is ``proxy_only``);
every header that carries credential material is a ``RedactedHeader`` (masked in ``repr`` and
scrubbed from the venue's answer). ``expire_at_ms`` is the vault's own freshness window
(``now + recv_window``): these venues have none. The JSON body, if any, is sent compact with
``Content-Type: application/json`` after the fixed headers; ``params`` form the query string.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from vault_server.brokers import _http_common as hc
from vault_server.brokers import _signing_common as sc
from vault_server.brokers.base import PreparedRequest, SigningContext, VenueCredential

if TYPE_CHECKING:
    from vault_server.brokers.spec import Call

Source = Literal["api_key", "secret", "bearer_secret"]


@dataclass(frozen=True)
class StaticHeaders:
    headers: tuple[tuple[str, Source], ...]
    fixed: tuple[tuple[str, str], ...] = ()

    def sign(
        self, call: Call, base: str, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest:
        headers: list[tuple[str, str]] = [
            (name, _value(source, credential)) for name, source in self.headers
        ]
        headers += self.fixed
        body = b""
        if call.json is not None:
            body = hc.compact_json(call.json)
            headers.append(("Content-Type", "application/json"))
        url = base + call.path
        if call.params:
            url += "?" + sc.percent_encode(call.params)
        now = sc.now_ms(ctx)
        return PreparedRequest(
            call.method, url, tuple(headers), body, expire_at_ms=now + sc.recv_window_ms(ctx)
        )


def _value(source: Source, credential: VenueCredential) -> hc.RedactedHeader:
    if source == "api_key":
        # The key id is marked too: callers see only its masked hint.
        return hc.RedactedHeader(credential.api_key)
    secret = hc.secret_header(credential.secret, "credential.secret")
    return hc.RedactedHeader("Bearer " + secret) if source == "bearer_secret" else secret
