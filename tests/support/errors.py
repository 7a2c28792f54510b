"""Read the ``google.rpc.Status`` details of a failed call."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclass
class CallError:
    code: grpc.StatusCode
    message: str
    reasons: list[str]
    metadata: dict[str, str]
    domains: list[str]

    @property
    def reason(self) -> str:
        assert len(self.reasons) == 1, f"expected exactly one ErrorInfo, got {self.reasons}"
        return self.reasons[0]


def call_error(exc: grpc.RpcError) -> CallError:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    reasons, domains, metadata = [], [], {}
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reasons.append(info.reason)
            domains.append(info.domain)
            metadata.update(info.metadata)
    return CallError(exc.code(), exc.details() or "", reasons, metadata, domains)


def expect_error(fn, *args, **kwargs) -> CallError:  # type: ignore[no-untyped-def]
    try:
        fn(*args, **kwargs)
    except grpc.RpcError as exc:
        return call_error(exc)
    raise AssertionError("the call succeeded but an error was expected")
