"""Fills the RPCs a servicer does not implement yet with an UNIMPLEMENTED + ErrorInfo answer."""

from __future__ import annotations

from typing import Any, TypeVar

from google.protobuf.descriptor import ServiceDescriptor

from vault_server.core.errors import NotImplementedYet

T = TypeVar("T", bound=type)


def fill_unimplemented(cls: T, service: ServiceDescriptor) -> T:
    for method in service.methods:
        if method.name in cls.__dict__:
            continue

        async def _unimplemented(
            self: Any, request: Any, context: Any, _m: str = method.name
        ) -> Any:
            raise NotImplementedYet(
                f"{service.name}.{_m} is not implemented by this server yet",
                metadata={"method": f"{service.full_name}/{_m}"},
            )

        setattr(cls, method.name, _unimplemented)
    return cls
