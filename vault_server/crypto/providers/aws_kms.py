"""The ``aws-kms`` key provider: DEKs wrapped by an AWS KMS symmetric key (needs boto3).

``aws-kms://<key-id | alias/name | key ARN | alias ARN>``; the region comes from the ARN, else
from the ``region`` option, else from the standard AWS configuration. Credentials come from the
standard AWS chain (environment, web identity for EKS IRSA, shared files, instance/task roles):
pipvault never takes an access key in its own configuration.

``wrap``/``unwrap``/``rewrap`` are ``Encrypt``/``Decrypt``/``ReEncrypt`` with an
``EncryptionContext`` of ``{"pipvault:aad": base64(aad), "pipvault:kek": "<version>"}``: the same
binding as the envelope's associated data plus the KEK version, so a wrapped key presented for
another credential, version or KEK version fails *at KMS* (``InvalidCiphertextException``), and
CloudTrail records the binding with every call. ``ReEncrypt`` moves a DEK to the current key
material inside KMS: the DEK is never exposed during a KEK change.

**KEK versions.** KMS keeps every generation of a key's material and picks the right one on
``Decrypt``; it does not expose generations as versions. pipvault numbers them itself: version 1
is the key as created, and each rotation listed by ``ListKeyRotations`` (automatic or
``RotateKeyOnDemand``, which ``rotate()`` calls) adds one. All older versions stay decrypt-only;
KMS cannot retire one generation (disable or schedule deletion of the whole key instead), so
``retire`` refuses.

Every call is bounded: ``connect_timeout``/``read_timeout`` of ``timeout`` seconds and at most
``max_attempts`` attempts (botocore "standard" retries), so a KMS outage is
``KeyProviderUnavailable`` well inside an RPC deadline; never a plaintext fallback.

Least-privilege IAM: ``kms:Encrypt``, ``kms:Decrypt``, ``kms:ReEncryptFrom``, ``kms:ReEncryptTo``,
``kms:DescribeKey``, ``kms:ListKeyRotations`` on the key, plus ``kms:RotateKeyOnDemand`` for
rotation; a ``kms:EncryptionContextKeys`` condition can pin ``pipvault:aad`` and ``pipvault:kek``.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import re
from collections.abc import Callable
from typing import Any, Final

from vault_server.core.errors import (
    IntegrityCheckFailed,
    InvalidArgument,
    KeyProviderUnavailable,
    OperationNotSupported,
)
from vault_server.core.secret import Secret
from vault_server.crypto.providers.base import (
    KekState,
    KekVersionInfo,
    ProviderStatus,
    WrappedDek,
    check_provider_id,
)

KIND: Final = "aws-kms"
AAD_KEY: Final = "pipvault:aad"
VERSION_KEY: Final = "pipvault:kek"
#: KMS ciphertext blobs for symmetric keys are well under this.
MAX_BLOB: Final = 6144
_KEY_ID_RE: Final = re.compile(
    r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}"
    r"|alias/[A-Za-z0-9/_-]{1,250})"
)
_ARN_RE: Final = re.compile(
    r"arn:aws[a-z-]*:kms:(?P<region>[a-z0-9-]+):[0-9]{12}:(?:key/[A-Za-z0-9-]+|alias/[A-Za-z0-9/_-]+)"
)
_REGION_RE: Final = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}")
#: ClientError codes that mean "this wrapped key does not authenticate under this binding".
_REJECTED: Final = frozenset({"InvalidCiphertextException", "IncorrectKeyException"})
_CAUSES: Final = {
    "AccessDeniedException": "permission_denied",
    "NotFoundException": "not_found",
    "DisabledException": "key_disabled",
    "KMSInvalidStateException": "key_state",
    "ThrottlingException": "rate_limited",
    "LimitExceededException": "rate_limited",
    "UnrecognizedClientException": "authentication",
    "InvalidSignatureException": "authentication",
    "ExpiredTokenException": "authentication",
    "KeyUnavailableException": "sealed_or_down",
    "DependencyTimeoutException": "timeout",
    "KMSInternalException": "server_error",
}


def parse_key(setting: str, rest: str, region: str | None) -> tuple[str, str | None]:
    """``(key_id, region)`` from the URI's key part; the region of an ARN must match the option."""
    match = _ARN_RE.fullmatch(rest)
    if match is not None:
        if region and region != match["region"]:
            raise InvalidArgument(f"{setting}.region", "contradicts the region of the key ARN")
        return rest, match["region"]
    if not _KEY_ID_RE.fullmatch(rest):
        raise InvalidArgument(
            setting, "use aws-kms://<key id | alias/name | key or alias ARN> (a symmetric key)"
        )
    if region is not None and not _REGION_RE.fullmatch(region):
        raise InvalidArgument(f"{setting}.region", "is not an AWS region name (e.g. eu-west-1)")
    return rest, region


