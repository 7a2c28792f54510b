"""Hypothesis properties of the envelope: round trips, binding mismatch, and that malformed or
mutated input only ever raises the two defined errors (never a library exception)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.crypto.crypto_testkit import envelope_fields
from vault_server.core.clock import SystemRandom
from vault_server.core.errors import IntegrityCheckFailed, KeyProviderUnavailable
from vault_server.core.secret import Secret
from vault_server.crypto import envelope
from vault_server.crypto.envelope import EnvelopeBinding
from vault_server.crypto.providers.local import LocalKeyProvider

DEFINED = (IntegrityCheckFailed, KeyProviderUnavailable)
ids = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40)
bindings = st.builds(EnvelopeBinding, ids, ids, st.integers(1, (1 << 32) - 1))
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(plaintext=st.binary(max_size=4096), binding=bindings)
def test_round_trip(
    shared_local: LocalKeyProvider, plaintext: bytes, binding: EnvelopeBinding
) -> None:
    blob = envelope.seal(Secret(plaintext), binding, shared_local, SystemRandom())
    assert envelope.open_envelope(blob, binding, {"local": shared_local}).reveal() == plaintext


@SETTINGS
@given(plaintext=st.binary(max_size=256), binding=bindings, other=bindings)
def test_other_binding_always_fails(
    shared_local: LocalKeyProvider,
    plaintext: bytes,
    binding: EnvelopeBinding,
    other: EnvelopeBinding,
) -> None:
    if other == binding:
        other = EnvelopeBinding(other.workspace_id + "x", other.credential_id, 1)
    blob = envelope.seal(Secret(plaintext), binding, shared_local, SystemRandom())
    with pytest.raises(IntegrityCheckFailed):
        envelope.open_envelope(blob, other, {"local": shared_local})


@settings(max_examples=300, deadline=None)
@given(garbage=st.binary(max_size=512))
def test_garbage_raises_only_defined_errors(shared_local: LocalKeyProvider, garbage: bytes) -> None:
    binding = EnvelopeBinding("ws", "cred", 1)
    for blob in (garbage, b"PVE\x01" + garbage):
        with pytest.raises(DEFINED):
            envelope.open_envelope(blob, binding, {"local": shared_local})


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_truncated_or_mutated_envelopes_raise_only_defined_errors(
    shared_local: LocalKeyProvider, data: st.DataObject
) -> None:
    binding = EnvelopeBinding("ws", "cred", 1)
    blob = envelope.seal(Secret(b"k" * 40), binding, shared_local, SystemRandom())
    how = data.draw(st.sampled_from(["truncate", "flip", "splice", "field"]))
    if how == "truncate":
        bad = blob[: data.draw(st.integers(0, len(blob) - 1))]
    elif how == "flip":
        i = data.draw(st.integers(0, len(blob) - 1))
        bad = blob[:i] + bytes([blob[i] ^ data.draw(st.integers(1, 255))]) + blob[i + 1 :]
    elif how == "splice":
        i = data.draw(st.integers(0, len(blob)))
        bad = blob[:i] + data.draw(st.binary(min_size=1, max_size=64)) + blob[i:]
    else:
        fields = envelope_fields(blob)
        name = data.draw(st.sampled_from(sorted(fields)))
        s = fields[name]
        value = data.draw(st.binary(min_size=s.stop - s.start, max_size=s.stop - s.start))
        if value == blob[s]:
            return
        bad = blob[: s.start] + value + blob[s.stop :]
    with pytest.raises(DEFINED) as info:
        envelope.open_envelope(bad, binding, {"local": shared_local})
    assert b"k" * 40 not in str(info.value).encode()
