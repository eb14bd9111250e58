"""Web view pieces without I/O: sealed values, the email a person is matched by, the change as a diff."""

from __future__ import annotations

import time

import pytest

from bot.ui import chat_text
from bot.ui.oidc import SignInRefused, person_for
from bot.ui.sessions import seal, signing_key, unseal
from core.domain.policy_file import PolicyFileError, parse_policy

KEY = signing_key("a-session-key-for-unit-tests-0123", "session")


def test_a_sealed_value_opens_only_untouched_unexpired_and_under_its_key() -> None:
    data = {"who": "alice", "expires": int(time.time()) + 60}
    sealed = seal(data, KEY)
    assert unseal(sealed, KEY) == data
    body, signature = sealed.split(".")
    other = seal({"who": "mallory", "expires": int(time.time()) + 60}, KEY).split(".")[0]
    assert unseal(f"{other}.{signature}", KEY) is None
    assert unseal(sealed, signing_key("another-key-entirely-0123456789", "session")) is None
    assert unseal(sealed, signing_key("a-session-key-for-unit-tests-0123", "oidc")) is None  # keys per purpose
    assert unseal(seal({"who": "alice", "expires": int(time.time()) - 1}, KEY), KEY) is None
    for junk in ("", "nodot", "a.b.c", f"{body}.", "x" * 5000):
        assert unseal(junk, KEY) is None


def test_without_a_configured_key_the_process_key_signs() -> None:
    assert signing_key(None, "session") == signing_key(None, "session")
    assert signing_key(None, "session") != signing_key("configured-key-0123456789", "session")


POLICY = """
[people.alice]
slack = "U0ALICE"
email = "Alice@Example.com"

[people.bob]
slack = "U0BOB"
"""


def test_people_are_matched_by_email_without_regard_to_case() -> None:
    policy = parse_policy(POLICY, "p.toml")
    assert policy.people["alice"].email == "Alice@Example.com" and policy.people["bob"].email is None
    assert person_for(policy, {"email": "alice@example.COM", "email_verified": True}).name == "alice"
    with pytest.raises(SignInRefused, match=r"bob@example.com is not a person in the policy \(p.toml\)"):
        person_for(policy, {"email": "bob@example.com"})
    with pytest.raises(SignInRefused, match="not verified"):
        person_for(policy, {"email": "alice@example.com", "email_verified": False})
    with pytest.raises(SignInRefused, match="no email address"):
        person_for(policy, {"sub": "123"})


def test_an_unknown_key_on_a_person_still_names_email_among_the_allowed() -> None:
    with pytest.raises(PolicyFileError, match="`email`"):
        parse_policy('[people.alice]\nmail = "a@example.com"\n', "p.toml")


def test_chat_text_escapes_before_it_shows_code() -> None:
    assert str(chat_text("run `kubectl <x>` & <b>go</b>")) == \
        "run <code>kubectl &lt;x&gt;</code> &amp; &lt;b&gt;go&lt;/b&gt;"
