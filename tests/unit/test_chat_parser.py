"""The chat's sources of commands, table by table: typed text, thread replies, buttons, typed options, ids."""

from __future__ import annotations

import pytest

from core.chat.commands import (
    Cancel,
    Command,
    CommentForm,
    Help,
    Incidents,
    List,
    Malformed,
    Playbooks,
    Rate,
    Reject,
    Request,
    Resolve,
    Show,
    Sign,
    Timeline,
    Unreadable,
)
from core.chat.parser import (
    BUTTONS,
    for_incident,
    for_request,
    for_subject,
    from_button,
    from_comment,
    from_options,
    parse_command,
    parse_thread_reply,
)
from core.chat.text import clip, plain_quotes
from core.domain.ids import (
    IncidentId,
    PlaybookId,
    RequestId,
    parse_id,
    parse_incident_id,
    parse_playbook_id,
    parse_request_id,
    parse_subject,
    stored_key,
)
from core.domain.policy import Risk
from core.errors import NotFound, ParseError

R42, R7 = RequestId("R-42"), RequestId("R-7")
INC7 = IncidentId("INC-7")


@pytest.mark.parametrize(("text", "command"), [
    ("", Help()),
    ("   ", Help()),
    ("help", Help()),
    ("HELP me please", Help()),
    ("list", List()),
    ("list everything", List()),
    ("playbooks", Playbooks()),
    ("incidents", Incidents()),
    ("status R-42", Show(request=R42)),
    ("status r-42", Show(request=R42)),
    ("status 42", Show(request=R42)),
    ("Status  R-42 ", Show(request=R42)),
    ("timeline R-42", Timeline(subject=R42)),
    ("timeline inc-7", Timeline(subject=INC7)),
    ("timeline INC-db1", Timeline(subject=IncidentId("INC-DB1"))),
    ("cancel 42", Cancel(request=R42)),
    ("approve R-42", Sign(request=R42)),
    ("sign r-42", Sign(request=R42)),
    ('approve R-42 comment="checked the dashboards"', Sign(request=R42, comment="checked the dashboards")),
    ("approve R-42 comment=“smart quotes, too”", Sign(request=R42, comment="smart quotes, too")),
    ('approve R-42 comment="  "', Sign(request=R42)),
    ("reject R-42", Reject(request=R42)),
    ("veto R-42 too risky now", Reject(request=R42, reason="too risky now")),
    ("resolve INC-7 score=4", Resolve(incident=INC7, score=4)),
    ("resolve inc-7 5", Resolve(incident=INC7, score=5)),
    ("rate INC-7 1", Resolve(incident=INC7, score=1)),
    ("request cordon node-1", Request(action="cordon node-1")),
    ('request rollout restart deployment/api -n prod risk=HIGH incident=inc-7 reason=“p99 is 4s”',
     Request(action="rollout restart deployment/api -n prod", risk=Risk.high, incident=INC7, reason="p99 is 4s")),
])
def test_text_becomes_a_command(text: str, command: Command) -> None:
    parsed = parse_command(text)
    assert parsed == command and type(parsed) is type(command)


@pytest.mark.parametrize(("text", "kind", "says"), [
    ("frobnicate R-1", Unreadable, "I don't know the command `frobnicate`"),
    ("x" * 2001, Unreadable, "keep it under 2000"),
    ("status", Malformed, "`status` takes one id, like `status R-42`."),
    ("status R-1 R-2", Malformed, "takes one id"),
    ("status INC-7", Malformed, "`INC-7` is not a request id"),
    ("status R-x", Malformed, "request ids look like R-42"),
    ("approve", Malformed, "`approve` takes one id"),
    ("sign", Malformed, "`approve` takes one id"),
    ("approve R-1 looks good", Malformed, "`approve` takes one id and an optional comment"),
    ('approve R-1 comment="open', Malformed, "close every quote"),
    (f'approve R-1 comment="{"x" * 501}"', Malformed, "A comment is at most 500 characters; yours has 501."),
    ("reject", Malformed, "`reject` takes one id"),
    ("timeline", Malformed, "`timeline` takes one id"),
    ("timeline PB-1", Malformed, "is not a request id"),
    ("resolve INC-7", Malformed, "Use `resolve INC-7 score=4`"),
    ("resolve INC-7 score=9", Malformed, "Use `resolve INC-7 score=4`"),
    ("resolve R-7 score=4", Malformed, "Use `resolve INC-7 score=4`"),
    ("request", Malformed, "`request` needs an action"),
    ("request cordon node-1 risk=extreme", Malformed, "not a risk level"),
    ("request cordon node-1 incident=#7", Malformed, "incident ids look like INC-7"),
    ('request cordon node-1 reason="open', Malformed, "close every quote"),
])
def test_text_that_does_not_read_says_why(text: str, kind: type[Command], says: str) -> None:
    parsed = parse_command(text)
    assert type(parsed) is kind
    assert says in parsed.message  # type: ignore[attr-defined]


