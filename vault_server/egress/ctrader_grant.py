"""What a cTrader consent grants, asked once at onboarding (blocking, on a storage thread).

A consent's scope is ``SCOPE_VIEW`` (0, accounts) or ``SCOPE_TRADE`` (1, trading), and cTrader
reports it only over the Open API connection: ``ProtoOAApplicationAuthReq`` (2100 -> 2101), then
``ProtoOAGetAccountListByAccessTokenReq`` (2149 -> 2150: ``permissionScope`` and the granted
``ctidTraderAccount`` list; https://help.ctrader.com/open-api/account-authentication/). This opens
a short connection of its own for that question, bounded by the call's deadline, and closes it;
the trading transport (``ctrader.py``) is not involved. Nothing is logged: frames carry tokens.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from vault_server.core.errors import VenueTimeout, VenueUnavailable
from vault_server.core.secret import Secret

APP_AUTH, APP_AUTH_RES, ACCOUNTS, ACCOUNTS_RES, ERROR_RES = 2100, 2101, 2149, 2150, 2142


@dataclass(frozen=True)
class Grant:
    scope: int  # 0 SCOPE_VIEW, 1 SCOPE_TRADE
    accounts: frozenset[int]


def grant_of(
    base_url: str, client_id: str, client_secret: Secret, access_token: str,
    timeout_s: float | None,
) -> Grant:  # fmt: skip
    """The scope and accounts ``access_token`` grants (``VenueUnavailable`` when cTrader cannot
    say: a refused application or token is a failed onboarding, not a guess)."""
    parts = urlsplit(base_url)
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    bound = 10.0 if timeout_s is None else max(0.05, min(10.0, timeout_s - 0.25))
    deadline = time.monotonic() + bound
    try:
        with connect(f"{scheme}://{parts.netloc}/", open_timeout=bound, logger=None) as ws:
            app = {"clientId": client_id, "clientSecret": client_secret.reveal_text()}
            _ask(ws, APP_AUTH, app, APP_AUTH_RES, deadline)
            answer = _ask(ws, ACCOUNTS, {"accessToken": access_token}, ACCOUNTS_RES, deadline)
    except TimeoutError:
        raise VenueTimeout("cTrader did not say what the consent grants in time") from None
    except (OSError, WebSocketException):
        raise VenueUnavailable("cTrader could not be asked what the consent grants") from None
    scope = answer.get("permissionScope", 0)
    accounts = [a.get("ctidTraderAccountId") for a in answer.get("ctidTraderAccount") or []]
    return Grant(
        int(scope) if isinstance(scope, int) else 0,
        frozenset(a for a in accounts if isinstance(a, int)),
    )


def _ask(
    ws: ClientConnection, kind: int, payload: Mapping[str, Any], wanted: int, deadline: float
) -> dict[str, Any]:
    ws.send(json.dumps({"clientMsgId": f"grant-{kind}", "payloadType": kind, "payload": payload}))
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        message = json.loads(ws.recv(timeout=left))
        got, body = message.get("payloadType"), message.get("payload") or {}
        if got == wanted:
            return dict(body)
        if got == ERROR_RES:
            code = str(body.get("errorCode", ""))[:64]
            raise VenueUnavailable(
                "cTrader refused the application or the token", metadata={"errorCode": code}
            )
