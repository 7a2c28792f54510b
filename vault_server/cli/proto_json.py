"""The JSON document of an API message, as every ``--json`` output prints it (``pipvault audit
verify --json`` here; ``vaultctl --json`` has the same function in ``vaultctl._output.to_dict``,
which the server may not import: a test holds the two equal).

The proto3 JSON form with the proto field names and defaults included, except that 64-bit
integers are JSON numbers (proto3 JSON makes them strings). Enums are their proto names,
timestamps RFC 3339 and durations ``"1.5s"`` strings (well-known types keep their JSON forms).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor as _descriptor
from google.protobuf import json_format
from google.protobuf import message as _message

_INT64 = frozenset(
    {
        _descriptor.FieldDescriptor.TYPE_INT64,
        _descriptor.FieldDescriptor.TYPE_UINT64,
        _descriptor.FieldDescriptor.TYPE_SINT64,
        _descriptor.FieldDescriptor.TYPE_FIXED64,
        _descriptor.FieldDescriptor.TYPE_SFIXED64,
    }
)


def to_document(message: _message.Message) -> dict[str, Any]:
    doc = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return _int64_numbers(message, doc)


def _int64_numbers(message: _message.Message, doc: dict[str, Any]) -> dict[str, Any]:
    fields: Any = message.DESCRIPTOR.fields  # upb and pure-Python descriptors alike
    for field in fields:
        if field.name not in doc:
            continue
        value = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            entry = field.message_type.fields_by_name["value"]
            doc[field.name] = {
                key: _value(entry, value[_map_key(field, key)], item)
                for key, item in doc[field.name].items()
            }
        elif field.is_repeated:
            doc[field.name] = [
                _value(field, v, item) for v, item in zip(value, doc[field.name], strict=True)
            ]
        else:
            doc[field.name] = _value(field, value, doc[field.name])
    return doc


def _value(field: Any, value: Any, item: Any) -> Any:
    if field.type in _INT64:
        return int(value)
    message_type = field.message_type
    if message_type is not None and not message_type.full_name.startswith("google.protobuf."):
        return _int64_numbers(value, item)
    return item


def _map_key(field: Any, key: str) -> Any:
    key_field = field.message_type.fields_by_name["key"]
    if key_field.type == _descriptor.FieldDescriptor.TYPE_BOOL:
        return key == "true"
    if key_field.cpp_type == _descriptor.FieldDescriptor.CPPTYPE_STRING:
        return key
    return int(key)
