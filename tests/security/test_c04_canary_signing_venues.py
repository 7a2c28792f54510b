"""Canary: secrets never leave the vault through the signing path.

Every credential's secret is a random ``CANARY-<uuid>`` (Kraken's base64 secret is the canary's
base64), or a freshly generated private key. The test drives BeginRouting, SignOrder and
ExecuteOrder for every venue, including refused calls and venue errors, plus attestations, with
the vault logging at DEBUG. Then no response message (serialized), no error (message, ErrorInfo,
trailers), no audit row, no page, no log line (stdout/stderr) and no file under the vault's home
(the database included) holds the canary: raw, hex, base64 or urlsafe base64 at any alignment.

The one exception is OKX's passphrase, which OKX's protocol sends in the ``OK-ACCESS-PASSPHRASE``
header of the detached request (documented and warned about at onboarding): it may appear there
and nowhere else.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import serialization

from tests.support import signing_flow as sf
from tests.support.canary import find, new_canary
from tests.support.errors import call_error
from tests.support.signing_flow import B, VenueKey, Wired
from vault_server.observability.logging import configure_logging


def _canary_keys(canary: str, phrase: str) -> list[tuple[str, VenueKey]]:
    kraken_secret = base64.b64encode(canary.encode()).decode()
    return [
        ("bn", sf.binance_hmac(secret=canary)),
        ("um", sf.binance_hmac(secret=canary, usdm=True)),
        ("kr", sf.kraken(kraken_secret)),
        ("bb", sf.bybit_hmac(canary)),
        ("ok", sf.okx(canary, phrase)),
        ("oa", sf.oanda(canary)),
        ("al", sf.alpaca(canary)),
    ]


def _private_key_forms(key: VenueKey) -> list[bytes]:
    """Encodings of a generated private key: PEM body lines, raw bytes in hex and base64."""
    text = key.secret_text.encode()
    if b"PRIVATE KEY" in text:
        private = serialization.load_pem_private_key(text, password=None)
        der = private.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )  # fmt: skip
        lines = [line for line in text.splitlines() if line and b"-----" not in line]
        return [*lines, der[-32:].hex().encode(), base64.b64encode(der)[8:40]]
    raw = base64.b64decode(text)
    return [text, raw[:32].hex().encode(), base64.b64encode(raw[:32])[:40]]


class Recorder:
    """Everything the vault sent back to callers."""

    def __init__(self) -> None:
        self.responses: list[Any] = []
        self.errors: list[bytes] = []

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            response = fn(*args, **kwargs)
        except grpc.RpcError as exc:
            err = call_error(exc)
            trailers = b"".join(
                (v if isinstance(v, bytes) else v.encode())
                for _, v in exc.trailing_metadata() or ()
            )
            self.errors.append(f"{err.message}|{err.reasons}|{err.metadata}".encode() + trailers)
            return None
        self.responses.append(response)
        return response

    def response_bytes(self, *, drop_okx_passphrase: bool = False) -> bytes:
        out = []
        for response in self.responses:
            copy = type(response)()
            copy.CopyFrom(response)
            if drop_okx_passphrase and copy.DESCRIPTOR.name == "SignOrderResponse":
                for header in copy.signed_request.headers:
                    if header.name == "OK-ACCESS-PASSPHRASE":
                        header.value = ""
            out.append(copy.SerializeToString())
        return b"\n".join(out)


def _drive(wired: Wired, rec: Recorder, cred_id: str, key: VenueKey) -> str:
    """Onboard ``key``, then sign, execute, fail in every way, attest; returns the context."""
    vault = wired.vault
    creds, signer = sf.credentials(vault), sf.signing(vault)
    router, onboarding = vault.md("router"), vault.md("onboarding")
    good = sf.place_for(key)
    limits = sf.policy(symbols=[good.symbol])
    request = sf.create_request(key, cred_id, policy=limits)
    wired.venues.register(key)
    cred = rec.call(creds.CreateCredential, request, metadata=onboarding, timeout=15).credential
    rc = rec.call(
        signer.BeginRouting,
        sf.spb.BeginRoutingRequest(credential=cred.name, strategy_id="s", reason="r"),
        metadata=router, timeout=10,
    ).routing_context.name  # fmt: skip
    detached = not cred.proxy_only
    ok = rec.call(signer.SignOrder, sf.sign_request(rc, good), metadata=router, timeout=10)
    assert (ok is not None) == detached
    done = rec.call(
        signer.ExecuteOrder, sf.execute_request(rc, sf.place_for(key)), metadata=router, timeout=10
    )
    assert done is not None and 200 <= done.http_status < 300, (cred_id, done)
    failing = [
        sf.place_for(key, good.client_order_id),  # duplicate (or, proxy-only, PROXY_ONLY_VENUE)
        sf.place_for(key, symbol="XRPEUR"),  # policy
        sf.place_for(key, extras={"withdrawAddress": "x"}),  # not an accepted extra
    ]
    for order in failing:
        for method, build in (
            (signer.SignOrder, sf.sign_request), (signer.ExecuteOrder, sf.execute_request),
        ):  # fmt: skip
            rec.call(method, build(rc, order), metadata=router, timeout=10)
    for method, build in (
        (signer.SignOrder, sf.sign_request),
        (signer.ExecuteOrder, sf.execute_request),
    ):
        rec.call(method, build("", good, credential=cred.name), metadata=router, timeout=10)
    rec.call(
        creds.AttestCredentialPermissions,
        sf.cpb.AttestCredentialPermissionsRequest(name=cred.name, reason="review"),
        metadata=vault.md("security"), timeout=15,
    )  # fmt: skip
    return rc


@pytest.mark.timeout(90)
def test_canary_never_leaves_the_vault(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging("DEBUG", "json")
    canary, phrase = new_canary(), new_canary()
    generated = [
        ("ed", sf.binance_asymmetric(B.KEY_ALGORITHM_ED25519)),
        ("cb", sf.coinbase(B.KEY_ALGORITHM_ED25519)),
        ("ec", sf.coinbase(B.KEY_ALGORITHM_ECDSA_P256)),
    ]
    rec = Recorder()
    home = tmp_path / "home"
    with sf.venue_vault(home, log_level="DEBUG") as wired:
        contexts = {}
        for cred_id, key in _canary_keys(canary, phrase) + generated:
            contexts[cred_id] = (_drive(wired, rec, cred_id, key), key)
        # Venues that refuse (keys rotated at the venue): their answers are relayed as they are.
        rc, alpaca = contexts["al"]
        wired.venues.alpaca.keys[alpaca.api_key] = "rotated"
        rc_oanda, oanda = contexts["oa"]
        wired.venues.oanda.tokens.clear()
        for ctx, key in ((rc, alpaca), (rc_oanda, oanda)):
            refused = rec.call(
                sf.signing(wired.vault).ExecuteOrder, sf.execute_request(ctx, sf.place_for(key)),
                metadata=wired.vault.md("router"), timeout=10,
            )  # fmt: skip
            assert refused.http_status == 401
        audit = "\n".join(r.raw for r in sf.audit_rows(wired.vault)).encode()
        pages = repr(sf.pages(wired.vault)).encode()
    out, err = capfd.readouterr()
    logs = (out + err).encode()
    files = b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file() and p.suffix != ".sock")

    assert len(rec.responses) > 30 and len(rec.errors) > 60  # the flows really ran
    assert b'"level": "debug"' in logs and b"connect_tcp" in logs  # DEBUG, egress included
    surfaces = {
        "responses": rec.response_bytes(),
        "errors": b"\n".join(rec.errors),
        "audit": audit,
        "pages": pages,
        "logs": logs,
        "files": files,
    }
    for label, blob in surfaces.items():
        assert find(canary, blob) == [], f"{label} leaked the canary"
        for cred_id, key in generated:
            leaked = [f for f in _private_key_forms(key) if f in blob]
            assert not leaked, f"{label} leaked the {cred_id} private key"
    # The OKX passphrase: in the OKX detached request's passphrase header, and nowhere else.
    surfaces["responses"] = rec.response_bytes(drop_okx_passphrase=True)
    for label, blob in surfaces.items():
        assert find(phrase, blob) == [], f"{label} leaked the OKX passphrase"
    assert find(phrase, rec.response_bytes()) != []
