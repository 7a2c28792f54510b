"""An HSM outage over the real API, in a process of its own (SoftHSM2 cannot open any token
again in a process that saw one vanish, so the test suite's own process must never see it).

Usage: python -m tests.integration.keys.hsm_outage_probe HOME KEYS_JSON TOKEN_DIR CANARY
Starts a vault whose primary provider is the token, onboards a credential with the canary
secret, signs, takes the token away, signs again, prints one JSON line with what happened.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import grpc

from tests.integration.keys.test_keys_provider_matrix import routing
from tests.support.custody import make_workspace, onboard
from tests.support.errors import call_error
from tests.support.vault import start_vault


def main() -> None:
    home, keys, token_dir, canary = (
        Path(sys.argv[1]), json.loads(sys.argv[2]), Path(sys.argv[3]), sys.argv[4],
    )  # fmt: skip
    vault = start_vault(home, keys={**keys, "dek_cache_max_entries": 0}, readiness_interval_s=0.2)
    result: dict[str, object] = {}
    gone = token_dir.with_name(token_dir.name + ".gone")
    try:
        make_workspace(vault, "ws-a")
        cred = onboard(vault, "ws-a", "c0", "K" * 20, canary)
        result["kek_reference"] = cred.versions[0].kek_reference
        stub, request = routing(vault, cred.name)
        signed = stub.SignOrder(request, metadata=vault.md("router"), timeout=10)
        result["signed_before"] = "signature=" in signed.signed_request.url
        token_dir.rename(gone)  # the HSM goes away
        started = time.monotonic()
        try:
            stub.SignOrder(request, metadata=vault.md("router"), timeout=10)
            result["outage"] = "signed"
        except grpc.RpcError as exc:
            err = call_error(exc)
            result["outage"] = [err.code.name, err.reason]
        result["elapsed_s"] = time.monotonic() - started
    finally:
        if gone.exists():
            gone.rename(token_dir)
        vault.stop()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
