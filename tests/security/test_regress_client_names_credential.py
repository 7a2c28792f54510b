"""Regression (issue 12): the Python clients can name the credential on SignOrder/ExecuteOrder, so a
call without a routing context pages about that credential instead of "an unknown credential"."""

from __future__ import annotations

import asyncio
import secrets

import pipvault_client as pv
import pytest
from pipsync.vault.v1 import trading_pb2
from sqlalchemy import select

from tests.support.custody import make_workspace, onboard
from tests.support.vault import RunningVault, inspect_db
from vault_server.storage.models import PagerOutbox


def _pages(vault: RunningVault) -> list[dict[str, object]]:
    db = inspect_db(vault.app)
    with db.transaction() as session:
        return [r.payload for r in session.scalars(select(PagerOutbox).order_by(PagerOutbox.id))]


def _order() -> trading_pb2.Order:
    return trading_pb2.Order(operation=trading_pb2.ORDER_OPERATION_QUERY_ACCOUNT)


def test_sync_and_async_clients_name_the_credential_in_the_page(vault: RunningVault) -> None:
    make_workspace(vault, "ws-a")
    cred = onboard(vault, "ws-a", "c1", "K" * 24, secrets.token_hex(32))
    token = vault.tokens["router"]
    with pv.VaultClient(vault.data_target, token=token) as client:
        with pytest.raises(pv.VaultClientError) as refused:
            client.sign_order("", _order(), reason="no context", credential=cred.name)
        assert refused.value.reason == "ROUTING_CONTEXT_REQUIRED"

    (page,) = _pages(vault)
    assert cred.name in str(page["summary"]) and "unknown credential" not in str(page["summary"])
    assert page["custom_details"]["credential"] == cred.name  # type: ignore[index]

    # The async client exposes the same field (ExecuteOrder here); a second credential, so the
    # dedup bucket of the first does not swallow the page.
    cred2 = onboard(vault, "ws-a", "c2", "M" * 24, secrets.token_hex(32))

    async def execute() -> str:
        async with pv.AsyncVaultClient(vault.data_target, token=token) as aclient:
            try:
                await aclient.execute_order("", _order(), reason="no ctx", credential=cred2.name)
            except pv.VaultClientError as exc:
                return exc.reason
        return "OK"

    assert asyncio.run(execute()) == "ROUTING_CONTEXT_REQUIRED"
    summaries = [str(p["summary"]) for p in _pages(vault)]
    assert len(summaries) == 2 and cred2.name in summaries[1]
