"""The session venues the shared session tests run over, and how they onboard one.

A venue joins by exporting ``FLOW`` from its stub module (``tests/venue_stubs/<venue>_stub.py``)
once its venue module is implemented (not ``PLANNED``).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from pipsync.vault.v1 import credential_pb2, trading_pb2

import tests.venue_stubs
from tests.support import signing_flow as sf
from tests.support.forex_flow import Account, VenueFlow
from vault_server.brokers.base import KeyAlgorithm, Venue
from vault_server.brokers.lifecycle import Lifecycle
from vault_server.brokers.registry import PLANNED, adapter_for
from vault_server.rpc.convert_credentials import ALGORITHMS


def _discover() -> list[VenueFlow]:
    found = []
    for info in pkgutil.iter_modules(tests.venue_stubs.__path__):
        if not info.name.endswith("_stub"):
            continue
        module = importlib.import_module(f"tests.venue_stubs.{info.name}")
        flow = getattr(module, "FLOW", None)
        if isinstance(flow, VenueFlow) and Venue(flow.venue) not in PLANNED:
            found.append(flow)
    return sorted(found, key=lambda f: f.venue)


FLOWS = _discover()


def algorithm_of(flow: VenueFlow) -> int:
    """The API key algorithm of the venue (each session venue accepts exactly one)."""
    [algorithm] = adapter_for(Venue(flow.venue)).algorithms
    assert isinstance(algorithm, KeyAlgorithm)
    return next(number for number, value in ALGORITHMS.items() if value is algorithm)


def create_request(flow: VenueFlow, account: Account, cred_id: str, *, ws: str = sf.WS) -> Any:
    """Onboarding as a platform would do it: single tier acknowledged, symbols and size capped."""
    return sf.cpb.CreateCredentialRequest(
        parent=f"workspaces/{ws}", credential_id=cred_id, display_name=f"{flow.venue} account",
        broker=flow.broker, environment=trading_pb2.ENVIRONMENT_PAPER,
        key_algorithm=algorithm_of(flow),
        material=credential_pb2.SecretMaterial(**flow.material(account)),
        scopes=["trade"], acknowledge_single_permission_tier=True,
        policy=sf.policy(symbols=[flow.symbol], max_quantity="1000000"),
        reason="session venue onboarding",
    )  # fmt: skip


def is_oauth(flow: VenueFlow) -> bool:
    session = adapter_for(Venue(flow.venue)).session
    return session is not None and session.lifecycle is Lifecycle.OAUTH_CONSENT


def uses_transport(flow: VenueFlow) -> bool:
    """The venue's orders travel over a persistent connection, not one HTTP request each."""
    return bool(getattr(adapter_for(Venue(flow.venue)).session, "transport", ""))


def position_side(flow: VenueFlow) -> dict[str, int]:
    """``side`` (the position's: BUY) for a venue that deals a close against it, else nothing
    (a venue that acts on a position by its id alone refuses a side it would ignore)."""
    adapter = adapter_for(Venue(flow.venue))
    uses = getattr(getattr(adapter, "spec", None), "position_side", False)
    return {"side": trading_pb2.ORDER_SIDE_BUY} if uses else {}


def set_application(vault: Any, flow: VenueFlow, account: Account) -> None:
    """An OAuth venue's platform application (the stubs take the account's api key and
    password as the platform's client id and secret), set as the security team would."""
    sf.credentials(vault).SetPlatformApplication(
        sf.cpb.SetPlatformApplicationRequest(
            broker=flow.broker, environment=trading_pb2.ENVIRONMENT_PAPER,
            client_id=account.api_key, client_secret=account.password, reason="oauth venue",
        ),
        metadata=vault.md("security"), timeout=15,
    )  # fmt: skip


def onboard(vault: Any, flow: VenueFlow, account: Account, cred_id: str) -> Any:
    """CreateCredential as a platform would (its OAuth application set first where needed)."""
    if is_oauth(flow):
        set_application(vault, flow, account)
    return (
        sf.credentials(vault)
        .CreateCredential(
            create_request(flow, account, cred_id), metadata=vault.md("onboarding"), timeout=15
        )
        .credential
    )


def stub_tokens(stub: Any) -> list[str]:
    """Every token the stub issued (the canary scan looks for each)."""
    return [str(t) for t in getattr(stub, "issued_tokens", [])]