def test_only_help_and_unreadable_text_need_no_known_person() -> None:
    assert Help.anyone and Unreadable.anyone
    assert not any(kind.anyone for kind in (Request, Sign, Reject, Cancel, Show, Timeline, List, Resolve, Rate,
                                            Playbooks, Malformed, CommentForm))


@pytest.mark.parametrize(("text", "command"), [
    ("timeline", Timeline(subject=R7)),
    (" Status! ", Show(request=R7)),
    ("`help`", Help()),
    ("**timeline**", Timeline(subject=R7)),
    ("what is the status?", None),
    ("lgtm", None),
    ("approve", None),  # signatures are buttons, never thread chatter
])
def test_thread_replies(text: str, command: Command | None) -> None:
    assert parse_thread_reply(text, R7) == command


@pytest.mark.parametrize(("action", "value", "command"), [
    ("approve", "R-7", Sign(request=R7)),
    ("approve", "r-7", Sign(request=R7)),
    ("reject", "R-7", Reject(request=R7)),
    ("rate", "INC-7:4", Rate(incident=INC7, score=4)),
    ("rate", "inc-7:5", Rate(incident=INC7, score=5)),
    ("approve_comment", "R-7", CommentForm(request=R7)),
])
def test_a_button_maps_straight_to_a_command(action: str, value: str, command: Command) -> None:
    clicked = from_button(action, value)
    assert clicked == command and type(clicked) is type(command)


@pytest.mark.parametrize(("action", "value", "kind", "says"), [
    ("explode", "R-7", Unreadable, "That button (explode) is not one signoff knows."),
    ("approve", "", Malformed, "`approve` takes one id"),
    ("approve", "INC-7", Malformed, "is not a request id"),
    ("reject", "R-7 R-8", Malformed, "`reject` takes one id"),
    ("rate", "INC-7:9", Malformed, "Use `resolve INC-7 score=4`"),
    ("rate", "INC-7", Malformed, "Use `resolve INC-7 score=4`"),
])
def test_a_button_with_a_bad_value_says_why(action: str, value: str, kind: type[Command], says: str) -> None:
    clicked = from_button(action, value)
    assert type(clicked) is kind and says in clicked.message  # type: ignore[attr-defined]


@pytest.mark.parametrize(("comment", "command"), [
    ("lgtm, checked the dashboards", Sign(request=R7, comment="lgtm, checked the dashboards")),
    ("  padded\n", Sign(request=R7, comment="padded")),
    ("", Sign(request=R7)),
    (None, Sign(request=R7)),
    ("x" * 500, Sign(request=R7, comment="x" * 500)),
])
def test_a_submitted_comment_signs_with_it(comment: str | None, command: Command) -> None:
    assert from_comment("r-7", comment) == command


def test_a_comment_too_long_is_refused_with_one_sentence() -> None:
    refused = from_comment("R-7", "y" * 501)
    assert isinstance(refused, Malformed)
    assert refused.message == "A comment is at most 500 characters; yours has 501. Shorten it and sign again."
    assert isinstance(from_comment("INC-7", "ok"), Malformed)


def test_every_card_button_has_a_command() -> None:
    from core.chat.cards import ButtonAction
    assert set(BUTTONS) == set(ButtonAction)


@pytest.mark.parametrize(("options", "command"), [
    (("rollout restart deployment/api -n prod", None, None, None),
     Request(action="rollout restart deployment/api -n prod")),
    (("  cordon   node-1 ", "critical", " inc-db1 ", "  “quoted” reason "),
     Request(action="cordon node-1", risk=Risk.critical, incident=IncidentId("INC-DB1"), reason='"quoted" reason')),
    (("cordon node-1", None, "", ""), Request(action="cordon node-1")),
    # Typed options are never split like text: `risk=low` inside the action stays part of the action.
    (("cordon node-1 risk=low", "high", None, None), Request(action="cordon node-1 risk=low", risk=Risk.high)),
])
def test_typed_options_map_straight_to_a_request(options: tuple[str, str | None, str | None, str | None],
                                                  command: Command) -> None:
    assert from_options(*options) == command


