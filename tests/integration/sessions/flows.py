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


def stub_tokens(stub: Any) -> list[str]:
    """Every token the stub issued (the canary scan looks for each)."""
    return [str(t) for t in getattr(stub, "issued_tokens", [])]
