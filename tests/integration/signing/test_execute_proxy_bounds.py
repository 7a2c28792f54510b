"""ExecuteOrder against venues that answer slowly or at length (issue 19 sections 7.2 and 7.3).

* A venue dripping its answer (a few bytes every 0.5 s) never trips httpx's per-read timeout: the
  vault used to keep reading for the whole drip, past ``signing.egress_timeout_s`` and the RPC
  deadline, on a storage thread - so ten such calls in one workspace starved another workspace's
  ``GetCredential`` and ``BeginRouting``. Now the whole exchange is bounded by the smaller of the
  egress timeout and the caller's deadline (DEADLINE_EXCEEDED ``VENUE_TIMEOUT``, the limit named
  in the ErrorInfo), the wait holds no storage thread, and each workspace has a cap on proxied
  requests in flight (``CONCURRENCY_LIMITED``, refused before the use, so no order id is burnt).
* A 48 MiB answer used to be read whole before being cut to 1 MiB, silently. Now it is streamed,
  reading stops at the cap, and the response says ``body_truncated``.
"""

from __future__ import annotations

import json
import threading
import time
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.support import signing_flow as sf
from tests.support.errors import call_error
from tests.support.signing_flow import Venues
from tests.support.vault import RunningVault

DE = grpc.StatusCode.DEADLINE_EXCEEDED
EGRESS_TIMEOUT_S = 2.0


@pytest.fixture
def venues() -> Iterator[Venues]:
    with sf.venue_stubs() as v:
        v.oanda.drip_interval_s, v.oanda.drip_bytes = 0.5, 8  # ~20 s for an order's answer
        yield v


def _start(tmp_path: Path, venues: Venues, **signing: Any) -> RunningVault:
    settings = {"egress_timeout_s": EGRESS_TIMEOUT_S, **signing}
    return sf.start_wired(tmp_path / "home", venues, ws_ids=("ws-a", "ws-b"), signing=settings)


def _onboard(vault: RunningVault, venues: Venues, key: sf.VenueKey, ws: str, who: str) -> str:
    venues.register(key)
    cred = sf.onboard(vault, key, f"c-{ws}", ws=ws)
    return sf.begin(vault, cred.name, who=who).name


def _timed_execute(
    vault: RunningVault, rc: str, order: Any, timeout: float = 10, who: str = "router"
) -> tuple[float, Any]:
    """(seconds, the response or the CallError)."""
    started = time.monotonic()
    try:
        out: Any = sf.signing(vault).ExecuteOrder(
            sf.execute_request(rc, order), metadata=vault.md(who), timeout=timeout
        )
    except grpc.RpcError as exc:
        out = call_error(exc)
    return time.monotonic() - started, out


@pytest.mark.timeout(120)
def test_a_dripping_venue_is_cut_at_the_bound_and_starves_no_other_workspace(
    tmp_path: Path, venues: Venues
) -> None:
    vault = _start(tmp_path, venues)
    try:
        oanda = sf.oanda()
        rc_a = _onboard(vault, venues, oanda, "ws-a", "router")
        alpaca = sf.alpaca()
        rc_b = _onboard(vault, venues, alpaca, "ws-b", "router-b")
        cred_b = f"workspaces/ws-b/credentials/c-{'ws-b'}"

        # One call: ended by the egress timeout (well before its own 10 s deadline).
        seconds, err = _timed_execute(vault, rc_a, sf.place_for(oanda))
        assert (err.code, err.reason) == (DE, "VENUE_TIMEOUT"), err
        assert err.metadata["limit"] == "egressTimeout" and err.metadata["timeoutS"] == "2"
        assert EGRESS_TIMEOUT_S - 0.2 < seconds < EGRESS_TIMEOUT_S + 1.5
        # A caller deadline shorter than the egress timeout bounds it instead, and the vault
        # still answers itself (its ErrorInfo, not the client's own deadline).
        seconds, err = _timed_execute(vault, rc_a, sf.place_for(oanda), timeout=1.5)
        assert (err.code, err.reason) == (DE, "VENUE_TIMEOUT"), err
        assert err.metadata["limit"] == "callDeadline" and seconds < 1.5

        # Ten at once in ws-a; meanwhile ws-b reads its credential, opens a context and proxies
        # to its own (prompt) venue.
        with ThreadPoolExecutor(10) as pool:
            flood = [pool.submit(_timed_execute, vault, rc_a, sf.place_for(oanda))
                     for _ in range(10)]  # fmt: skip
            time.sleep(0.5)
            other: dict[str, float] = {}
            started = time.monotonic()
            got = sf.get_credential(vault, cred_b)
            other["GetCredential"] = time.monotonic() - started
            started = time.monotonic()
            rc_b2 = sf.begin(vault, got.name, who="router-b").name
            other["BeginRouting"] = time.monotonic() - started
            seconds, done = _timed_execute(vault, rc_b2, sf.place_for(alpaca), who="router-b")
            other["ExecuteOrder"] = seconds
            assert done.http_status == 200, done
            results = [f.result() for f in flood]
        assert all(s < 2 for s in other.values()), other
        for seconds, err in results:
            assert (err.code, err.reason) == (DE, "VENUE_TIMEOUT"), err
            assert seconds < EGRESS_TIMEOUT_S + 1.5
        assert rc_b  # ws-b's first context is untouched
    finally:
        vault.stop()


