"""What a caller may ask of the audit log: a validated filter (workspace, credential, action,
outcome, time range), shared by lists, streams and the stored-chain fetches."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import ColumnElement

from vault_server.audit._log import Outcome
from vault_server.core.errors import InvalidArgument
from vault_server.domain import parse_credential, parse_workspace
from vault_server.storage.models import AuditEvent

_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*\.?$")
OUTCOMES = frozenset({Outcome.SUCCESS, Outcome.DENIED, Outcome.FAILED})


@dataclass(frozen=True)
class AuditQuery:
    """Filters shared by list and stream (empty fields do not filter)."""

    workspace: str = ""
    credential: str = ""
    actor: str = ""
    action: str = ""  # exact, or a prefix ending in `.`
    outcome: str = ""
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None

    def workspace_id(self) -> str | None:
        """The one workspace the filters pin down, validated; None for all visible ones."""
        ws = parse_workspace("filter.workspace", self.workspace) if self.workspace else None
        if self.credential:
            cred_ws = parse_credential("filter.credential", self.credential).workspace
            if ws is not None and cred_ws != ws:
                raise InvalidArgument("filter.credential", "must be in filter.workspace")
            ws = cred_ws
        if self.action and (len(self.action) > 64 or not _ACTION.match(self.action)):
            raise InvalidArgument("filter.action", "an action like credential.use or credential.")
        if len(self.actor) > 255:
            raise InvalidArgument("filter.actor", "at most 255 characters")
        if self.outcome and self.outcome not in OUTCOMES:
            raise InvalidArgument("filter.outcome", "unknown outcome")
        if self.start_time and self.end_time and self.end_time <= self.start_time:
            raise InvalidArgument("filter.end_time", "must be after filter.start_time")
        return ws

    def params(self) -> dict[str, str]:
        """The non-empty filters (page-token binding, audit details)."""
        out: dict[str, str | dt.datetime | None] = {"start": self.start_time, "end": self.end_time}
        out |= {k: getattr(self, k) for k in ("workspace", "credential", "actor", "action")}
        out["outcome"] = self.outcome
        return {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in out.items() if v}

    def conditions(self) -> list[ColumnElement[bool]]:
        e, out = AuditEvent, []
        for column, value in ((e.credential, self.credential), (e.actor_id, self.actor),
                              (e.outcome, self.outcome)):  # fmt: skip
            if value:
                out.append(column == value)
        if self.action:
            prefix = self.action.endswith(".")
            out.append(e.action.startswith(self.action, autoescape=True) if prefix
                       else e.action == self.action)  # fmt: skip
        if self.start_time is not None:
            out.append(e.event_time >= self.start_time)
        if self.end_time is not None:
            out.append(e.event_time < self.end_time)
        return out
