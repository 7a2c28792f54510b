"""Router retries race: the same client order id sent concurrently is signed exactly once, and a
burst of placements never exceeds ``max_orders_per_interval`` (both stores; on PostgreSQL the
transactions really run in parallel)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import grpc

from tests.support import signing_flow as sf
from tests.support.errors import call_error
from tests.support.vault import RunningVault

N = 8


def _burst(call: Callable[[int], object]) -> Counter[str]:
    """Run ``call(i)`` for i in 0..N-1 at once; count outcomes by reason ('OK' for success)."""
    outcomes: Counter[str] = Counter()
    lock, start = threading.Lock(), threading.Barrier(N)

    def run(i: int) -> None:
        start.wait()
        try:
            call(i)
            outcome = "OK"
        except grpc.RpcError as exc:
            outcome = call_error(exc).reason
        with lock:
            outcomes[outcome] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return outcomes


def test_concurrent_duplicates_and_rate_limit(vault_any_db: RunningVault) -> None:
    vault = vault_any_db
    sf.create_workspace(vault)
    key = sf.binance_hmac()
    cred = sf.onboard(vault, key, "bn")
    rcs = [sf.begin(vault, cred.name).name for _ in range(N)]  # one context per retrying worker
    stubs = [sf.signing(vault) for _ in range(N)]

    order = sf.place_for(key, "retry1")
    same = _burst(lambda i: stubs[i].SignOrder(sf.sign_request(rcs[i], order),
                                               metadata=vault.md("router"), timeout=15))  # fmt: skip
    assert same == Counter({"OK": 1, "DUPLICATE_CLIENT_ORDER_ID": N - 1})

    sf.update_policy(vault, cred.name, sf.policy(max_orders=3, rate_interval_s=60))
    # The first order above counts: two more fit in the interval.
    distinct = _burst(
        lambda i: stubs[i].SignOrder(sf.sign_request(rcs[i], sf.place_for(key, f"burst{i}")),
                                     metadata=vault.md("router"), timeout=15)
    )  # fmt: skip
    assert distinct == Counter({"OK": 2, "ORDER_POLICY_VIOLATION": N - 2})
    uses = [r for r in sf.audit_rows(vault) if r.action == "credential.use"]
    assert sum(r.outcome == "success" for r in uses) == 3


def test_concurrent_first_signatures_get_distinct_kraken_nonces(vault_any_db: RunningVault) -> None:
    vault = vault_any_db
    sf.create_workspace(vault)
    key = sf.kraken()
    cred = sf.onboard(vault, key, "kr")
    rcs = [sf.begin(vault, cred.name).name for _ in range(N)]
    stubs = [sf.signing(vault) for _ in range(N)]
    signed: list[sf.spb.SignedRequest] = []

    def one(i: int) -> None:
        response = stubs[i].SignOrder(
            sf.sign_request(rcs[i], sf.place_for(key)), metadata=vault.md("router"), timeout=15
        )
        signed.append(response.signed_request)

    assert _burst(one) == Counter({"OK": N})  # no nonce row is created twice
    nonces = {s.body.split(b"&", 1)[0] for s in signed}
    assert len(nonces) == N
