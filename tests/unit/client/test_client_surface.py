"""The public surface of VaultClient and AsyncVaultClient against a recorded snapshot.

The snapshot (``client_surface.json``) was recorded before the two clients were moved onto one
shared core; it pins every public method's name, parameters (name, kind, default, resolved
annotation), return type, awaitable-ness and docstring, and ``pipvault_client.__all__``.
Annotations are resolved and rendered by what they are (public types by their public name), not by
how a private module happens to spell them. Regenerate only for a deliberate API change:
``.venv/bin/python tests/unit/client/test_client_surface.py --write``.
"""

from __future__ import annotations

import inspect
import json
import pathlib
import sys
import types
import typing
from typing import Any

import pipvault_client as pv
import pytest

SNAPSHOT = pathlib.Path(__file__).with_name("client_surface.json")
CLIENTS = (pv.VaultClient, pv.AsyncVaultClient)
_PUBLIC_DUNDERS = ("__init__", "__enter__", "__exit__", "__aenter__", "__aexit__", "__repr__")


def render(hint: Any) -> str:
    """A resolved annotation as text, by the public name where ``pipvault_client`` exports it."""
    if hint is type(None) or hint is None:
        return "None"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Unpack:
        return f"Unpack[{render(args[0])}]"
    if origin in (types.UnionType, typing.Union):
        return " | ".join(render(arg) for arg in args)
    if origin is not None:
        return f"{render(origin)}[{', '.join(render(arg) for arg in args)}]"
    if isinstance(hint, type):
        if getattr(pv, hint.__name__, None) is hint:
            return f"pipvault_client.{hint.__name__}"
        return f"{hint.__module__}.{hint.__qualname__}"
    return repr(hint)


def _kind(attr: Any) -> str:
    if isinstance(attr, property):
        return "property"
    if inspect.isasyncgenfunction(attr):
        return "async generator function"
    if inspect.iscoroutinefunction(attr):
        return "coroutine function"
    return "function"


def _member(cls: type, name: str) -> dict[str, Any]:
    attr = getattr(cls, name)
    entry: dict[str, Any] = {"kind": _kind(attr), "doc": inspect.getdoc(attr)}
    if isinstance(attr, property):
        hints = typing.get_type_hints(attr.fget)
        entry["type"] = render(hints.get("return"))
        return entry
    signature = inspect.signature(attr)
    hints = typing.get_type_hints(attr, include_extras=True)
    entry["parameters"] = [
        {
            "name": param.name,
            "kind": param.kind.name,
            "default": None if param.default is param.empty else repr(param.default),
            "annotation": render(hints[param.name]) if param.name in hints else None,
        }
        for param in signature.parameters.values()
    ]
    entry["returns"] = render(hints.get("return"))
    return entry


def surface() -> dict[str, Any]:
    """What a user of ``pipvault_client`` can see of the two clients."""
    result: dict[str, Any] = {"__all__": sorted(pv.__all__)}
    for cls in CLIENTS:
        names = [n for n in dir(cls) if not n.startswith("_")]
        names += [n for n in _PUBLIC_DUNDERS if hasattr(cls, n)]
        result[cls.__name__] = {
            "doc": inspect.getdoc(cls),
            "members": {name: _member(cls, name) for name in sorted(names)},
        }
    return result


def test_public_surface_matches_the_snapshot() -> None:
    recorded = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    current = surface()
    assert current["__all__"] == recorded["__all__"]
    for cls in CLIENTS:
        now, then = current[cls.__name__], recorded[cls.__name__]
        assert now["doc"] == then["doc"]
        assert sorted(now["members"]) == sorted(then["members"]), cls.__name__
        for name, entry in then["members"].items():
            assert now["members"][name] == entry, f"{cls.__name__}.{name}"


_SYNC_ONLY = {"close", "__enter__", "__exit__"}


@pytest.mark.parametrize("name", sorted(set(surface()["VaultClient"]["members"]) - _SYNC_ONLY))
def test_async_client_mirrors_the_sync_client(name: str) -> None:
    sync = surface()["VaultClient"]["members"][name]
    other = surface()["AsyncVaultClient"]["members"][name]
    assert other["doc"] == sync["doc"]
    assert other.get("parameters") == sync.get("parameters")
    returns = sync.get("returns", "")
    if returns.startswith("collections.abc.Iterator["):
        # Lists and streams: a plain method returning an async iterator (checked eagerly).
        assert other["kind"] == "function"
        assert other["returns"] == "collections.abc.AsyncIterator[" + returns.split("[", 1)[1]
    elif sync["kind"] == "function" and name not in {"__init__", "__repr__"}:
        # Unary RPCs: a coroutine function with the same result.
        assert other["kind"] == "coroutine function"
        assert other["returns"] == returns
    else:
        assert other == sync


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: test_client_surface.py --write")
    SNAPSHOT.write_text(json.dumps(surface(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
