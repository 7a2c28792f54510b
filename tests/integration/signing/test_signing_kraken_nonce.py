"""Kraken: the vault owns the per-key nonce. It strictly increases across consecutive SignOrders,
across the permission query that shares the key's sequence, and across a vault restart on the
same database (SQLite file and PostgreSQL as the app role); the venue stub accepts every signed
request in order and refuses a replayed nonce."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl

from tests.support import signing_flow as sf


def _nonce(signed: sf.spb.SignedRequest) -> int:
    first = parse_qsl(signed.body.decode())[0]
    assert first[0] == "nonce"
    return int(first[1])


def test_nonces_strictly_increase_across_signs_attestation_and_restart(
    tmp_path: Path, vault_database_url: str
) -> None:
    key = sf.kraken()
    signed: list[sf.spb.SignedRequest] = []
    with sf.venue_stubs() as venues:
        venues.register(key)
        vault = sf.start_wired(tmp_path / "home", venues, vault_database_url)
        try:
            cred = sf.onboard(vault, key, "kr")
            rc = sf.begin(vault, cred.name).name
            # Consecutive signatures inside one millisecond still get distinct, rising nonces.
            signed += [sf.sign(vault, rc, sf.place_for(key)).signed_request for _ in range(5)]
            # Sent in order, each is accepted (sending after the attestation below would not be:
            # the permission query consumes a later nonce of the same key).
            replies = [sf.send(s).json() for s in signed]
            assert [r["error"] for r in replies] == [[]] * 5, replies
            assert sf.attest(vault, cred.name).attestation.result == (
                sf.credential_pb2.Attestation.RESULT_CLEAN
            )  # GetApiKeyInfo took the next nonce of the same sequence
            signed.append(sf.sign(vault, rc, sf.place_for(key)).signed_request)
        finally:
            vault.stop()
        after_attest = venues.kraken.nonces[key.api_key]
        vault = sf.start_wired(tmp_path / "home", venues, vault_database_url)  # same database
        try:
            rc = sf.begin(vault, cred.name).name
            signed += [sf.sign(vault, rc, sf.place_for(key)).signed_request for _ in range(2)]
        finally:
            vault.stop()
        nonces = [_nonce(s) for s in signed]
        assert nonces == sorted(set(nonces)), nonces  # strictly increasing, no repeats
        assert nonces[4] < after_attest < nonces[5]
        # Sent in order, every one is accepted; each replay is refused by the venue.
        replies = [sf.send(s).json() for s in signed[5:]]
        assert [r["error"] for r in replies] == [[]] * 3, replies
        for s in (signed[0], signed[5], signed[-1]):
            assert sf.send(s).json()["error"] == ["EAPI:Invalid nonce"]
        assert venues.kraken.nonces[key.api_key] == nonces[-1]
