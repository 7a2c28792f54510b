"""Atheris target: the envelope wire parser (``vault_server.crypto._envelope_codec.decode``).

Any byte string either decodes to an envelope that re-encodes to exactly the same bytes, or
raises ``IntegrityCheckFailed``; any other exception (or a different re-encoding) is a crash.
Run: ``make fuzz FUZZ_SECONDS=60`` (or ``python tests/fuzz/fuzz_envelope.py -max_total_time=60``).
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from vault_server.core.errors import IntegrityCheckFailed
    from vault_server.crypto import _envelope_codec as codec


def one_input(data: bytes) -> None:
    try:
        env = codec.decode(data)
    except IntegrityCheckFailed:
        return
    again = codec.encode(env.wrapped, env.commitment, env.nonce, env.ciphertext)
    if again != data:
        raise AssertionError("decode/encode is not the identity on an accepted envelope")


def seeds() -> list[bytes]:
    from vault_server.crypto.providers.base import WrappedDek

    good = codec.encode(WrappedDek("local", 1, b"w" * 60), b"c" * 32, b"n" * 12, b"t" * 40)
    return [good, good[:-1], good + b"\x00", b"PVE\x01"]


if __name__ == "__main__":
    if "--seeds" in sys.argv:
        for seed in seeds():
            one_input(seed)
        sys.exit(0)
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
