"""The aws-kms and pkcs11 providers against real back ends on this machine (moto's KMS server,
SoftHSM2): the binding is enforced *by the KMS or the token*, versions rotate and rewrap, the KEK
cannot be read out, and outages are bounded ``KeyProviderUnavailable``, never plaintext."""

from __future__ import annotations

import base64
import secrets
import socket
import struct
import threading
import time
from typing import Any

import pytest

from tests.integration.crypto.openbao import free_port
from tests.integration.keys.kms_fixtures import MotoKms, SoftHsmToken, start_moto
from vault_server.core.errors import (
    IntegrityCheckFailed,
    KeyProviderUnavailable,
    OperationNotSupported,
)
from vault_server.core.secret import Secret
from vault_server.crypto.providers import KekState, KeyProvider, new_key_provider
from vault_server.crypto.providers.base import WrappedDek
from vault_server.crypto.providers.pkcs11 import Pkcs11KeyProvider


def _aws(moto: MotoKms, **options: Any) -> KeyProvider:
    return new_key_provider(
        f"aws-kms://{moto.create_key()}", "aws", endpoint_url=moto.endpoint, **options
    )


def _hsm(token: SoftHsmToken, key: str = "kek", **options: Any) -> Pkcs11KeyProvider:
    provider = new_key_provider(
        f"pkcs11://{token.label}/{key}", "hsm", **token.options(), **options
    )
    assert isinstance(provider, Pkcs11KeyProvider)
    provider.ensure_key()
    return provider


def test_aws_kms_binding_is_enforced_by_kms(moto_kms: MotoKms) -> None:
    provider = _aws(moto_kms)
    dek = Secret(secrets.token_bytes(32))
    aad = b"ws-1|cred-1|v1"
    wrapped = provider.wrap(dek, aad)
    assert wrapped.kek_version == 1 and provider.unwrap(wrapped, aad).reveal() == dek.reveal()
    # Ask KMS itself, bypassing pipvault: the right context decrypts, any other is refused there.
    kms = moto_kms.client()
    context = {"pipvault:aad": base64.b64encode(aad).decode(), "pipvault:kek": "1"}
    assert kms.decrypt(CiphertextBlob=wrapped.blob, EncryptionContext=context)["Plaintext"] == (
        dek.reveal()
    )
    for bad in (
        {**context, "pipvault:aad": base64.b64encode(b"ws-1|cred-2|v1").decode()},
        {**context, "pipvault:kek": "2"},
        {},
    ):
        with pytest.raises(kms.exceptions.InvalidCiphertextException):
            kms.decrypt(CiphertextBlob=wrapped.blob, EncryptionContext=bad)
    with pytest.raises(IntegrityCheckFailed):
        provider.unwrap(wrapped, b"ws-1|cred-2|v1")
    with pytest.raises(IntegrityCheckFailed):  # the version recorded in the envelope is bound too
        provider.unwrap(WrappedDek("aws", 2, wrapped.blob), aad)
    flipped = bytearray(wrapped.blob)
    flipped[-1] ^= 1
    with pytest.raises(IntegrityCheckFailed):
        provider.unwrap(WrappedDek("aws", 1, bytes(flipped)), aad)


def test_aws_kms_rotation_reencrypts_and_keeps_old_versions(moto_kms: MotoKms) -> None:
    provider = _aws(moto_kms)
    dek = Secret(secrets.token_bytes(32))
    old = provider.wrap(dek, b"aad")
    assert provider.rotate() == 2 and provider.active_version() == 2
    new = provider.rewrap(old, b"aad")
    assert new.kek_version == 2 and new.blob != old.blob
    assert provider.unwrap(new, b"aad").reveal() == dek.reveal()
    assert provider.unwrap(old, b"aad").reveal() == dek.reveal()  # KMS keeps old material
    with pytest.raises(IntegrityCheckFailed):
        provider.rewrap(old, b"other")
    status = provider.status()
    assert status.kind == "aws-kms" and status.active_version == 2
    assert [(v.version, v.state) for v in status.versions] == [
        (2, KekState.ACTIVE), (1, KekState.DECRYPT_ONLY),
    ]  # fmt: skip
    with pytest.raises(OperationNotSupported):
        provider.retire(1)


