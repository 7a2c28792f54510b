"""Every ``--json`` output prints 64-bit integers as JSON numbers (issue 19 §8): proto3 JSON makes
them strings, so ``vaultctl --json keys status`` printed ``"wrap_count": "5"`` while ``pipvault
audit verify --json`` printed numbers. ``vaultctl._output.to_dict`` and the server's
``cli/proto_json.to_document`` (the server may not import the client) must render every API
message alike, and the result must still parse back into the same message."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from google.protobuf import descriptor, json_format
from google.protobuf import message as _message
from pipsync.vault.v1 import (
    audit_pb2,
    audit_service_pb2,
    credential_pb2,
    credential_service_pb2,
    key_service_pb2,
    signing_service_pb2,
    workspace_pb2,
    workspace_service_pb2,
)
from vaultctl._output import to_dict

from vault_server.cli.proto_json import to_document

FD = descriptor.FieldDescriptor
INT64 = {FD.TYPE_INT64, FD.TYPE_UINT64, FD.TYPE_SINT64, FD.TYPE_FIXED64, FD.TYPE_SFIXED64}
BIG = 9_007_199_254_740_993  # above 2**53: a float would lose it

MODULES = [
    audit_pb2, audit_service_pb2, credential_pb2, credential_service_pb2, key_service_pb2,
    signing_service_pb2, workspace_pb2, workspace_service_pb2,
]  # fmt: skip


def _messages() -> Iterator[type[_message.Message]]:
    for module in MODULES:
        for name in module.DESCRIPTOR.message_types_by_name:
            yield getattr(module, name)


def _scalar(field, depth: int):
    if field.type in INT64:
        return BIG + depth if field.type not in (FD.TYPE_SINT64, FD.TYPE_SFIXED64) else -BIG
    if field.cpp_type == FD.CPPTYPE_BOOL:
        return True
    if field.cpp_type == FD.CPPTYPE_STRING:
        return b"\x01\x02" if field.type == FD.TYPE_BYTES else f"s{depth}"
    if field.cpp_type == FD.CPPTYPE_ENUM:
        return field.enum_type.values[-1].number
    if field.cpp_type in (FD.CPPTYPE_FLOAT, FD.CPPTYPE_DOUBLE):
        return 1.5
    return 7


def _fill(msg: _message.Message, depth: int = 0) -> _message.Message:
    """Every field set (one member of each oneof), lists and maps with two entries."""
    if depth > 3:
        return msg
    oneofs_done: set[str] = set()
    for field in msg.DESCRIPTOR.fields:
        oneof = field.containing_oneof
        if oneof is not None:
            if oneof.name in oneofs_done:
                continue
            oneofs_done.add(oneof.name)
        target = getattr(msg, field.name)
        mt = field.message_type
        if mt is not None and mt.GetOptions().map_entry:
            key_f, value_f = mt.fields_by_name["key"], mt.fields_by_name["value"]
            for i in range(2):
                key = _scalar(key_f, i) if key_f.cpp_type != FD.CPPTYPE_STRING else f"k{i}"
                key = key + i if isinstance(key, int) and not isinstance(key, bool) else key
                if value_f.message_type is not None:
                    _fill(target[key], depth + 1)
                else:
                    target[key] = _scalar(value_f, i)
        elif mt is not None:
            if mt.full_name == "google.protobuf.Timestamp":
                items = [target] if not field.is_repeated else [target.add()]
                for ts in items:
                    ts.FromSeconds(1_700_000_000)
            elif mt.full_name == "google.protobuf.Duration":
                for d in [target] if not field.is_repeated else [target.add()]:
                    d.FromSeconds(90)
            elif mt.full_name.startswith("google.protobuf."):
                continue
            elif field.is_repeated:
                _fill(target.add(), depth + 1)
                _fill(target.add(), depth + 1)
            else:
                _fill(target, depth + 1)
        elif field.is_repeated:
            target.extend([_scalar(field, depth), _scalar(field, depth + 1)])
        else:
            setattr(msg, field.name, _scalar(field, depth))
    return msg


def _int64_leaves(msg: _message.Message, doc: dict) -> Iterator[object]:
    for field in msg.DESCRIPTOR.fields:
        if field.name not in doc or field.message_type is not None:
            if field.message_type is not None and field.name in doc:
                mt = field.message_type
                if mt.GetOptions().map_entry or mt.full_name.startswith("google.protobuf."):
                    continue
                value = getattr(msg, field.name)
                if field.is_repeated:
                    for v, d in zip(value, doc[field.name], strict=False):
                        yield from _int64_leaves(v, d)
                else:
                    yield from _int64_leaves(value, doc[field.name])
            continue
        if field.type in INT64:
            items = doc[field.name] if field.is_repeated else [doc[field.name]]
            yield from items


@pytest.mark.parametrize("cls", list(_messages()), ids=lambda c: c.DESCRIPTOR.full_name)
def test_both_renderers_agree_and_print_numbers(cls: type[_message.Message]) -> None:
    msg = _fill(cls())
    client_doc, server_doc = to_dict(msg), to_document(msg)
    assert client_doc == server_doc
    leaves = list(_int64_leaves(msg, client_doc))
    assert all(type(v) is int for v in leaves), leaves
    text = json.dumps(client_doc)
    assert json_format.Parse(text, cls()) == msg  # still proto3 JSON a parser takes back


def test_the_api_has_int64_fields_to_check() -> None:
    counted = sum(1 for cls in _messages() for f in cls.DESCRIPTOR.fields if f.type in INT64)
    assert counted >= 10  # the test above is not vacuous


def test_key_status_numbers_and_well_known_types() -> None:
    status = key_service_pb2.GetKeyStatusResponse(
        providers=[
            key_service_pb2.KeyProviderStatus(
                provider_id="local",
                versions=[
                    key_service_pb2.KekVersion(
                        version=2, wrap_count=BIG, wrap_limit=1 << 30, ciphertext_count=4
                    )
                ],
            )
        ]
    )
    version = to_dict(status)["providers"][0]["versions"][0]
    assert version["wrap_count"] == BIG and version["wrap_limit"] == 1 << 30
    assert version["ciphertext_count"] == 4
    event = audit_pb2.AuditEvent(sequence=BIG)
    event.event_time.FromSeconds(1_700_000_000)
    doc = to_dict(event)
    assert doc["sequence"] == BIG and doc["event_time"] == "2023-11-14T22:13:20Z"
