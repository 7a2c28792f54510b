"""Output: one JSON document (``--json``) or rich tables for people.

Every string that came from the server (names, reasons, messages, audit details) is shown as
plain text with control characters removed, so it can neither inject rich markup nor terminal
escape sequences.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, TextIO

from google.protobuf import descriptor as _descriptor
from google.protobuf import json_format
from google.protobuf import message as _message
from rich.console import Console
from rich.table import Table
from rich.text import Text

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_LINE_BREAKS = re.compile(r"[\t\n\r\u2028\u2029]+")


def clean(value: object, *, keep_newlines: bool = False) -> str:
    """Text safe for a terminal: control and bidi-override characters removed, and line
    breaks folded to spaces unless ``keep_newlines``."""
    text = str(value)
    if not keep_newlines:
        text = _LINE_BREAKS.sub(" ", text)
    return _CONTROL.sub("", text)


def to_dict(message: _message.Message) -> dict[str, Any]:
    """The JSON document of a message, as every ``--json`` output prints it: the proto3 JSON
    form with the proto field names and defaults included, except that 64-bit integers are JSON
    numbers (proto3 JSON makes them strings; ``pipvault audit verify --json`` prints numbers
    too). Enums are their proto names, timestamps RFC 3339 and durations ``"1.5s"`` strings."""
    doc = json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )
    return _int64_numbers(message, doc)


_INT64 = frozenset(
    {
        _descriptor.FieldDescriptor.TYPE_INT64,
        _descriptor.FieldDescriptor.TYPE_UINT64,
        _descriptor.FieldDescriptor.TYPE_SINT64,
        _descriptor.FieldDescriptor.TYPE_FIXED64,
        _descriptor.FieldDescriptor.TYPE_SFIXED64,
    }
)


def _int64_numbers(message: _message.Message, doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` (``MessageToDict`` of ``message``) with every 64-bit integer field a number,
    in nested messages, lists and map values too. Well-known types (``google.protobuf.*``) keep
    their JSON string forms."""
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
    """The map's own key for a JSON object key (JSON keys are strings; integer keys are not)."""
    key_field = field.message_type.fields_by_name["key"]
    if key_field.type == _descriptor.FieldDescriptor.TYPE_BOOL:
        return key == "true"
    if key_field.cpp_type == _descriptor.FieldDescriptor.CPPTYPE_STRING:
        return key
    return int(key)


class Output:
    """Where results and diagnostics go."""

    def __init__(
        self, *, json_mode: bool, stdout: TextIO | None = None, stderr: TextIO | None = None
    ):
        self.json_mode = json_mode
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr
        self.console = Console(file=self.stdout, highlight=False, soft_wrap=False)
        self.err_console = Console(file=self.stderr, highlight=False, soft_wrap=False)

    # JSON ------------------------------------------------------------------------------------

    def json(self, document: object) -> None:
        """Writes one JSON document to stdout."""
        self.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        self.stdout.flush()

    def json_line(self, document: object) -> None:
        """Writes one compact JSON document on its own line (streams)."""
        self.stdout.write(json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n")
        self.stdout.flush()

    # people ----------------------------------------------------------------------------------

    def fields(self, title: str, rows: Iterable[tuple[str, object]]) -> None:
        """A two-column table of field names and values (empty values are skipped)."""
        table = Table(title=clean(title), show_header=False, title_justify="left")
        table.add_column("field", style="bold", no_wrap=True)
        table.add_column("value", overflow="fold")
        for name, value in rows:
            if value in ("", None, [], ()):
                continue
            table.add_row(name, Text(_display(value)))
        self.console.print(table)

    def table(
        self,
        title: str,
        columns: Sequence[str],
        rows: Iterable[Sequence[object]],
        *,
        no_wrap: Collection[str] = (),
        right: Collection[str] = (),
    ) -> None:
        """A table with one row per item. Long cells fold; ``no_wrap`` columns (numbers, times,
        short words) are never cut, the other columns give way to them; ``right`` columns are
        right-aligned (numbers)."""
        cells = [[Text(_display(cell)) for cell in row] for row in rows]
        if not cells:
            self.console.print(Text(f"{clean(title)}: none"))
            return
        table = Table(title=clean(title), title_justify="left")
        for column in columns:
            table.add_column(
                column,
                overflow="fold",
                no_wrap=column in no_wrap,
                justify="right" if column in right else "left",
            )
        for row in cells:
            table.add_row(*row)
        self.console.print(table)

    def line(self, text: str, style: str | None = None) -> None:
        """One line of plain text (never interpreted as markup)."""
        self.console.print(Text(clean(text), style=style or ""), soft_wrap=True)

    def raw(self, text: str) -> None:
        """Text written as is (e.g. a PEM public key), without wrapping."""
        self.stdout.write(clean(text, keep_newlines=True).rstrip("\n") + "\n")
        self.stdout.flush()

    def warn(self, text: str) -> None:
        self.err_console.print(Text("warning: " + clean(text), style="yellow"), soft_wrap=True)

    def error(self, text: str) -> None:
        self.stderr.write("error: " + clean(text) + "\n")
        self.stderr.flush()


def _display(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return ", ".join(f"{clean(k)}={clean(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(clean(v) for v in value)
    return clean(value)