def test_aws_kms_outage_is_bounded_and_never_plaintext(moto_kms: MotoKms) -> None:
    own = start_moto()
    provider = _aws(own, timeout=0.5, max_attempts=2)
    wrapped = provider.wrap(Secret(secrets.token_bytes(32)), b"aad")
    own.stop()
    started = time.monotonic()
    with pytest.raises(KeyProviderUnavailable) as down:
        provider.unwrap(wrapped, b"aad")
    assert down.value.metadata["cause"] == "unreachable" and time.monotonic() - started < 3
    # A KMS that accepts connections and never answers: the read timeout bounds every call.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        hung = new_key_provider(
            "aws-kms://arn:aws:kms:us-east-1:123456789012:key/"
            "11111111-2222-3333-4444-555555555555",
            "hung", endpoint_url=f"http://127.0.0.1:{port}", timeout=0.5, max_attempts=2,
        )  # fmt: skip
        started = time.monotonic()
        with pytest.raises(KeyProviderUnavailable) as slow:
            hung.unwrap(WrappedDek("hung", 1, wrapped.blob), b"aad")
        elapsed = time.monotonic() - started
    assert slow.value.metadata["cause"] == "timeout" and elapsed < 3.5
    closed = new_key_provider(
        "aws-kms://alias/pipvault", "closed", region="eu-west-1",
        endpoint_url=f"http://127.0.0.1:{free_port()}", timeout=0.5, max_attempts=1,
    )  # fmt: skip
    with pytest.raises(KeyProviderUnavailable):
        closed.wrap(Secret(secrets.token_bytes(32)), b"aad")


def test_pkcs11_kek_never_leaves_the_token_and_binding_is_enforced_there(
    hsm_token: SoftHsmToken,
) -> None:
    provider = _hsm(hsm_token)
    dek = Secret(secrets.token_bytes(32))
    aad = b"ws-1|cred-1|v1"
    wrapped = provider.wrap(dek, aad)
    assert provider.unwrap(wrapped, aad).reveal() == dek.reveal()
    # Go to the token directly with python-pkcs11: the key is sensitive and not extractable,
    # its value cannot be read, and GCM with another AAD is refused by the token itself.
    import pkcs11
    from pkcs11 import Attribute, Mechanism, ObjectClass
    from pkcs11.mechanisms import GCMParams

    from vault_server.crypto.providers._pkcs11_support import load_lib

    token = load_lib(pkcs11, hsm_token.module).get_token(token_label=hsm_token.label)
    with token.open() as session:  # the provider's sessions already logged the app in
        key = session.get_key(
            object_class=ObjectClass.SECRET_KEY, label="kek", id=struct.pack(">I", 1)
        )
        assert key[Attribute.SENSITIVE] is True and key[Attribute.EXTRACTABLE] is False
        assert key[Attribute.NEVER_EXTRACTABLE] is True and key[Attribute.TOKEN] is True
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            key[Attribute.VALUE]
        iv, ct = wrapped.blob[:12], wrapped.blob[12:]
        good = GCMParams(iv, aad + struct.pack(">I", 1), 128)
        assert bytes(key.decrypt(ct, mechanism=Mechanism.AES_GCM, mechanism_param=good)) == (
            dek.reveal()
        )
        for bad_aad in (b"ws-1|cred-2|v1" + struct.pack(">I", 1), aad + struct.pack(">I", 2)):
            with pytest.raises(pkcs11.exceptions.PKCS11Error):
                key.decrypt(
                    ct, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(iv, bad_aad, 128)
                )
    with pytest.raises(IntegrityCheckFailed):
        provider.unwrap(wrapped, b"ws-1|cred-2|v1")
    flipped = bytearray(wrapped.blob)
    flipped[20] ^= 1
    with pytest.raises(IntegrityCheckFailed):
        provider.unwrap(WrappedDek("hsm", 1, bytes(flipped)), aad)


