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
    """The proto3 JSON form with the proto field names, defaults included."""
    return json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )


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
    ) -> None:
        """A table with one row per item (long cells fold; ``no_wrap`` columns never do)."""
        table = Table(title=clean(title), title_justify="left")
        for column in columns:
            table.add_column(column, overflow="fold", no_wrap=column in no_wrap)
        count = 0
        for row in rows:
            table.add_row(*(Text(_display(cell)) for cell in row))
            count += 1
        if count:
            self.console.print(table)
        else:
            self.console.print(Text(f"{clean(title)}: none"))

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