def test_typed_options_that_do_not_read_say_why() -> None:
    assert isinstance(from_options("  "), Malformed)
    assert isinstance(from_options("cordon node-1", incident="7"), Malformed)
    assert for_request(Show, " r-42 ") == Show(request=R42)
    assert for_request(Cancel, "INC-7") == Malformed(message="`INC-7` is not a request id; request ids look like R-42.")
    assert for_subject("inc-7") == Timeline(subject=INC7)
    assert for_incident(Resolve, "inc-7", 4) == Resolve(incident=INC7, score=4)
    assert isinstance(for_incident(Resolve, "R-7", 4), Malformed)


@pytest.mark.parametrize(("text", "expected"), [
    ("R-42", R42), ("r-42", R42), ("42", R42), (" R-42 ", R42), ("R-42\n", R42), ("\tr-42\r\n", R42),
])
def test_request_ids_are_canonical(text: str, expected: RequestId) -> None:
    parsed = parse_request_id(text)
    assert parsed == expected and type(parsed) is RequestId and str(parsed) == "R-42"


@pytest.mark.parametrize("text", ["R-", "R-x", "INC-1", "PB-1", "R-1; drop", "R-12345678901", "R-٤٢", "", "R -1",
                                  "R-1\nR-2"])
def test_bad_request_ids_name_the_form(text: str) -> None:
    with pytest.raises(NotFound, match="request ids look like R-42"):
        parse_request_id(text)


@pytest.mark.parametrize(("text", "expected"), [
    ("INC-7", "INC-7"), ("inc-7", "INC-7"), ("inc-db1", "INC-DB1"), ("INC-7\n", "INC-7"), (" Inc-a_b-c ", "INC-A_B-C"),
])
def test_incident_ids_are_upper_case(text: str, expected: str) -> None:
    parsed = parse_incident_id(text)
    assert parsed == expected and type(parsed) is IncidentId


@pytest.mark.parametrize("text", ["INC-", "INC-!", "7", "R-7", "INC-7 8", "INC-" + "X" * 41, "INC-7\nINC-8"])
def test_bad_incident_ids_name_the_form(text: str) -> None:
    with pytest.raises(ParseError, match="incident ids look like INC-7"):
        parse_incident_id(text)


def test_playbook_ids() -> None:
    assert parse_playbook_id(" pb-3 ") == PlaybookId("PB-3")
    with pytest.raises(ParseError, match="playbook ids look like PB-3"):
        parse_playbook_id("3")


@pytest.mark.parametrize(("text", "kind", "canonical"), [
    ("r-42", RequestId, "R-42"), ("42", RequestId, "R-42"), ("inc-db1", IncidentId, "INC-DB1"),
    ("PB-3", PlaybookId, "PB-3"), (" pb-3\n", PlaybookId, "PB-3"),
])
def test_any_id_is_parsed_into_its_type(text: str, kind: type[str], canonical: str) -> None:
    parsed = parse_id(text)
    assert type(parsed) is kind and parsed == canonical


def test_an_unknown_id_names_every_form() -> None:
    with pytest.raises(ParseError) as raised:
        parse_id("X-1")
    assert all(form in raised.value.message for form in ("R-42", "INC-7", "PB-3"))
    assert type(parse_subject("INC-7")) is IncidentId and type(parse_subject("7")) is RequestId


@pytest.mark.parametrize("text", ["R-1\n", "r-1", "INC-7\n", "inc-7", " PB-1", "42", ""])
def test_the_constructors_take_canonical_text_only(text: str) -> None:
    for kind in (RequestId, IncidentId, PlaybookId):
        with pytest.raises(ValueError, match="canonical"):
            kind(text)


@pytest.mark.parametrize(("key", "kind"), [
    ("R-1", RequestId), ("INC-3", IncidentId), ("PB-2", PlaybookId), ("rate-INC-3", None), ("r-1", None),
    ("R-1\n", None), (None, None),
])
def test_stored_keys_are_typed_without_guessing(key: str | None, kind: type[str] | None) -> None:
    found = stored_key(key)
    assert (type(found) if found is not None else None) is kind


def test_one_place_for_quotes_and_clipping() -> None:
    assert plain_quotes("“a” ‘b’ „c”") == "\"a\" 'b' \"c\""
    assert clip("abcdef", 4) == "abc…" and clip("abc", 4) == "abc"
