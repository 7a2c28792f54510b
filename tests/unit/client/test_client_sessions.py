"""The session and OAuth additions of issue 21 on VaultClient and AsyncVaultClient, against a
real gRPC server with recording fake servicers: ResetCredentialSession, SetPlatformApplication,
ListPlatformApplications, and the login / consent fields of SecretMaterial."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import grpc
import pipvault_client as pv
import pytest
from pipsync.vault.v1 import credential_pb2, credential_service_pb2, trading_pb2
from test_client_fakes import FakeVault, fail, reply, running_fake_vault

FAST_RETRY = pv.RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.02)
NAME = "workspaces/fx/credentials/ct1"


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    with running_fake_vault() as fake:
        yield fake


@pytest.fixture
def client(vault: FakeVault) -> Iterator[pv.VaultClient]:
    with pv.VaultClient(vault.address, token="dev-token", retry=FAST_RETRY) as c:
        yield c


@pytest.fixture
async def aclient(vault: FakeVault) -> AsyncIterator[pv.AsyncVaultClient]:
    async with pv.AsyncVaultClient(vault.address, token="dev-token", retry=FAST_RETRY) as c:
        yield c


def _session_cred(
    state: int = credential_pb2.SessionStatus.STATE_IDLE,
) -> credential_pb2.Credential:
    return credential_pb2.Credential(
        name=NAME,
        broker=trading_pb2.BROKER_CTRADER,
        lifecycle=trading_pb2.CREDENTIAL_LIFECYCLE_OAUTH_CONSENT,
        session=credential_pb2.SessionStatus(state=state, generation=3),
    )


def _app(broker: int = trading_pb2.BROKER_CTRADER) -> credential_service_pb2.PlatformApplication:
    return credential_service_pb2.PlatformApplication(
        name="platformApplications/ctrader-live",
        broker=broker,
        environment=trading_pb2.ENVIRONMENT_LIVE,
        client_id_hint="12…ab",
        version=2,
    )


# ResetCredentialSession ---------------------------------------------------------------------


def test_reset_credential_session(client: pv.VaultClient, vault: FakeVault) -> None:
    vault.on(
        "ResetCredentialSession",
        reply(credential_service_pb2.ResetCredentialSessionResponse(credential=_session_cred())),
    )
    cred = client.reset_credential_session(NAME, reason="lockout cleared at the broker")
    assert cred.session.state == credential_pb2.SessionStatus.STATE_IDLE
    assert cred.lifecycle == trading_pb2.CREDENTIAL_LIFECYCLE_OAUTH_CONSENT
    call = vault.last("ResetCredentialSession")
    assert call.request.name == NAME
    assert call.request.reason == "lockout cleared at the broker"
    assert call.metadata["x-pipvault-reason"] == "lockout cleared at the broker"
    assert call.metadata["authorization"] == "Bearer dev-token"
    assert call.time_remaining is not None


def test_reset_takes_the_reason_by_keyword_only(client: pv.VaultClient, vault: FakeVault) -> None:
    with pytest.raises(TypeError):
        client.reset_credential_session(NAME, "positional")  # type: ignore[misc]
    for reason in ("", "  "):
        with pytest.raises(ValueError, match="reason"):
            client.reset_credential_session(NAME, reason=reason)
    assert vault.calls == []


def test_reset_on_a_venue_without_session_surfaces_the_servers_error(
    client: pv.VaultClient, vault: FakeVault
) -> None:
    vault.on(
        "ResetCredentialSession",
        fail(
            grpc.StatusCode.FAILED_PRECONDITION,
            "OPERATION_NOT_SUPPORTED",
            "this credential's broker has no venue session",
            broker="binance_spot",
        ),
    )
    with pytest.raises(pv.FailedPreconditionError) as info:
        client.reset_credential_session("workspaces/fx/credentials/bin", reason="try")
    assert info.value.reason == "OPERATION_NOT_SUPPORTED"
    assert info.value.metadata == {"broker": "binance_spot"}
    assert info.value.method == "/pipsync.vault.v1.CredentialService/ResetCredentialSession"


def test_reset_is_never_retried(client: pv.VaultClient, vault: FakeVault) -> None:
    vault.on("ResetCredentialSession", fail(grpc.StatusCode.UNAVAILABLE, "STORAGE_UNAVAILABLE"))
    with pytest.raises(pv.UnavailableError):
        client.reset_credential_session(NAME, reason="r")
    assert len(vault.calls_to("ResetCredentialSession")) == 1


# platform applications ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "broker", ["ctrader", "CTrader", "BROKER_CTRADER", trading_pb2.BROKER_CTRADER]
)
def test_set_platform_application(client: pv.VaultClient, vault: FakeVault, broker: object) -> None:
    canary = "cs-" + secrets.token_hex(16)
    vault.on(
        "SetPlatformApplication",
        reply(credential_service_pb2.SetPlatformApplicationResponse(platform_application=_app())),
    )
    app = client.set_platform_application(
        broker,
        "ENVIRONMENT_LIVE",
        " 1234_abcd ",
        canary,
        reason="register cTrader app",  # type: ignore[arg-type]
    )
    assert isinstance(app, credential_service_pb2.PlatformApplication)
    assert app.name == "platformApplications/ctrader-live"
    request = vault.last("SetPlatformApplication").request
    assert request.broker == trading_pb2.BROKER_CTRADER
    assert request.environment == trading_pb2.ENVIRONMENT_LIVE
    assert (request.client_id, request.client_secret) == ("1234_abcd", canary)
    assert request.reason == "register cTrader app"
    assert canary not in repr(client)


def test_set_platform_application_checks_before_sending(
    client: pv.VaultClient, vault: FakeVault
) -> None:
    canary = "cs-" + secrets.token_hex(16)
    with pytest.raises(ValueError, match="reason"):
        client.set_platform_application("ctrader", "ENVIRONMENT_LIVE", "id", canary, reason="")
    with pytest.raises(ValueError, match="client_secret"):
        client.set_platform_application("ctrader", "ENVIRONMENT_LIVE", "id", " ", reason="r")
    with pytest.raises(TypeError, match="client_secret"):
        client.set_platform_application(
            "ctrader",
            "ENVIRONMENT_LIVE",
            "id",
            canary.encode(),
            reason="r",  # type: ignore[arg-type]
        )
    with pytest.raises(ValueError, match="client_id"):
        client.set_platform_application("ctrader", "ENVIRONMENT_LIVE", "", canary, reason="r")
    with pytest.raises(ValueError, match="unknown venue") as info:
        client.set_platform_application("nasdaq", "ENVIRONMENT_LIVE", "id", canary, reason="r")
    assert canary not in str(info.value)
    assert vault.calls == []


def test_set_platform_application_error_never_carries_the_secret(
    client: pv.VaultClient, vault: FakeVault
) -> None:
    canary = "cs-" + secrets.token_hex(16)
    vault.on(
        "SetPlatformApplication",
        fail(grpc.StatusCode.UNAVAILABLE, "AUDIT_UNAVAILABLE", "audit log down"),
    )
    with pytest.raises(pv.UnavailableError) as info:
        client.set_platform_application("ctrader", "ENVIRONMENT_PAPER", "id", canary, reason="r")
    for text in (str(info.value), repr(info.value), repr(vars(info.value))):
        assert canary not in text
    assert len(vault.calls_to("SetPlatformApplication")) == 1  # mutating: never retried


def test_list_platform_applications_is_read_only_and_retried(
    client: pv.VaultClient, vault: FakeVault
) -> None:
    vault.script(
        "ListPlatformApplications", fail(grpc.StatusCode.UNAVAILABLE, "STORAGE_UNAVAILABLE")
    )
    vault.on(
        "ListPlatformApplications",
        reply(
            credential_service_pb2.ListPlatformApplicationsResponse(
                platform_applications=[_app(), _app()]
            )
        ),
    )
    iterator = client.list_platform_applications(request_id="same")
    assert vault.calls == []  # lazy
    apps = list(iterator)
    assert [a.name for a in apps] == ["platformApplications/ctrader-live"] * 2
    calls = vault.calls_to("ListPlatformApplications")
    assert len(calls) == 2
    assert {c.metadata["x-request-id"] for c in calls} == {"same"}
    assert all("x-pipvault-reason" not in c.metadata for c in calls)


# material of session and OAuth credentials --------------------------------------------------


def test_create_credential_sends_login_and_consent_material(
    client: pv.VaultClient, vault: FakeVault
) -> None:
    code = "code-" + secrets.token_hex(16)
    vault.script(
        "CreateCredential",
        fail(grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", "bad redirect"),
    )
    material = pv.SecretMaterial(
        account_id="4711",
        authorization_code=code,
        redirect_uri="https://pipsync.example/oauth/ctrader",
    )
    with pytest.raises(pv.InvalidArgumentError) as info:
        client.create_credential(
            "workspaces/fx",
            "ct1",
            broker="ctrader",
            environment="ENVIRONMENT_LIVE",
            key_algorithm="KEY_ALGORITHM_OAUTH_CONSENT",
            material=material,
            scopes=["SCOPE_TRADE"],
            reason="onboard cTrader user",
        )
    sent = vault.last("CreateCredential").request
    assert sent.broker == trading_pb2.BROKER_CTRADER
    assert sent.key_algorithm == trading_pb2.KEY_ALGORITHM_OAUTH_CONSENT
    assert sent.material.authorization_code == code
    assert sent.material.redirect_uri == "https://pipsync.example/oauth/ctrader"
    for text in (str(info.value), repr(info.value), repr(vars(info.value))):
        assert code not in text
    password = "pw-" + secrets.token_hex(16)
    client.create_credential(
        "workspaces/fx",
        "tl1",
        broker="tradelocker",
        environment="ENVIRONMENT_PAPER",
        key_algorithm="KEY_ALGORITHM_SESSION_LOGIN",
        material=pv.SecretMaterial(
            username="trader@example.com", secret=password, server="OSP-DEMO", account_id="1"
        ),
        scopes=[],
        reason="onboard TradeLocker user",
    )
    sent = vault.last("CreateCredential").request
    assert (sent.material.username, sent.material.server) == ("trader@example.com", "OSP-DEMO")
    assert sent.material.secret == password


# the async client ---------------------------------------------------------------------------


async def test_async_reset_set_and_list(aclient: pv.AsyncVaultClient, vault: FakeVault) -> None:
    vault.on(
        "ResetCredentialSession",
        reply(credential_service_pb2.ResetCredentialSessionResponse(credential=_session_cred())),
    )
    vault.on(
        "SetPlatformApplication",
        reply(credential_service_pb2.SetPlatformApplicationResponse(platform_application=_app())),
    )
    vault.on(
        "ListPlatformApplications",
        reply(
            credential_service_pb2.ListPlatformApplicationsResponse(platform_applications=[_app()])
        ),
    )
    cred = await aclient.reset_credential_session(NAME, reason="unlock")
    assert cred.session.generation == 3
    app = await aclient.set_platform_application(
        "ctrader", "ENVIRONMENT_LIVE", "id-1", "s3cret", reason="register"
    )
    assert app.version == 2
    assert [a.name async for a in aclient.list_platform_applications()] == [
        "platformApplications/ctrader-live"
    ]
    assert vault.last("ResetCredentialSession").request.reason == "unlock"
    assert vault.last("SetPlatformApplication").request.client_secret == "s3cret"
    with pytest.raises(ValueError, match="reason"):
        await aclient.reset_credential_session(NAME, reason=" ")
    with pytest.raises(ValueError, match="client_secret"):
        await aclient.set_platform_application(
            "ctrader", "ENVIRONMENT_LIVE", "id-1", "", reason="register"
        )


async def test_async_mutations_are_never_retried(
    aclient: pv.AsyncVaultClient, vault: FakeVault
) -> None:
    for method in ("ResetCredentialSession", "SetPlatformApplication"):
        vault.on(method, fail(grpc.StatusCode.UNAVAILABLE, "STORAGE_UNAVAILABLE"))
    with pytest.raises(pv.UnavailableError):
        await aclient.reset_credential_session(NAME, reason="r")
    with pytest.raises(pv.UnavailableError):
        await aclient.set_platform_application("ctrader", "ENVIRONMENT_LIVE", "i", "s", reason="r")
    assert len(vault.calls_to("ResetCredentialSession")) == 1
    assert len(vault.calls_to("SetPlatformApplication")) == 1
