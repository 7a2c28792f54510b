"""vaultctl run in-process (``vaultctl.main.main``) against a real gRPC server with fakes."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import io
import json
import re
import secrets
import sys
from collections.abc import Callable, Iterator

import grpc
import pytest
from google.protobuf import timestamp_pb2
from pipsync.vault.v1 import (
    audit_pb2,
    audit_service_pb2,
    credential_pb2,
    credential_service_pb2,
    key_service_pb2,
    trading_pb2,
    workspace_pb2,
    workspace_service_pb2,
)
from test_client_fakes import FakeVault, abort, fail, reply, running_fake_vault
from vaultctl.main import main

TOKEN = "tok-" + secrets.token_hex(8)


@dataclasses.dataclass
class Result:
    code: int
    out: str
    err: str


Run = Callable[..., Result]


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    with running_fake_vault() as fake:
        yield fake


@pytest.fixture
def run(
    vault: FakeVault, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Run:
    for name in (
        "PIPVAULT_REASON",
        "PIPVAULT_TOKEN_FILE",
        "PIPVAULT_TLS_CA",
        "PIPVAULT_TLS_CERT",
        "PIPVAULT_TLS_KEY",
        "PIPVAULT_TLS_SERVER_NAME",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIPVAULT_ADDR", vault.address)
    monkeypatch.setenv("PIPVAULT_TOKEN", TOKEN)
    monkeypatch.setenv("COLUMNS", "200")

    def invoke(*argv: str, stdin: str | None = None) -> Result:
        capsys.readouterr()
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


def _ws(name: str, **kw: object) -> workspace_pb2.Workspace:
    return workspace_pb2.Workspace(name=name, **kw)


def _cred(name: str = "workspaces/desk/credentials/bin1") -> credential_pb2.Credential:
    return credential_pb2.Credential(
        name=name,
        broker=trading_pb2.BROKER_BINANCE_SPOT,
        environment=trading_pb2.ENVIRONMENT_LIVE,
        key_algorithm=trading_pb2.KEY_ALGORITHM_HMAC_SHA256,
        state=credential_pb2.Credential.STATE_ACTIVE,
        api_key_hint="vmPU…Eh8A",
        scopes=[trading_pb2.SCOPE_READ, trading_pb2.SCOPE_TRADE],
        current_version=1,
        versions=[credential_pb2.CredentialVersion(version=1, state=2, kek_reference="local:1")],
    )


def _leak_forms(secret: str) -> list[str]:
    raw = secret.encode()
    return [
        secret,
        raw.hex(),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
    ]


# workspaces ---------------------------------------------------------------------------------


def test_workspace_create_json(run: Run, vault: FakeVault) -> None:
    vault.on(
        "CreateWorkspace",
        lambda req, ctx: workspace_service_pb2.CreateWorkspaceResponse(
            workspace=_ws(
                f"workspaces/{req.workspace_id}",
                display_name=req.workspace.display_name,
                state=workspace_pb2.Workspace.STATE_ACTIVE,
            )
        ),
    )
    result = run(
        "--json", "--reason", "new desk", "workspaces", "create", "desk", "--display-name", "Desk"
    )
    assert result.code == 0, result.err
    document = json.loads(result.out)
    assert document["name"] == "workspaces/desk"
    assert document["display_name"] == "Desk"
    assert document["state"] == "STATE_ACTIVE"
    call = vault.last("CreateWorkspace")
    assert call.request.reason == "new desk"
    assert call.metadata["authorization"] == f"Bearer {TOKEN}"
    assert call.metadata["x-pipvault-reason"] == "new desk"
    assert call.time_remaining is not None


def test_workspace_list_table_follows_pages(run: Run, vault: FakeVault) -> None:
    vault.script(
        "ListWorkspaces",
        reply(
            workspace_service_pb2.ListWorkspacesResponse(
                workspaces=[_ws("workspaces/alpha", display_name="Alpha")], next_page_token="n"
            )
        ),
        reply(
            workspace_service_pb2.ListWorkspacesResponse(
                workspaces=[_ws("workspaces/beta", state=workspace_pb2.Workspace.STATE_FROZEN)]
            )
        ),
    )
    result = run("workspaces", "list")
    assert result.code == 0, result.err
    assert "workspaces/alpha" in result.out and "Alpha" in result.out
    assert "workspaces/beta" in result.out and "frozen" in result.out
    assert len(vault.calls_to("ListWorkspaces")) == 2


def test_workspace_freeze_with_ttl_and_reason_after_the_command(run: Run, vault: FakeVault) -> None:
    result = run("workspaces", "freeze", "prod", "--ttl", "30m", "--reason", "incident 7")
    assert result.code == 0, result.err
    request = vault.last("FreezeWorkspace").request
    assert request.name == "workspaces/prod"
    assert request.ttl.seconds == 1800
    assert request.reason == "incident 7"


def test_reason_from_environment(
    run: Run, vault: FakeVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPVAULT_REASON", "maintenance window")
    assert run("workspaces", "unfreeze", "workspaces/prod").code == 0
    assert vault.last("UnfreezeWorkspace").request.reason == "maintenance window"


def test_missing_reason_is_a_usage_error_and_sends_nothing(run: Run, vault: FakeVault) -> None:
    result = run("workspaces", "freeze", "prod")
    assert result.code == 2
    assert "reason" in result.err
    assert vault.calls == []


def test_server_data_cannot_inject_terminal_escapes(run: Run, vault: FakeVault) -> None:
    vault.on(
        "GetWorkspace",
        reply(
            workspace_service_pb2.GetWorkspaceResponse(
                workspace=_ws(
                    "workspaces/x", display_name="evil\x1b[2J[bold]markup[/bold]\nfake row"
                )
            )
        ),
    )
    result = run("workspaces", "get", "x")
    assert result.code == 0, result.err
    assert "\x1b[2J" not in result.out
    assert "[bold]markup[/bold]" in result.out  # shown literally, not interpreted
    assert vault.last("GetWorkspace").request.name == "workspaces/x"


# credentials: secrets -----------------------------------------------------------------------


def _create_args(*extra: str) -> list[str]:
    return [
        "--reason",
        "onboard desk key",
        "credentials",
        "create",
        "desk",
        "bin1",
        "--broker",
        "binance-spot",
        "--environment",
        "live",
        "--key-algorithm",
        "hmac-sha256",
        "--api-key",
        "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
        "--scope",
        "read",
        "--scope",
        "trade",
        *extra,
    ]


def test_secret_from_stdin_reaches_the_server_and_nowhere_else(run: Run, vault: FakeVault) -> None:
    canary = "canary-" + secrets.token_hex(24)
    vault.on(
        "CreateCredential",
        lambda req, ctx: credential_service_pb2.CreateCredentialResponse(credential=_cred()),
    )
    result = run(*_create_args("--secret-stdin"), stdin=canary + "\n")
    assert result.code == 0, result.err
    request = vault.last("CreateCredential").request
    assert request.material.secret == canary
    assert request.material.api_key.startswith("vmPU")
    assert request.broker == trading_pb2.BROKER_BINANCE_SPOT
    assert request.environment == trading_pb2.ENVIRONMENT_LIVE
    assert request.key_algorithm == trading_pb2.KEY_ALGORITHM_HMAC_SHA256
    assert list(request.scopes) == ["read", "trade"]
    assert "bin1" in result.out and "binance_spot" in result.out
    for form in _leak_forms(canary):
        assert form not in result.out and form not in result.err


def test_secret_json_on_stdin_with_json_output(run: Run, vault: FakeVault) -> None:
    secret, passphrase = secrets.token_hex(16), secrets.token_hex(8)
    vault.on(
        "CreateCredential",
        reply(credential_service_pb2.CreateCredentialResponse(credential=_cred())),
    )
    stdin = json.dumps({"secret": secret, "passphrase": passphrase})
    result = run("--json", *_create_args("--secret-stdin", "--attest"), stdin=stdin)
    assert result.code == 0, result.err
    assert json.loads(result.out)["name"] == "workspaces/desk/credentials/bin1"
    material = vault.last("CreateCredential").request.material
    assert (material.secret, material.passphrase) == (secret, passphrase)
    assert vault.last("CreateCredential").request.attest_on_create
    for value in (secret, passphrase):
        for form in _leak_forms(value):
            assert form not in result.out and form not in result.err


def test_secret_is_not_echoed_when_the_server_refuses(run: Run, vault: FakeVault) -> None:
    canary = secrets.token_urlsafe(24)
    vault.on(
        "CreateCredential",
        fail(
            grpc.StatusCode.INVALID_ARGUMENT,
            "WITHDRAWAL_SCOPE_REJECTED",
            "withdraw is refused",
            field="scopes",
        ),
    )
    result = run(*_create_args("--secret-stdin"), stdin=canary)
    assert result.code == 3
    assert result.err.startswith(
        "error: INVALID_ARGUMENT WITHDRAWAL_SCOPE_REJECTED: withdraw is refused"
    )
    assert "request id: " in result.err
    assert "field: scopes" in result.err
    for form in _leak_forms(canary):
        assert form not in result.out and form not in result.err
    assert TOKEN not in result.out + result.err


@pytest.mark.parametrize("flag", [["--secret", "{}"], ["--secret={}"], ["--secret-std", "{}"]])
def test_there_is_no_secret_flag(run: Run, vault: FakeVault, flag: list[str]) -> None:
    canary = secrets.token_hex(16)
    argv = [part.format(canary) if "{}" in part else part for part in flag]
    result = run(*_create_args(*argv))
    assert result.code == 2
    assert canary not in result.out + result.err
    assert vault.calls == []


def test_hidden_prompt(run: Run, vault: FakeVault, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["s3cret-from-prompt", "okx-passphrase"])
    prompts: list[str] = []
    monkeypatch.setattr(
        "getpass.getpass", lambda prompt="": prompts.append(prompt) or next(answers)
    )
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    argv = _create_args()
    argv[argv.index("binance-spot")] = "okx"
    result = run(*argv)
    assert result.code == 0, result.err
    material = vault.last("CreateCredential").request.material
    assert (material.secret, material.passphrase) == ("s3cret-from-prompt", "okx-passphrase")
    assert prompts == ["API secret: ", "Passphrase: "]
    assert "s3cret-from-prompt" not in result.out + result.err


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("", "empty"),
        ("line one\nline two\n", "single line"),
        ('{"secret": "x", "withdraw_key": "y"}', "unexpected fields"),
        ('{"secret": ', "not valid JSON"),
    ],
)
def test_bad_stdin_is_refused_without_quoting_it(
    run: Run, vault: FakeVault, stdin: str, message: str
) -> None:
    result = run(*_create_args("--secret-stdin"), stdin=stdin)
    assert result.code == 2
    assert message in result.err
    assert "line two" not in result.err and "withdraw_key" not in result.err
    assert vault.calls == []


def test_no_terminal_and_no_stdin_flag(run: Run, vault: FakeVault) -> None:
    result = run(*_create_args(), stdin="piped-but-not-requested")
    assert result.code == 2
    assert "--secret-stdin" in result.err
    assert vault.calls == []


def test_private_key_pem_from_stdin(run: Run, vault: FakeVault) -> None:
    pem = (
        "-----BEGIN "
        + "PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI"
        + secrets.token_hex(8)
        + "\n-----END PRIVATE KEY-----\n"
    )
    argv = _create_args("--secret-stdin")
    argv[argv.index("hmac-sha256")] = "ed25519"
    result = run(*argv, stdin=pem)
    assert result.code == 0, result.err
    request = vault.last("CreateCredential").request
    assert request.material.private_key == pem
    assert request.key_algorithm == trading_pb2.KEY_ALGORITHM_ED25519
    assert "PRIVATE KEY" not in result.out + result.err


def test_single_tier_error_and_ack_flag(run: Run, vault: FakeVault) -> None:
    vault.script(
        "CreateCredential",
        fail(grpc.StatusCode.FAILED_PRECONDITION, "SINGLE_TIER_NOT_ACKNOWLEDGED", "acknowledge it"),
    )
    argv = _create_args("--secret-stdin")
    argv[argv.index("binance-spot")] = "oanda"
    argv[argv.index("hmac-sha256")] = "bearer"
    first = run(*argv, stdin="token-1")
    assert first.code == 3
    assert "FAILED_PRECONDITION SINGLE_TIER_NOT_ACKNOWLEDGED" in first.err
    second = run(*argv, "--ack-single-tier", stdin="token-1")
    assert second.code == 0, second.err
    assert vault.last("CreateCredential").request.acknowledge_single_permission_tier


# credentials: lifecycle ---------------------------------------------------------------------


def test_generate_key_prints_the_public_key(run: Run, vault: FakeVault) -> None:
    public = (
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA" + "A" * 44 + "\n-----END PUBLIC KEY-----"
    )
    vault.on(
        "GenerateCredentialKey",
        reply(
            credential_service_pb2.GenerateCredentialKeyResponse(
                credential=_cred(), public_key=public
            )
        ),
    )
    result = run(
        "--reason",
        "r",
        "credentials",
        "generate-key",
        "desk",
        "ed1",
        "--broker",
        "binance-spot",
        "--environment",
        "testnet",
        "--algorithm",
        "ed25519",
        "--scope",
        "trade",
    )
    assert result.code == 0, result.err
    assert public in result.out
    request = vault.last("GenerateCredentialKey").request
    assert request.key_algorithm == trading_pb2.KEY_ALGORITHM_ED25519
    assert request.environment == trading_pb2.ENVIRONMENT_TESTNET
    bad = run(
        "--reason",
        "r",
        "credentials",
        "generate-key",
        "desk",
        "ed1",
        "--broker",
        "binance-spot",
        "--environment",
        "live",
        "--algorithm",
        "hmac-sha256",
    )
    assert bad.code == 2


def test_list_show_attach_promote(run: Run, vault: FakeVault) -> None:
    vault.on(
        "ListCredentials",
        reply(credential_service_pb2.ListCredentialsResponse(credentials=[_cred()])),
    )
    vault.on(
        "GetCredential", reply(credential_service_pb2.GetCredentialResponse(credential=_cred()))
    )
    listing = run("credentials", "list", "desk", "--broker", "binance-spot", "--show-revoked")
    assert listing.code == 0, listing.err
    assert "workspaces/desk/credentials/bin1" in listing.out and "vmPU…Eh8A" in listing.out
    request = vault.last("ListCredentials").request
    assert (request.parent, request.broker, request.show_revoked) == (
        "workspaces/desk",
        trading_pb2.BROKER_BINANCE_SPOT,
        True,
    )
    shown = run("--json", "credentials", "show", "desk/bin1")
    assert json.loads(shown.out)["api_key_hint"] == "vmPU…Eh8A"
    assert (
        run("--reason", "r", "credentials", "attach-key", "desk/bin1", "--api-key", "K1").code == 0
    )
    assert vault.last("AttachCredentialApiKey").request.api_key == "K1"
    assert run("--reason", "r", "credentials", "promote", "desk/bin1/2").code == 0
    assert vault.last("PromoteCredentialVersion").request.name == (
        "workspaces/desk/credentials/bin1/versions/2"
    )


def test_rotate_from_stdin_and_generated(run: Run, vault: FakeVault) -> None:
    vault.on(
        "RotateCredential",
        lambda req, ctx: credential_service_pb2.RotateCredentialResponse(
            credential=_cred(),
            version=credential_pb2.CredentialVersion(
                name="workspaces/desk/credentials/bin1/versions/2", version=2, state=1
            ),
            public_key="PUB" if req.generate_key else "",
        ),
    )
    canary = secrets.token_hex(20)
    result = run(
        "--reason",
        "quarterly",
        "credentials",
        "rotate",
        "desk/bin1",
        "--api-key",
        "K2",
        "--secret-stdin",
        stdin=canary,
    )
    assert result.code == 0, result.err
    assert vault.last("RotateCredential").request.material.secret == canary
    assert "versions/2" in result.out and canary not in result.out + result.err
    generated = run("--reason", "quarterly", "credentials", "rotate", "desk/bin1", "--generate-key")
    assert generated.code == 0, generated.err
    assert vault.last("RotateCredential").request.generate_key
    assert "PUB" in generated.out


def test_revoke_needs_confirmation(run: Run, vault: FakeVault) -> None:
    refused = run("--reason", "leaked", "credentials", "revoke", "desk/bin1", stdin="")
    assert refused.code == 2 and "--yes" in refused.err
    assert vault.calls == []
    done = run("--reason", "leaked", "credentials", "revoke", "desk/bin1", "--yes")
    assert done.code == 0, done.err
    assert vault.last("RevokeCredential").request.reason == "leaked"


def test_policy_flags(run: Run, vault: FakeVault) -> None:
    result = run(
        "--reason",
        "limits",
        "credentials",
        "policy",
        "desk/bin1",
        "--allow-symbol",
        "BTCUSDT",
        "--allow-symbol",
        "ETHUSDT",
        "--allow-side",
        "buy",
        "--allow-order-type",
        "limit",
        "--max-quantity",
        "0.5",
        "--max-notional",
        "25000",
        "--max-orders-per-interval",
        "10",
        "--interval",
        "60s",
        "--max-freshness",
        "5s",
    )
    assert result.code == 0, result.err
    policy = vault.last("UpdateCredentialPolicy").request.policy
    assert list(policy.allowed_symbols) == ["BTCUSDT", "ETHUSDT"]
    assert list(policy.allowed_sides) == [trading_pb2.ORDER_SIDE_BUY]
    assert list(policy.allowed_order_types) == [trading_pb2.ORDER_TYPE_LIMIT]
    assert (policy.max_quantity, policy.max_notional) == ("0.5", "25000")
    assert policy.max_orders_per_interval == 10
    assert policy.rate_interval.seconds == 60 and policy.max_freshness.seconds == 5
    no_flags = run("--reason", "x", "credentials", "policy", "desk/bin1")
    assert no_flags.code == 2 and "at least one policy flag" in no_flags.err
    assert run("--reason", "x", "credentials", "policy", "desk/bin1", "--clear").code == 0
    assert vault.last("UpdateCredentialPolicy").request.policy == credential_pb2.OrderPolicy()
    mixed = run(
        "--reason", "x", "credentials", "policy", "desk/bin1", "--clear", "--max-notional", "5"
    )
    assert mixed.code == 2
    assert (
        run("--reason", "x", "credentials", "policy", "desk/bin1", "--max-quantity", "1e5").code
        == 2
    )


def test_attest(run: Run, vault: FakeVault) -> None:
    vault.on(
        "AttestCredentialPermissions",
        reply(
            credential_service_pb2.AttestCredentialPermissionsResponse(
                attestation=credential_pb2.Attestation(
                    result=credential_pb2.Attestation.RESULT_EXCESSIVE,
                    venue_fields={"enableWithdrawals": "true"},
                ),
                credential=_cred(),
            )
        ),
    )
    result = run("--reason", "check", "credentials", "attest", "desk/bin1")
    assert result.code == 0, result.err
    assert "excessive" in result.out and "enableWithdrawals=true" in result.out


@pytest.mark.parametrize(
    "argv",
    [
        ["credentials", "list", "desk", "--broker", "nasdaq"],
        ["workspaces", "get", "Bad_Name"],
        ["workspaces", "freeze", "prod", "--ttl", "soon", "--reason", "x"],
        ["audit", "list", "--since", "yesterday-ish"],
        ["nonsense"],
    ],
)
def test_usage_errors_exit_2(run: Run, vault: FakeVault, argv: list[str]) -> None:
    assert run(*argv).code == 2
    assert vault.calls == []


# audit --------------------------------------------------------------------------------------


def _event(
    seq: int, when: datetime.datetime, action: str = "credential.use"
) -> audit_pb2.AuditEvent:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(when)
    return audit_pb2.AuditEvent(
        name=f"workspaces/desk/auditEvents/{seq}",
        sequence=seq,
        event_time=ts,
        workspace="workspaces/desk",
        action=action,
        outcome=audit_pb2.AuditEvent.OUTCOME_SUCCESS,
        actor=audit_pb2.Actor(type=audit_pb2.Actor.TYPE_SERVICE, id="spiffe://prod/router"),
        reason="signal 1",
    )


T0 = datetime.datetime(2025, 5, 1, 12, 0, tzinfo=datetime.UTC)


def test_audit_list_filters_and_limit(run: Run, vault: FakeVault) -> None:
    vault.on(
        "ListAuditEvents",
        reply(
            audit_service_pb2.ListAuditEventsResponse(
                events=[_event(n, T0) for n in range(1, 6)], next_page_token="more"
            )
        ),
    )
    result = run(
        "--json",
        "audit",
        "list",
        "--workspace",
        "desk",
        "--credential",
        "desk/bin1",
        "--actor",
        "alice",
        "--action",
        "credential.",
        "--outcome",
        "denied",
        "--since",
        "2025-05-01T00:00:00Z",
        "--until",
        "2025-05-02",
        "--limit",
        "3",
    )
    assert result.code == 0, result.err
    assert [e["sequence"] for e in json.loads(result.out)["events"]] == [
        1,
        2,
        3,
    ]  # numbers, like every --json int64
    calls = vault.calls_to("ListAuditEvents")
    assert len(calls) == 1  # the limit was reached on the first page
    flt = calls[0].request.filter
    assert flt.workspace == "workspaces/desk"
    assert flt.credential == "workspaces/desk/credentials/bin1"
    assert (flt.actor, flt.action) == ("alice", "credential.")
    assert flt.outcome == audit_pb2.AuditEvent.OUTCOME_DENIED
    assert flt.start_time.ToDatetime(tzinfo=datetime.UTC) == datetime.datetime(
        2025, 5, 1, tzinfo=datetime.UTC
    )
    assert flt.end_time.ToDatetime(tzinfo=datetime.UTC) == datetime.datetime(
        2025, 5, 2, tzinfo=datetime.UTC
    )
    assert calls[0].request.page_size == 3


def test_audit_list_table(run: Run, vault: FakeVault) -> None:
    vault.on(
        "ListAuditEvents", reply(audit_service_pb2.ListAuditEventsResponse(events=[_event(1, T0)]))
    )
    result = run("audit", "list")
    assert result.code == 0, result.err
    assert "credential.use" in result.out and "spiffe://prod/router" in result.out


def test_audit_tail_json(run: Run, vault: FakeVault) -> None:
    vault.on(
        "StreamAuditEvents",
        lambda req, ctx: [
            audit_service_pb2.StreamAuditEventsResponse(event=_event(n, T0)) for n in (1, 2)
        ],
    )
    result = run("--json", "audit", "tail", "--workspace", "desk")
    assert result.code == 0, result.err
    assert [e["sequence"] for e in json.loads(result.out)["events"]] == [1, 2]
    assert not vault.last("StreamAuditEvents").request.follow


def test_audit_tail_follow_reopens_without_duplicates(run: Run, vault: FakeVault) -> None:
    t1, t2 = T0, T0 + datetime.timedelta(seconds=1)

    def first(request, context):
        yield audit_service_pb2.StreamAuditEventsResponse(event=_event(1, t1))
        yield audit_service_pb2.StreamAuditEventsResponse(event=_event(2, t2))
        abort(context, grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED", "window over")

    def second(request, context):
        yield audit_service_pb2.StreamAuditEventsResponse(event=_event(3, t2, "credential.rotate"))
        abort(context, grpc.StatusCode.UNAVAILABLE, "STORAGE_UNAVAILABLE", "restarting")

    def third(request, context):
        yield audit_service_pb2.StreamAuditEventsResponse(event=_event(4, t2))
        abort(context, grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED", "policy changed")

    vault.script("StreamAuditEvents", first, second, third)
    result = run("--json", "audit", "tail", "--follow", "--since", "2020-01-01")
    assert result.code != 0  # ends on the permission error, not on the restart
    assert "resuming" in result.err
    lines = [json.loads(line) for line in result.out.splitlines()]
    assert [e["sequence"] for e in lines] == [1, 2, 3, 4]
    calls = vault.calls_to("StreamAuditEvents")
    assert len(calls) == 3 and all(c.request.follow for c in calls)
    # Each reopen resumes strictly after the last event printed per chain, same filters.
    assert [list(c.request.resume_after) for c in calls] == [
        [],
        ["workspaces/desk/auditEvents/2"],
        ["workspaces/desk/auditEvents/3"],
    ]
    assert len({c.request.filter.SerializeToString() for c in calls}) == 1


def test_audit_export_continues_after_a_window_and_gives_up_on_an_empty_one(
    run: Run, vault: FakeVault
) -> None:
    def window(request, context):
        yield audit_service_pb2.StreamAuditEventsResponse(event=_event(1, T0))
        abort(context, grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED", "window over")

    def rest(request, context):
        yield audit_service_pb2.StreamAuditEventsResponse(event=_event(2, T0))

    def stuck(request, context):
        abort(context, grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED", "window over")
        yield from ()

    vault.script("StreamAuditEvents", window, rest, stuck)
    done = run("audit", "export")
    assert done.code == 0, done.err
    assert [json.loads(x)["sequence"] for x in done.out.splitlines()] == [1, 2]
    assert list(vault.calls_to("StreamAuditEvents")[1].request.resume_after) == [
        "workspaces/desk/auditEvents/1"
    ]
    assert run("audit", "export").code != 0  # no progress in a whole window: an error


def test_audit_export_writes_json_lines(run: Run, vault: FakeVault) -> None:
    def backlog(request, context):
        yield audit_service_pb2.StreamAuditEventsResponse(event=_event(1, T0))
        yield audit_service_pb2.StreamAuditEventsResponse(event=_event(2, T0))

    vault.script("StreamAuditEvents", backlog)
    result = run("audit", "export", "--since", "2020-01-01", "--format", "jsonl")
    assert result.code == 0, result.err
    lines = [json.loads(line) for line in result.out.splitlines()]
    assert [e["name"] for e in lines] == [
        "workspaces/desk/auditEvents/1",
        "workspaces/desk/auditEvents/2",
    ]
    request = vault.last("StreamAuditEvents").request
    assert not request.follow and request.filter.start_time.ToDatetime().year == 2020


def test_audit_verify_exit_codes(run: Run, vault: FakeVault) -> None:
    vault.script(
        "VerifyAuditLog",
        reply(
            audit_service_pb2.VerifyAuditLogResponse(
                intact=True, chains_checked=2, events_checked=40
            )
        ),
        reply(
            audit_service_pb2.VerifyAuditLogResponse(
                intact=False,
                chains_checked=1,
                events_checked=7,
                first_bad_event="workspaces/desk/auditEvents/7",
                problem="hash_mismatch",
            )
        ),
        reply(audit_service_pb2.VerifyAuditLogResponse(intact=False, problem="truncated")),
    )
    ok = run("audit", "verify")
    assert ok.code == 0 and "intact" in ok.out
    bad = run("audit", "verify", "--workspace", "desk")
    assert bad.code == 1
    assert "workspaces/desk/auditEvents/7" in bad.out and "hash_mismatch" in bad.out
    assert vault.last("VerifyAuditLog").request.workspace == "workspaces/desk"
    as_json = run("--json", "audit", "verify")
    assert as_json.code == 1
    assert json.loads(as_json.out)["intact"] is False


# keys ---------------------------------------------------------------------------------------


def _provider(pid: str = "local", primary: bool = True) -> key_service_pb2.KeyProviderStatus:
    return key_service_pb2.KeyProviderStatus(
        provider_id=pid,
        kind="local",
        primary=primary,
        healthy=True,
        versions=[
            key_service_pb2.KekVersion(
                version=2, state=1, wrap_count=5, wrap_limit=1000, ciphertext_count=4
            )
        ],
    )


def test_keys_status_rotate_migrate(run: Run, vault: FakeVault) -> None:
    vault.on(
        "GetKeyStatus",
        reply(
            key_service_pb2.GetKeyStatusResponse(
                providers=[_provider(), _provider("transit", False)]
            )
        ),
    )
    status = run("keys", "status")
    assert status.code == 0, status.err
    assert "local (primary)" in status.out and "transit" in status.out
    assert re.search(r"│\s+5 │\s+1000 │\s+4 │", status.out), status.out

    vault.on(
        "RotateKeyEncryptionKey",
        reply(
            key_service_pb2.RotateKeyEncryptionKeyResponse(
                provider=_provider(), new_version=3, rewrapped=4
            )
        ),
    )
    rotated = run("--reason", "yearly", "keys", "rotate", "--provider", "local")
    assert rotated.code == 0, rotated.err
    assert "new KEK version 3" in rotated.out
    assert vault.last("RotateKeyEncryptionKey").request.provider_id == "local"

    vault.on(
        "MigrateKeys",
        lambda req, ctx: [
            key_service_pb2.MigrateKeysResponse(total=4, migrated=m, remaining=4 - m, done=m == 4)
            for m in (0, 2, 4)
        ],
    )
    migrated = run(
        "--reason", "launch gate", "keys", "migrate", "--to", "transit", "--batch-size", "2"
    )
    assert migrated.code == 0, migrated.err
    assert "4/4 data keys under transit" in migrated.out
    request = vault.last("MigrateKeys").request
    assert (request.target_provider_id, request.batch_size) == ("transit", 2)
    assert vault.last("MigrateKeys").time_remaining > 60  # a long deadline, not the 10 s default

    as_json = run("--json", "--reason", "launch gate", "keys", "migrate", "--to", "transit")
    assert json.loads(as_json.out)["done"] is True


@pytest.mark.parametrize("columns", [200, 80, 60])
def test_keys_status_never_cuts_a_number(
    columns: int, run: Run, vault: FakeVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers = {"kek": 12, "wraps": 123456789, "limit": 1073741824, "census": 987654321}
    provider = key_service_pb2.KeyProviderStatus(
        provider_id="transit-prod-eu-west-1", kind="vault-transit", primary=True, healthy=True,
        versions=[
            key_service_pb2.KekVersion(
                version=numbers["kek"], state=1, wrap_count=numbers["wraps"],
                wrap_limit=numbers["limit"], ciphertext_count=numbers["census"],
            )
        ],
    )  # fmt: skip
    vault.on("GetKeyStatus", reply(key_service_pb2.GetKeyStatusResponse(providers=[provider])))
    monkeypatch.setenv("COLUMNS", str(columns))
    status = run("keys", "status")
    assert status.code == 0, status.err
    assert max(len(line) for line in status.out.splitlines()) <= columns
    for value in numbers.values():  # each on one line, whole, between cell borders
        assert re.search(rf"│\s*{value}\s*│", status.out), (value, status.out)


def test_keys_status_json_prints_numbers(run: Run, vault: FakeVault) -> None:
    vault.on("GetKeyStatus", reply(key_service_pb2.GetKeyStatusResponse(providers=[_provider()])))
    doc = json.loads(run("--json", "keys", "status").out)
    version = doc["providers"][0]["versions"][0]
    assert version == {
        "version": 2, "state": "STATE_ACTIVE", "wrap_count": 5, "wrap_limit": 1000,
        "ciphertext_count": 4, **{k: v for k, v in version.items() if k not in (
            "version", "state", "wrap_count", "wrap_limit", "ciphertext_count")},
    }  # fmt: skip
    assert all(type(version[k]) is int for k in ("wrap_count", "wrap_limit", "ciphertext_count"))


def test_incomplete_migration_exits_1(run: Run, vault: FakeVault) -> None:
    vault.on(
        "MigrateKeys", reply(key_service_pb2.MigrateKeysResponse(total=4, migrated=2, remaining=2))
    )
    result = run("--reason", "launch", "keys", "migrate", "--to", "transit")
    assert result.code == 1
    assert "run again to resume" in result.out


# connection ---------------------------------------------------------------------------------


def test_unavailable_exits_4(run: Run, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPVAULT_ADDR", f"unix://{tmp_path}/absent.sock")
    result = run("--timeout", "1s", "keys", "status")
    assert result.code == 4
    assert result.err.startswith("error: UNAVAILABLE")
    assert TOKEN not in result.err


def test_plaintext_off_loopback_is_a_usage_error(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPVAULT_ADDR", "vault.prod.internal:8201")
    result = run("keys", "status")
    assert result.code == 2 and "plaintext" in result.err


def test_token_file_and_unix_socket(
    run: Run, vault: FakeVault, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("file-token\n")
    monkeypatch.delenv("PIPVAULT_TOKEN")
    result = run("--addr", vault.unix_address, "--token-file", str(token_file), "keys", "status")
    assert result.code == 0, result.err
    assert vault.last("GetKeyStatus").metadata["authorization"] == "Bearer file-token"
    assert "file-token" not in result.out + result.err


def test_help_and_version(run: Run) -> None:
    assert run("--help").code == 0
    assert run("--version").code == 0


# sessions and OAuth (issue 21) --------------------------------------------------------------


def _ts(when: datetime.datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(when)
    return ts


def _session_cred() -> credential_pb2.Credential:
    return credential_pb2.Credential(
        name="workspaces/fx/credentials/tl1",
        broker=trading_pb2.BROKER_TRADELOCKER,
        environment=trading_pb2.ENVIRONMENT_PAPER,
        key_algorithm=trading_pb2.KEY_ALGORITHM_SESSION_LOGIN,
        state=credential_pb2.Credential.STATE_ACTIVE,
        api_key_hint="tr…om",
        lifecycle=trading_pb2.CREDENTIAL_LIFECYCLE_PASSWORD_SESSION,
        session=credential_pb2.SessionStatus(
            state=credential_pb2.SessionStatus.STATE_LOCKED_OUT,
            expire_time=_ts(datetime.datetime(2025, 5, 1, 13, 0, tzinfo=datetime.UTC)),
            consecutive_failures=5,
            next_attempt_time=_ts(datetime.datetime(2025, 5, 1, 14, 0, tzinfo=datetime.UTC)),
            last_error_reason="VENUE_LOGIN_FAILED",
            generation=7,
        ),
    )


def _session_args(*extra: str) -> list[str]:
    return [
        "--reason", "onboard fx desk", "credentials", "create", "fx", "tl1",
        "--broker", "tradelocker", "--environment", "demo", "--key-algorithm", "session-login",
        "--username", "trader@example.com", "--server", "OSP-DEMO", "--account-id", "1234",
        "--allow-symbol", "EURUSD", "--max-quantity", "2", *extra,
    ]  # fmt: skip


def test_create_password_session_credential(run: Run, vault: FakeVault) -> None:
    password = "pw-" + secrets.token_hex(16)
    vault.on(
        "CreateCredential",
        reply(credential_service_pb2.CreateCredentialResponse(credential=_session_cred())),
    )
    result = run(*_session_args("--secret-stdin"), stdin=password + "\n")
    assert result.code == 0, result.err
    request = vault.last("CreateCredential").request
    assert request.broker == trading_pb2.BROKER_TRADELOCKER
    assert request.key_algorithm == trading_pb2.KEY_ALGORITHM_SESSION_LOGIN
    m = request.material
    assert (m.username, m.server, m.account_id, m.secret) == (
        "trader@example.com", "OSP-DEMO", "1234", password,
    )  # fmt: skip
    assert list(request.policy.allowed_symbols) == ["EURUSD"]
    assert request.policy.max_quantity == "2"
    assert "password-session" in result.out and "locked-out" in result.out
    for form in _leak_forms(password):
        assert form not in result.out + result.err


def test_create_password_session_prompts_for_the_password(
    run: Run, vault: FakeVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts: list[str] = []
    monkeypatch.setattr("getpass.getpass", lambda prompt="": prompts.append(prompt) or "pw-1")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    assert run(*_session_args()).code == 0
    assert prompts == ["Password: "]
    assert vault.last("CreateCredential").request.material.secret == "pw-1"


def _consent_args(*extra: str) -> list[str]:
    return [
        "--reason", "onboard ctrader user", "credentials", "create", "fx", "ct1",
        "--broker", "ctrader", "--environment", "live", "--key-algorithm", "oauth-consent",
        "--account-id", "4711", "--redirect-uri", "https://pipsync.example/oauth/ctrader",
        *extra,
    ]  # fmt: skip


@pytest.mark.parametrize("flag", [[], ["--authorization-code"]])
def test_create_oauth_consent_reads_the_code_from_stdin(
    run: Run, vault: FakeVault, flag: list[str]
) -> None:
    code = "code-" + secrets.token_hex(16)
    result = run("--json", *_consent_args(*flag, "--secret-stdin"), stdin=code + "\n")
    assert result.code == 0, result.err
    m = vault.last("CreateCredential").request.material
    assert (m.authorization_code, m.secret) == (code, "")
    assert m.redirect_uri == "https://pipsync.example/oauth/ctrader"
    assert vault.last("CreateCredential").request.key_algorithm == (
        trading_pb2.KEY_ALGORITHM_OAUTH_CONSENT
    )
    for form in _leak_forms(code):
        assert form not in result.out + result.err


def test_create_oauth_consent_prompts_and_json_stdin(
    run: Run, vault: FakeVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = "code-" + secrets.token_hex(16)
    document = json.dumps({"authorization_code": code, "redirect_uri": "https://r.example/cb"})
    argv = _consent_args("--secret-stdin")
    argv[argv.index("--redirect-uri") : argv.index("--redirect-uri") + 2] = []
    assert run(*argv, stdin=document).code == 0
    m = vault.last("CreateCredential").request.material
    assert (m.authorization_code, m.redirect_uri) == (code, "https://r.example/cb")
    prompts: list[str] = []
    monkeypatch.setattr("getpass.getpass", lambda prompt="": prompts.append(prompt) or code)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    assert run(*_consent_args()).code == 0
    assert prompts == ["Authorization code: "]
    assert vault.last("CreateCredential").request.material.authorization_code == code


@pytest.mark.parametrize(
    "argv",
    [
        ["--authorization-code", "{}"],
        ["--authorization-code={}"],
        ["--client-secret", "{}"],
        ["--secret-stdin={}"],
    ],
)
def test_an_authorization_code_is_never_taken_from_argv(
    run: Run, vault: FakeVault, argv: list[str]
) -> None:
    code = "code-" + secrets.token_hex(16)
    result = run(*_consent_args(*[part.format(code) for part in argv]))
    assert result.code == 2
    assert code not in result.out + result.err
    assert vault.calls == []


def test_credentials_show_and_list_show_the_session(run: Run, vault: FakeVault) -> None:
    vault.on("GetCredential", reply(credential_service_pb2.GetCredentialResponse(credential=_session_cred())))  # fmt: skip
    vault.on(
        "ListCredentials",
        reply(
            credential_service_pb2.ListCredentialsResponse(credentials=[_session_cred(), _cred()])
        ),
    )
    shown = run("credentials", "show", "fx/tl1")
    assert shown.code == 0, shown.err
    for text in (
        "password-session", "locked-out", "5 failure(s)", "VENUE_LOGIN_FAILED",
        "2025-05-01T13:00:00Z", "2025-05-01T14:00:00Z", "venue session",
    ):  # fmt: skip
        assert text in shown.out, text
    listed = run("credentials", "list", "fx")
    assert listed.code == 0, listed.err
    for text in (
        "lifecycle",
        "session",
        "locked-out",
        "VENUE_LOGIN_FAILED",
        "2025-05-01T13:00:00Z",
    ):
        assert text in listed.out, text
    as_json = json.loads(run("--json", "credentials", "list", "fx").out)["credentials"]
    assert as_json[0]["lifecycle"] == "CREDENTIAL_LIFECYCLE_PASSWORD_SESSION"
    assert as_json[0]["session"]["state"] == "STATE_LOCKED_OUT"
    assert as_json[0]["session"]["consecutive_failures"] == 5
    assert as_json[0]["session"]["generation"] == 7  # int64 as a JSON number
    assert as_json[0]["session"]["expire_time"] == "2025-05-01T13:00:00Z"
    assert as_json[0]["session"]["last_error_reason"] == "VENUE_LOGIN_FAILED"
    assert as_json[1]["lifecycle"] == "CREDENTIAL_LIFECYCLE_UNSPECIFIED"
    assert "session" not in as_json[1]


def test_reset_session(run: Run, vault: FakeVault) -> None:
    idle = _session_cred()
    idle.session.CopyFrom(credential_pb2.SessionStatus(state=1))
    vault.on(
        "ResetCredentialSession",
        reply(credential_service_pb2.ResetCredentialSessionResponse(credential=idle)),
    )
    missing = run("credentials", "reset-session", "fx/tl1")
    assert missing.code == 2 and "reason" in missing.err
    assert vault.calls == []
    result = run("--reason", "password fixed at the broker", "credentials", "reset-session", "fx/tl1")  # fmt: skip
    assert result.code == 0, result.err
    assert "reset" in result.out and "idle" in result.out
    call = vault.last("ResetCredentialSession")
    assert call.request.name == "workspaces/fx/credentials/tl1"
    assert call.request.reason == "password fixed at the broker"
    document = json.loads(run("--json", "--reason", "r", "credentials", "reset-session", "fx/tl1").out)  # fmt: skip
    assert document["session"]["state"] == "STATE_IDLE"


def test_reset_session_without_a_session_reports_the_servers_error(
    run: Run, vault: FakeVault
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
    result = run("--reason", "r", "credentials", "reset-session", "desk/bin1")
    assert result.code == 3
    assert result.err.startswith(
        "error: FAILED_PRECONDITION OPERATION_NOT_SUPPORTED: "
        "this credential's broker has no venue session"
    )
    assert "broker: binance_spot" in result.err
    assert result.out == ""


def _app() -> credential_service_pb2.PlatformApplication:
    return credential_service_pb2.PlatformApplication(
        name="platformApplications/ctrader-live",
        broker=trading_pb2.BROKER_CTRADER,
        environment=trading_pb2.ENVIRONMENT_LIVE,
        client_id_hint="12…cd",
        version=3,
        update_time=_ts(T0),
    )


def _set_app_args(*extra: str) -> list[str]:
    return [
        "--reason", "register cTrader app", "platform-apps", "set", "--broker", "ctrader",
        "--environment", "live", "--client-id", "1234_abcd", *extra,
    ]  # fmt: skip


def test_platform_apps_set_reads_the_secret_from_stdin(run: Run, vault: FakeVault) -> None:
    canary = "cs-" + secrets.token_hex(24)
    vault.on(
        "SetPlatformApplication",
        reply(credential_service_pb2.SetPlatformApplicationResponse(platform_application=_app())),
    )
    result = run(*_set_app_args("--secret-stdin"), stdin=canary + "\n")
    assert result.code == 0, result.err
    request = vault.last("SetPlatformApplication").request
    assert (request.broker, request.environment) == (
        trading_pb2.BROKER_CTRADER, trading_pb2.ENVIRONMENT_LIVE,
    )  # fmt: skip
    assert (request.client_id, request.client_secret) == ("1234_abcd", canary)
    assert request.reason == "register cTrader app"
    assert "platformApplications/ctrader-live" in result.out and "12…cd" in result.out
    as_json = run("--json", *_set_app_args("--secret-stdin"), stdin=canary)
    assert json.loads(as_json.out)["version"] == 3
    for output in (result, as_json):
        for form in _leak_forms(canary):
            assert form not in output.out + output.err


def test_platform_apps_set_prompts_for_the_secret(
    run: Run, vault: FakeVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts: list[str] = []
    monkeypatch.setattr("getpass.getpass", lambda prompt="": prompts.append(prompt) or "s3")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    assert run(*_set_app_args()).code == 0
    assert prompts == ["Client secret: "]
    assert vault.last("SetPlatformApplication").request.client_secret == "s3"


def test_platform_apps_set_refusals_never_echo_the_secret(run: Run, vault: FakeVault) -> None:
    canary = "cs-" + secrets.token_hex(24)
    for argv in (
        ["--client-secret", canary],
        [f"--client-secret={canary}"],
        [f"--secret-stdin={canary}"],
        [canary],
    ):
        refused = run(*_set_app_args(*argv))
        assert refused.code == 2, argv
        assert canary not in refused.out + refused.err
    no_terminal = run(*_set_app_args(), stdin=canary)
    assert no_terminal.code == 2 and "--secret-stdin" in no_terminal.err
    two_lines = run(*_set_app_args("--secret-stdin"), stdin=f"{canary}\n{canary}\n")
    assert two_lines.code == 2 and canary not in two_lines.err
    assert vault.calls == []
    vault.on(
        "SetPlatformApplication",
        fail(grpc.StatusCode.INVALID_ARGUMENT, "OPERATION_NOT_SUPPORTED", "no OAuth lifecycle"),
    )
    failed = run(*_set_app_args("--secret-stdin"), stdin=canary)
    assert failed.code == 3 and "OPERATION_NOT_SUPPORTED" in failed.err
    for form in _leak_forms(canary):
        assert form not in failed.out + failed.err
    assert TOKEN not in failed.out + failed.err


def test_platform_apps_list(run: Run, vault: FakeVault) -> None:
    empty = run("platform-apps", "list")
    assert empty.code == 0 and "none" in empty.out
    vault.on(
        "ListPlatformApplications",
        reply(
            credential_service_pb2.ListPlatformApplicationsResponse(platform_applications=[_app()])
        ),
    )
    listed = run("platform-apps", "list")
    assert listed.code == 0, listed.err
    assert "platformApplications/ctrader-live" in listed.out and "ctrader" in listed.out
    assert "2025-05-01T12:00:00Z" in listed.out
    document = json.loads(run("--json", "platform-apps", "list").out)
    assert document["platform_applications"][0]["broker"] == "BROKER_CTRADER"
    assert document["platform_applications"][0]["version"] == 3
