"""The declarative access policy: principals, their roles, workspaces and credentials.

Example (YAML)::

    principals:
      - id: router-eu-1
        type: service
        roles: [router]
        workspaces: [desk-a]
        token_sha256: 6f1e...      # sha256 hex of the bearer token; never the token itself
      - id: alice
        type: user
        roles: [security]
        workspaces: ["*"]
        token_sha256: 9ab0...

Bearer tokens are random 256-bit values, so a plain SHA-256 is a sufficient verifier: the policy
file holds nothing that authenticates by itself. Validated on load; an invalid policy stops
start-up with a message naming the entry.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from vault_server.auth.principal import ALL_WORKSPACES, Principal, PrincipalType, Role


class PolicyError(Exception):
    """The policy file is invalid; the message names the entry."""


class _PrincipalEntry(BaseModel):
    model_config = {"extra": "forbid"}

    id: str = Field(min_length=1, max_length=255)
    type: PrincipalType = PrincipalType.SERVICE
    roles: list[Role] = Field(min_length=1)
    workspaces: list[str] = Field(min_length=1)
    token_sha256: str | None = None
    spiffe_id: str | None = None
    jwt_subject: str | None = None
    may_assert_on_behalf_of: bool = False
    rate_limit_per_s: float | None = Field(default=None, gt=0)

    @field_validator("token_sha256")
    @classmethod
    def _hex64(cls, v: str | None) -> str | None:
        if v is not None and (len(v) != 64 or any(c not in "0123456789abcdef" for c in v)):
            raise ValueError("must be 64 lowercase hex characters (sha256 of the token)")
        return v


class _PolicyFile(BaseModel):
    model_config = {"extra": "forbid"}

    principals: list[_PrincipalEntry] = Field(default_factory=list)


@dataclass(frozen=True)
class PolicyEntry:
    principal: Principal
    token_sha256: str | None
    spiffe_id: str | None
    jwt_subject: str | None
    rate_limit_per_s: float | None


class Policy:
    """Lookup of principals by identity; deny by default (unknown identity -> no principal)."""

    def __init__(self, entries: list[PolicyEntry]) -> None:
        ids = [e.principal.id for e in entries]
        if len(ids) != len(set(ids)):
            raise PolicyError("principals: duplicate id")
        self.entries = entries
        self._by_token = {e.token_sha256: e for e in entries if e.token_sha256}
        self._by_spiffe = {e.spiffe_id: e for e in entries if e.spiffe_id}
        self._by_subject = {e.jwt_subject: e for e in entries if e.jwt_subject}

    def current(self) -> Policy:
        """A fixed policy is its own provider (``PolicyStore`` is the reloading one)."""
        return self

    def by_token(self, token: str) -> PolicyEntry | None:
        digest = hash_token(token)
        entry = self._by_token.get(digest)
        # The dict lookup is on a hash of a high-entropy token; compare again in constant time.
        if (
            entry is not None
            and entry.token_sha256
            and hmac.compare_digest(entry.token_sha256, digest)
        ):
            return entry
        return None

    def by_spiffe_id(self, spiffe_id: str) -> PolicyEntry | None:
        return self._by_spiffe.get(spiffe_id)

    def by_jwt_subject(self, subject: str) -> PolicyEntry | None:
        return self._by_subject.get(subject)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_policy(data: Any) -> Policy:
    try:
        parsed = _PolicyFile.model_validate(data or {})
    except ValidationError as exc:
        errs = "; ".join(".".join(str(p) for p in e["loc"]) + f": {e['msg']}" for e in exc.errors())
        raise PolicyError(f"invalid policy: {errs}") from exc
    entries = []
    for p in parsed.principals:
        workspaces = frozenset(p.workspaces)
        if ALL_WORKSPACES in workspaces and len(workspaces) > 1:
            raise PolicyError(f"principals[{p.id}].workspaces: '*' must stand alone")
        entries.append(
            PolicyEntry(
                principal=Principal(
                    id=p.id,
                    type=p.type,
                    roles=frozenset(p.roles),
                    workspaces=workspaces,
                    may_assert_on_behalf_of=p.may_assert_on_behalf_of,
                ),
                token_sha256=p.token_sha256,
                spiffe_id=p.spiffe_id,
                jwt_subject=p.jwt_subject,
                rate_limit_per_s=p.rate_limit_per_s,
            )
        )
    return Policy(entries)


def load_policy(path: Path) -> Policy:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"policy file {path}: {exc.__class__.__name__}") from exc
    return parse_policy(data)
