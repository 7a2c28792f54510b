"""Every detached venue's SignOrder output verifies with an independent implementation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import urllib.parse
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from pipsync.vault.v1 import credential_pb2, trading_pb2
from pipsync.vault.v1 import credential_service_pb2 as cpb
from pipsync.vault.v1 import signing_service_pb2 as spb
from pipsync.vault.v1 import signing_service_pb2_grpc as sgrpc

from tests.support.custody import creds, make_workspace
from tests.support.vault import RunningVault


def _sign(vault: RunningVault, credential: str, order: trading_pb2.Order) -> spb.SignedRequest:
    stub = sgrpc.SigningServiceStub(vault.channel(vault.socket_target))
    rc = stub.BeginRouting(spb.BeginRoutingRequest(credential=credential, strategy_id="s", reason="r"),
                           metadata=vault.md("router"), timeout=10).routing_context  # fmt: skip
    return stub.SignOrder(spb.SignOrderRequest(routing_context=rc.name, order=order, reason="r"),
                          metadata=vault.md("router"), timeout=10).signed_request  # fmt: skip


def _create(vault: RunningVault, cred_id: str, **fields: Any) -> str:
    return creds(vault).CreateCredential(
        cpb.CreateCredentialRequest(parent="workspaces/ws-a", credential_id=cred_id, reason="r", **fields),
        metadata=vault.md("onboarding"), timeout=10,
    ).credential.name  # fmt: skip


def _order(symbol: str, coid: str, **extra: Any) -> trading_pb2.Order:
    return trading_pb2.Order(
        operation=trading_pb2.ORDER_OPERATION_PLACE, symbol=symbol, side=trading_pb2.ORDER_SIDE_BUY,
        type=trading_pb2.ORDER_TYPE_LIMIT, quantity="1", price="100", client_order_id=coid, **extra,
    )  # fmt: skip


def _headers(req: spb.SignedRequest) -> dict[str, str]:
    return {h.name: h.value for h in req.headers}


def test_bybit_okx_coinbase_and_generated_ed25519(vault: RunningVault) -> None:
    make_workspace(vault, "ws-a")
    hmac_secret = secrets.token_hex(20)
    # Bybit v5: HMAC-SHA256 hex over ts + key + recv_window + exact body.
    name = _create(vault, "bybit", broker=trading_pb2.BROKER_BYBIT, environment=trading_pb2.ENVIRONMENT_TESTNET,
                   key_algorithm=trading_pb2.KEY_ALGORITHM_HMAC_SHA256, scopes=["ContractTrade"],
                   material=credential_pb2.SecretMaterial(api_key="BYBITKEY123", secret=hmac_secret))  # fmt: skip
    req = _sign(vault, name, _order("BTCUSDT", "bb1", extras={"category": "linear"}))
    h = _headers(req)
    prehash = (
        h["X-BAPI-TIMESTAMP"].encode()
        + b"BYBITKEY123"
        + h["X-BAPI-RECV-WINDOW"].encode()
        + req.body
    )
    assert h["X-BAPI-SIGN"] == hmac.new(hmac_secret.encode(), prehash, hashlib.sha256).hexdigest()
    # OKX v5: base64 HMAC-SHA256 over ts + METHOD + path + body.
    name = _create(vault, "okx", broker=trading_pb2.BROKER_OKX, environment=trading_pb2.ENVIRONMENT_PAPER,
                   key_algorithm=trading_pb2.KEY_ALGORITHM_HMAC_SHA256, scopes=["trade"],
                   material=credential_pb2.SecretMaterial(api_key="okx-key", secret=hmac_secret, passphrase="pp"))  # fmt: skip
    req = _sign(vault, name, _order("BTC-USDT", "ok1"))
    h = _headers(req)
    path = urllib.parse.urlsplit(req.url).path
    prehash = (h["OK-ACCESS-TIMESTAMP"] + req.method + path).encode() + req.body
    assert (
        h["OK-ACCESS-SIGN"]
        == base64.b64encode(
            hmac.new(hmac_secret.encode(), prehash, hashlib.sha256).digest()
        ).decode()
    )
    assert h["x-simulated-trading"] == "1"
    # Coinbase Advanced: ES256 JWT verified with the public key; uri binds method + path.
    ec_key = ec.generate_private_key(ec.SECP256R1())
    pem = ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    key_name = "organizations/test-org/apiKeys/test-key"
    name = _create(vault, "cb", broker=trading_pb2.BROKER_COINBASE_ADVANCED, environment=trading_pb2.ENVIRONMENT_LIVE,
                   key_algorithm=trading_pb2.KEY_ALGORITHM_ECDSA_P256, scopes=["view", "trade"],
                   material=credential_pb2.SecretMaterial(api_key=key_name, private_key=pem))  # fmt: skip
    req = _sign(vault, name, _order("BTC-USD", "cb1"))
    token = _headers(req)["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(
        token, ec_key.public_key(), algorithms=["ES256"], options={"verify_aud": False}
    )
    assert (
        claims["sub"] == key_name
        and claims["uri"] == f"POST api.coinbase.com{urllib.parse.urlsplit(req.url).path}"
    )
    assert claims["exp"] - claims["nbf"] == 120
    # Binance Spot with a vault-generated Ed25519 key: only the public key ever left the vault.
    made = creds(vault).GenerateCredentialKey(
        cpb.GenerateCredentialKeyRequest(parent="workspaces/ws-a", credential_id="bn-ed", broker=trading_pb2.BROKER_BINANCE_SPOT,
                                         environment=trading_pb2.ENVIRONMENT_LIVE, key_algorithm=trading_pb2.KEY_ALGORITHM_ED25519,
                                         scopes=["enableSpotAndMarginTrading"], reason="gen"),
        metadata=vault.md("onboarding"), timeout=10,
    )  # fmt: skip
    creds(vault).AttachCredentialApiKey(
        cpb.AttachCredentialApiKeyRequest(name=made.credential.name, api_key="ED25519KEYID", reason="attach"),
        metadata=vault.md("onboarding"), timeout=10,
    )  # fmt: skip
    req = _sign(vault, made.credential.name, _order("LTCBTC", "ed1"))
    query = req.url.split("?", 1)[1]
    payload, _, signature = query.rpartition("&signature=")
    public = serialization.load_pem_public_key(made.public_key.encode())
    assert isinstance(public, ed25519.Ed25519PublicKey)
    public.verify(base64.b64decode(urllib.parse.unquote(signature)), payload.encode())
    assert _headers(req)["X-MBX-APIKEY"] == "ED25519KEYID"