def _import_boto() -> tuple[Any, Any, Any]:
    try:
        import boto3
        import botocore.config
        import botocore.exceptions
    except ImportError:
        raise KeyProviderUnavailable(
            "aws-kms key providers need boto3: install pipvault[aws] (or boto3)"
        ) from None
    return boto3, botocore.config, botocore.exceptions


class AwsKmsKeyProvider:
    """A ``KeyProvider`` backed by one AWS KMS symmetric encryption key."""

    def __init__(
        self,
        provider_id: str,
        *,
        key_id: str,
        region: str | None,
        endpoint_url: str | None,
        timeout: float,
        max_attempts: int,
    ) -> None:
        boto3, config, exceptions = _import_boto()
        self._id = check_provider_id(provider_id)
        self._key_id = key_id
        self._region = region
        self._endpoint = endpoint_url
        self._timeout = timeout
        self._exc = exceptions
        cfg = config.Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            user_agent_extra="pipvault",
        )
        try:
            session = boto3.session.Session(region_name=region)
            self._kms = session.client("kms", endpoint_url=endpoint_url, config=cfg)
        except exceptions.NoRegionError:
            raise InvalidArgument(
                f"keys.providers.{provider_id}.region",
                "no AWS region: use a key ARN, set keys.aws_region or AWS_REGION",
            ) from None
        except Exception:
            raise KeyProviderUnavailable(
                "aws-kms client could not be created",
                metadata={"providerId": self._id, "cause": "misconfigured"},
            ) from None

    @property
    def provider_id(self) -> str:
        return self._id

    @property
    def kind(self) -> str:
        return KIND

    def wrap(self, dek: Secret, aad: bytes) -> WrappedDek:
        version = self.active_version()
        answer = self._call(
            "encrypt",
            lambda: self._kms.encrypt(
                KeyId=self._key_id, Plaintext=dek.reveal(), EncryptionContext=_ctx(aad, version)
            ),
        )
        return WrappedDek(self._id, version, self._blob("encrypt", answer))

    def unwrap(self, wrapped: WrappedDek, aad: bytes) -> Secret:
        self._own(wrapped)
        answer = self._call(
            "decrypt",
            lambda: self._kms.decrypt(
                KeyId=self._key_id,
                CiphertextBlob=wrapped.blob,
                EncryptionContext=_ctx(aad, wrapped.kek_version),
            ),
            rejected_is_tampering=True,
        )
        plain = answer.get("Plaintext")
        if not isinstance(plain, bytes) or len(plain) != 32:
            raise self._unavailable("decrypt", "bad_response")
        return Secret(plain)

    def rewrap(self, wrapped: WrappedDek, aad: bytes) -> WrappedDek:
        self._own(wrapped)
        version = self.active_version()
        answer = self._call(
            "reencrypt",
            lambda: self._kms.re_encrypt(
                CiphertextBlob=wrapped.blob,
                SourceKeyId=self._key_id,
                SourceEncryptionContext=_ctx(aad, wrapped.kek_version),
                DestinationKeyId=self._key_id,
                DestinationEncryptionContext=_ctx(aad, version),
            ),
            rejected_is_tampering=True,
        )
        return WrappedDek(self._id, version, self._blob("reencrypt", answer))

    def rotate(self) -> int:
        self._call("rotate", lambda: self._kms.rotate_key_on_demand(KeyId=self._key_id))
        return self.active_version()

    def active_version(self) -> int:
        return 1 + len(self._rotations())

    def status(self) -> ProviderStatus:
        meta = self._call("describe", lambda: self._kms.describe_key(KeyId=self._key_id))
        key = meta.get("KeyMetadata") if isinstance(meta.get("KeyMetadata"), dict) else {}
        assert isinstance(key, dict)
        if (
            key.get("KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT"
            or key.get("KeyUsage", "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT"
        ):
            raise KeyProviderUnavailable(
                f"aws-kms key {self._key_id} must be a SYMMETRIC_DEFAULT ENCRYPT_DECRYPT key",
                metadata={"providerId": self._id, "cause": "misconfigured"},
            )
        if key.get("Enabled") is False:
            raise self._unavailable("describe", "key_disabled")
        dates = [_time(key.get("CreationDate")), *self._rotations()]
        active = len(dates)
        versions = tuple(
            KekVersionInfo(v, KekState.ACTIVE if v == active else KekState.DECRYPT_ONLY, d)
            for v, d in reversed(list(enumerate(dates, start=1)))
        )
        return ProviderStatus(self._id, KIND, active, versions)

    def retire(self, version: int) -> None:
        raise OperationNotSupported(
            "AWS KMS keeps every generation of a key's material and cannot retire one: "
            "migrate to another key, then disable or schedule deletion of this one in KMS",
            metadata={"providerId": self._id},
        )

    def __repr__(self) -> str:
        return (
            f"AwsKmsKeyProvider(provider_id={self._id!r}, key={self._key_id!r}, "
            f"region={self._region!r}, endpoint={self._endpoint!r}, timeout={self._timeout})"
        )

    # --- internals --------------------------------------------------------------------------------
    def _rotations(self) -> list[dt.datetime | None]:
        dates: list[dt.datetime | None] = []
        marker: str | None = None
        while True:
            args: dict[str, Any] = {"KeyId": self._key_id}
            if marker:
                args["Marker"] = marker
            request = functools.partial(self._kms.list_key_rotations, **args)
            page = self._call("list_rotations", request)
            rotations = page.get("Rotations")
            for item in rotations if isinstance(rotations, list) else []:
                dates.append(_time(item.get("RotationDate") if isinstance(item, dict) else None))
            marker = page.get("NextMarker") if page.get("Truncated") else None
            if not marker:
                return sorted(dates, key=lambda d: d or dt.datetime.min.replace(tzinfo=dt.UTC))

    def _own(self, wrapped: WrappedDek) -> None:
        if wrapped.provider_id != self._id:
            raise IntegrityCheckFailed("wrapped key belongs to another key provider")
        if not 0 < len(wrapped.blob) <= MAX_BLOB or wrapped.kek_version < 1:
            raise IntegrityCheckFailed("wrapped key is malformed")

    def _blob(self, op: str, answer: dict[str, Any]) -> bytes:
        blob = answer.get("CiphertextBlob")
        if not isinstance(blob, bytes) or not 0 < len(blob) <= MAX_BLOB:
            raise self._unavailable(op, "bad_response")
        return blob

    def _call(
        self, op: str, request: Callable[[], Any], *, rejected_is_tampering: bool = False
    ) -> dict[str, Any]:
        exc = self._exc
        try:
            answer = request()
        except exc.ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if rejected_is_tampering and code in _REJECTED:
                raise IntegrityCheckFailed("wrapped key failed authentication") from None
            raise self._unavailable(op, _CAUSES.get(code, "rejected")) from None
        except (exc.ConnectTimeoutError, exc.ReadTimeoutError):
            raise self._unavailable(op, "timeout") from None
        except exc.NoCredentialsError:
            raise self._unavailable(op, "no_credentials") from None
        except exc.EndpointConnectionError:
            raise self._unavailable(op, "unreachable") from None
        except Exception:  # any other botocore / HTTP failure: mapped, never leaked
            raise self._unavailable(op, "server_error") from None
        return answer if isinstance(answer, dict) else {}

    def _unavailable(self, op: str, cause: str) -> KeyProviderUnavailable:
        return KeyProviderUnavailable(
            f"aws-kms {op} failed ({cause.replace('_', ' ')})",
            metadata={"providerId": self._id, "cause": cause},
        )


def _ctx(aad: bytes, version: int) -> dict[str, str]:
    return {AAD_KEY: base64.b64encode(aad).decode("ascii"), VERSION_KEY: str(version)}


def _time(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return None