@pytest.mark.timeout(120)
def test_each_workspace_has_a_cap_on_requests_in_flight(tmp_path: Path, venues: Venues) -> None:
    vault = _start(tmp_path, venues, egress_max_in_flight_per_workspace=2)
    try:
        oanda = sf.oanda()
        rc = _onboard(vault, venues, oanda, "ws-a", "router")
        orders = [sf.place_for(oanda, sf.coid("cap")) for _ in range(5)]
        mark = sf.last_audit_id(vault)
        barrier = threading.Barrier(5)

        def run(order: Any) -> tuple[float, Any]:
            barrier.wait()
            return _timed_execute(vault, rc, order)

        with ThreadPoolExecutor(5) as pool:
            results = list(pool.map(run, orders))
        outcomes = [(err.code, err.reason) for _, err in results]
        limited = [order for order, (_, err) in zip(orders, results, strict=True)
                   if err.reason == "CONCURRENCY_LIMITED"]  # fmt: skip
        assert set(outcomes) <= {
            (DE, "VENUE_TIMEOUT"),
            (grpc.StatusCode.RESOURCE_EXHAUSTED, "CONCURRENCY_LIMITED"),
        }
        assert 1 <= len(limited) <= 3 and outcomes.count((DE, "VENUE_TIMEOUT")) <= 4
        for seconds, err in results:
            if err.reason == "CONCURRENCY_LIMITED":
                assert err.metadata == {"limit": "egressInFlightPerWorkspace", "max": "2"}
                assert seconds < 1.5
        denied = [r for r in sf.audit_rows(vault, after=mark) if r.outcome == "denied"]
        assert [r.key() for r in denied] == [
            ("credential.use", "denied", "CONCURRENCY_LIMITED")
        ] * len(limited)
        # The slots came back, and a refused order's client order id was never used.
        venues.oanda.drip_interval_s = 0.0
        done = sf.execute(vault, rc, limited[0])
        assert done.http_status == 201, done.body
    finally:
        vault.stop()


@pytest.mark.timeout(120)
def test_a_huge_answer_is_streamed_cut_at_the_cap_and_flagged(tmp_path: Path) -> None:
    cap = 1 << 20
    with sf.venue_stubs() as venues:
        venues.oanda.pad_to = 48 * cap
        vault = sf.start_wired(tmp_path / "home", venues)
        try:
            key = sf.oanda()
            rc = _onboard(vault, venues, key, "ws-a", "router")
            mark = sf.last_audit_id(vault)
            tracemalloc.start()
            try:
                done = sf.execute(vault, rc, sf.place_for(key))
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert done.http_status == 201 and done.body_truncated and not done.redacted
            assert len(done.body) == cap
            head = done.body.rstrip(b" ")
            assert json.loads(head)["orderCreateTransaction"]["instrument"] == "EUR_USD"
            # Reading stopped near the cap: the 48 MiB were never held (it used to cost 96 MiB).
            assert peak < 16 * cap, f"peak {peak / cap:.1f} MiB"
            _use, result = sf.audit_rows(vault, after=mark)
            assert result.key() == ("credential.use_result", "success", "")
            assert result.details["bodyTruncated"] == "true"
            assert result.details["responseRedacted"] == "false"
            # A small answer is whole and not flagged.
            venues.oanda.pad_to = 0
            small = sf.execute(vault, rc, sf.place_for(key))
            assert small.http_status == 201 and not small.body_truncated
        finally:
            vault.stop()
