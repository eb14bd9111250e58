from __future__ import annotations

import pytest

from core.chat.cards import progress_bar
from core.chat.parser import split_request_args
from core.domain.ids import parse_request_id
from core.domain.policy import Risk
from core.errors import NotFound, ParseError


@pytest.mark.parametrize(("text", "expected"), [
    ("rollout restart deployment/api -n prod", ("rollout restart deployment/api -n prod", None, None, None)),
    ('rollout restart deployment/api -n prod risk=high incident=INC-7 reason="p99 is 4s"',
     ("rollout restart deployment/api -n prod", Risk.high, "INC-7", "p99 is 4s")),
    ("risk=LOW scale deployment web to 3 in staging reason=“smart quotes work”",
     ("scale deployment web to 3 in staging", Risk.low, None, "smart quotes work")),
    ("cordon node-1 incident=inc-3", ("cordon node-1", None, "INC-3", None)),
])
def test_request_arguments(text: str, expected: tuple[object, ...]) -> None:
    assert split_request_args(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ('cordon node-1 reason="unterminated', "close every quote"),
    ("cordon node-1 risk=extreme", "not a risk level"),
    ("cordon node-1 risk=high risk=low", "given twice"),
    ("risk=high", "needs an action"),
])
def test_bad_request_arguments(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        split_request_args(text)


@pytest.mark.parametrize(("text", "expected"), [("R-42", "R-42"), ("r-42", "R-42"), ("42", "R-42"),
                                                (" R-1 ", "R-1")])
def test_request_ids(text: str, expected: str) -> None:
    assert parse_request_id(text) == expected


@pytest.mark.parametrize("text", ["R-", "R-x", "INC-1", "R-1; drop", "R-12345678901"])
def test_bad_request_ids(text: str) -> None:
    with pytest.raises(NotFound, match="R-42"):
        parse_request_id(text)


@pytest.mark.parametrize(("current", "required", "bar"), [(0, 2, "▱▱ 0/2"), (2, 3, "▰▰▱ 2/3"), (3, 3, "▰▰▰ 3/3"),
                                                          (4, 3, "▰▰▰ 4/3")])
def test_progress_bar(current: int, required: int, bar: str) -> None:
    assert progress_bar(current, required) == bar