def test_pkcs11_rotate_rewrap_retire_and_concurrent_sessions(hsm_token: SoftHsmToken) -> None:
    provider = _hsm(hsm_token, pool_size=4)
    deks = [Secret(secrets.token_bytes(32)) for _ in range(3)]
    old = [provider.wrap(d, b"aad%d" % i) for i, d in enumerate(deks)]
    assert provider.rotate() == 2
    new = [provider.rewrap(w, b"aad%d" % i) for i, w in enumerate(old)]
    assert {w.kek_version for w in new} == {2}
    errors: list[BaseException] = []

    def worker() -> None:  # more threads than sessions: the pool serializes, nothing fails
        try:
            for _ in range(10):
                for i, w in enumerate(new):
                    assert provider.unwrap(w, b"aad%d" % i).reveal() == deks[i].reveal()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    status = provider.status()
    assert [(v.version, v.state) for v in status.versions] == [
        (2, KekState.ACTIVE), (1, KekState.DECRYPT_ONLY),
    ]  # fmt: skip
    provider.retire(1)
    with pytest.raises(IntegrityCheckFailed):  # a retired version is gone from the token
        provider.unwrap(old[0], b"aad0")
    assert provider.unwrap(new[0], b"aad0").reveal() == deks[0].reveal()


def test_pkcs11_wrong_pin_or_missing_token_is_unavailable(
    hsm_token: SoftHsmToken, tmp_path: Any
) -> None:
    wrong = tmp_path / "wrong.pin"
    wrong.write_text("000000\n")
    bad_pin = new_key_provider(
        f"pkcs11://{hsm_token.label}/kek", "bad", module=hsm_token.module, pin_file=str(wrong)
    )
    with pytest.raises(KeyProviderUnavailable) as refused:
        bad_pin.active_version()
    assert refused.value.metadata["cause"] == "pin_refused"
    missing = new_key_provider("pkcs11://no-such-token/kek", "gone", **hsm_token.options())
    with pytest.raises(KeyProviderUnavailable) as absent:
        missing.status()
    assert absent.value.metadata["cause"] == "no_token"


def test_init_pkcs11_command_provisions_version_1_once(
    hsm_token: SoftHsmToken, tmp_path: Any
) -> None:
    import subprocess
    import sys

    import yaml

    config = tmp_path / "pipvault.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "keys": {
                    "providers": {"hsm": f"pkcs11://{hsm_token.label}/ops-kek"},
                    "primary": "hsm",
                    "pkcs11_module": hsm_token.module,
                    "pkcs11_pin_file": str(hsm_token.pin_file),
                }
            }
        )
    )
    command = [sys.executable, "-m", "vault_server.cli.main", "keys", "init-pkcs11",
               "--config", str(config), "--provider", "hsm"]  # fmt: skip
    said = []
    for _ in range(2):  # the second run finds the key and creates nothing, and says so
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr[-2000:]
        said.append(done.stdout)
    assert "created KEK version 1 in the token" in said[0] and "found" not in said[0]
    assert "found KEK version 1 already in the token; nothing created" in said[1]
    assert "created KEK" not in said[1]
    provider = new_key_provider(
        f"pkcs11://{hsm_token.label}/ops-kek", "hsm", **hsm_token.options()
    )  # made by another process, seen here
    assert [v.version for v in provider.status().versions] == [1]
    wrong = subprocess.run([*command[:-1], "nope"], capture_output=True, text=True, timeout=60)
    assert wrong.returncode != 0 and "keys.providers.nope" in wrong.stderr
