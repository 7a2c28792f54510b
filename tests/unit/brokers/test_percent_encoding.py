"""The query encoder every venue signs over: byte-for-byte what RFC 3986 percent-encoding (as
``urllib.parse.quote(..., safe="")``) gives, whatever the text - its fast path for text that needs
no escaping must never change a signed byte."""

from __future__ import annotations

import string
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from vault_server.brokers import _signing_common as sc

_PAIRS = st.lists(st.tuples(st.text(max_size=24), st.text(max_size=24)), max_size=6)
# Text near the boundary: unreserved characters mixed with the ones just outside the set.
_EDGY = st.text(alphabet=string.ascii_letters + string.digits + "-._~ +/%&=?#:!*'()[]@$,;é\u00a0")


def _reference(params: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)


@given(_PAIRS)
def test_any_text_encodes_exactly_as_rfc3986_quoting(params: list[tuple[str, str]]) -> None:
    assert sc.percent_encode(params) == _reference(params)


@given(st.lists(st.tuples(_EDGY, _EDGY), max_size=6))
def test_text_around_the_unreserved_set_encodes_exactly(params: list[tuple[str, str]]) -> None:
    assert sc.percent_encode(params) == _reference(params)


def test_reserved_and_non_ascii_characters_are_escaped() -> None:
    encoded = sc.percent_encode(
        [("symbol", "BTCUSDT"), ("note", "a b+c/d~e"), ("x", "é"), ("", "-._~")]
    )
    assert encoded == "symbol=BTCUSDT&note=a%20b%2Bc%2Fd~e&x=%C3%A9&=-._~"
