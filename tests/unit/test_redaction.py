"""Secret material cannot leak through repr, str, format, pickling, copying or logging."""

from __future__ import annotations

import copy
import io
import json
import logging
import pickle
import secrets

import pytest

from vault_server.core.secret import Secret
from vault_server.observability.logging import configure_logging, get_logger


def test_secret_never_renders() -> None:
    canary = f"CANARY-{secrets.token_hex(16)}"
    s = Secret(canary)
    for rendered in (repr(s), str(s), f"{s}", f"{s!r}", "%s" % s, repr([s]), repr({"k": s})):
        assert canary not in rendered
    with pytest.raises(TypeError):
        pickle.dumps(s)
    assert copy.deepcopy(s) is s
    assert s.reveal() == canary.encode() and s.reveal_text() == canary
    assert s == Secret(canary) and s != Secret("other")


def test_tracebacks_never_print_local_variables() -> None:
    canary = f"CANARY-{secrets.token_hex(16)}"
    for fmt in ("console", "json"):
        out = io.StringIO()
        configure_logging("DEBUG", fmt, stream=out)

        def signing_frame(key: bytes) -> None:
            raise RuntimeError("boom")

        try:
            signing_frame(canary.encode())
        except RuntimeError:
            get_logger("test").exception("rpc.unhandled")
        text = out.getvalue()
        assert "boom" in text and "signing_frame" in text  # the traceback is there
        assert canary not in text, fmt


def test_logging_drops_secret_fields() -> None:
    canary = f"CANARY-{secrets.token_hex(16)}"
    out = io.StringIO()
    configure_logging("DEBUG", "json", stream=out)
    log = get_logger("test")
    log.info(
        "event",
        material=Secret(canary),
        nested={"x": Secret(canary)},
        secret=canary,
        token=canary,
        ok="fine",
    )
    logging.getLogger("stdlib").warning("plain %s", "message")
    text = out.getvalue()
    assert canary not in text
    first = json.loads(text.splitlines()[0])
    assert (
        first["ok"] == "fine"
        and first["material"] == "[dropped]"
        and first["secret"] == "[dropped]"
    )
    assert "plain message" in text
