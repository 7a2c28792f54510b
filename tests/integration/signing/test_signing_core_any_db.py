"""The core sign / refuse flow on both stores: SQLite and PostgreSQL (as the non-owner app role,
under row-level security). One signature verified independently, its ``credential.use`` event,
and the main refusals with their reasons and audit events."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import parse_qsl

import grpc

from tests.support import signing_flow as sf
from tests.support.vault import RunningVault


def test_sign_and_refuse_on_every_store(vault_any_db: RunningVault) -> None:
    vault = vault_any_db
    sf.create_workspace(vault, "ws-a")
    sf.create_workspace(vault, "ws-b")
    key = sf.binance_hmac(sf.BINANCE_DOC_KEY, sf.BINANCE_DOC_SECRET)
    cred = sf.onboard(vault, key, "bn")
    rc = sf.begin(vault, cred.name).name
    order = sf.place_for(key, "core1")

    # Signed: the default venue URL (no override), HMAC over the exact query string.
    mark = sf.last_audit_id(vault)
    signed = sf.sign(vault, rc, order)
    req = signed.signed_request
    assert req.url.startswith("https://api.binance.com/api/v3/order?symbol=LTCBTC&")
    payload, _, signature = req.url.split("?", 1)[1].rpartition("&signature=")
    expected = hmac.new(sf.BINANCE_DOC_SECRET.encode(), payload.encode(), hashlib.sha256)
    assert hmac.compare_digest(signature, expected.hexdigest())
    params = dict(parse_qsl(payload))
    assert sf.expire_ms(req) == int(params["timestamp"]) + int(params["recvWindow"])
    assert int(params["recvWindow"]) <= 5000
    [use] = sf.audit_rows(vault, after=mark)
    assert use.key() == ("credential.use", "success", "")
    assert (use.actor_id, use.credential, use.routing_context) == ("router", cred.name, rc)
    assert use.details["clientOrderId"] == "core1" and use.details["path"] == "/api/v3/order"
    assert signed.audit_event == f"workspaces/ws-a/auditEvents/{use.seq}"
    assert sf.BINANCE_DOC_SECRET not in use.raw

    def refused(request: object, who: str = "router") -> tuple[grpc.StatusCode, str, sf.AuditRow]:
        err, rows = sf.refusal(vault, "SignOrder", request, who=who)
        assert len(rows) == 1, rows
        return err.code, err.reason, rows[0]

    # The same client order id again, inside its window.
    code, reason, row = refused(sf.sign_request(rc, order))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "DUPLICATE_CLIENT_ORDER_ID")
    assert row.key() == ("credential.use", "denied", "DUPLICATE_CLIENT_ORDER_ID")
    assert row.credential == cred.name

    # A policy rule, after UpdateCredentialPolicy.
    sf.update_policy(vault, cred.name, sf.policy(symbols=["ETHBTC"]))
    err, rows = sf.refusal(vault, "SignOrder", sf.sign_request(rc, sf.place_for(key)))
    assert (err.reason, err.metadata["rule"]) == ("ORDER_POLICY_VIOLATION", "allowed_symbols")
    assert [r.key() for r in rows] == [("credential.use", "denied", "ORDER_POLICY_VIOLATION")]

    # No routing context: refused, audited as a read outside a context, and paged.
    pages_before = len(sf.pages(vault))
    code, reason, row = refused(sf.sign_request("", order, credential=cred.name))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "ROUTING_CONTEXT_REQUIRED")
    assert row.key() == ("credential.read", "denied", "ROUTING_CONTEXT_REQUIRED")
    assert row.credential == cred.name and row.workspace == "workspaces/ws-a"
    assert len(sf.pages(vault)) == pages_before + 1

    # Another principal's context (router-b, granted ws-b only): NOT_FOUND, denied at the edge
    # on the system chain (nothing is written into a workspace the caller cannot see).
    code, reason, row = refused(sf.sign_request(rc, sf.place_for(key)), who="router-b")
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "RESOURCE_NOT_FOUND")
    assert row.key() == ("auth.denied", "denied", "RESOURCE_NOT_FOUND")
    assert row.actor_id == "router-b" and row.credential == "" and row.workspace == ""

    # An ended context.
    sf.update_policy(vault, cred.name, sf.policy())
    sf.end(vault, rc)
    code, reason, row = refused(sf.sign_request(rc, sf.place_for(key)))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "ROUTING_CONTEXT_REQUIRED")
    assert row.key() == ("credential.read", "denied", "ROUTING_CONTEXT_REQUIRED")

    # A revoked credential.
    rc = sf.begin(vault, cred.name).name
    sf.sign(vault, rc, sf.place_for(key))  # still signs before the revocation
    sf.revoke(vault, cred.name)
    code, reason, row = refused(sf.sign_request(rc, sf.place_for(key)))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "CREDENTIAL_REVOKED")
    assert row.key() == ("credential.use", "denied", "CREDENTIAL_REVOKED")
    audit_text = "\n".join(r.raw for r in sf.audit_rows(vault))
    assert sf.BINANCE_DOC_SECRET not in audit_text


def test_client_order_id_free_after_its_window_on_every_store(vault_any_db: RunningVault) -> None:
    vault = vault_any_db
    sf.create_workspace(vault)
    key = sf.binance_hmac()
    limits = sf.policy(max_orders=3, rate_interval_s=60, max_freshness_ms=1000)
    cred = sf.onboard(vault, key, "bn", policy=limits)
    rc = sf.begin(vault, cred.name).name
    first = sf.sign(vault, rc, sf.place_for(key, "reuse1")).signed_request
    err, _ = sf.refusal(vault, "SignOrder", sf.sign_request(rc, sf.place_for(key, "reuse1")))
    assert err.reason == "DUPLICATE_CLIENT_ORDER_ID"
    time.sleep(max(0.0, sf.expire_ms(first) / 1000 - time.time()) + 0.1)
    again = sf.sign(vault, rc, sf.place_for(key, "reuse1")).signed_request
    assert again.url != first.url
    sf.sign(vault, rc, sf.place_for(key, "reuse2"))
    err, _ = sf.refusal(vault, "SignOrder", sf.sign_request(rc, sf.place_for(key, "reuse3")))
    assert (err.reason, err.metadata) == (
        "ORDER_POLICY_VIOLATION", {"rule": "max_orders_per_interval"},
    )  # fmt: skip
