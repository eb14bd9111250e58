"""The LLM advisor over real HTTP against a loopback fake of an OpenAI-compatible server."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from structlog.testing import capture_logs

from adapters.llm.advisor import OpenAIAdvisor, parse_answer
from core.domain.advice import AdvisorAnswer
from core.domain.incidents import Incident
from core.domain.operations import RestartOp, parse_operation
from core.domain.rules import proposal_grammar
from core.errors import ParseError
from testkit.fakes.openai import FakeOpenAI

KEY = "sk-test-0123456789abcdef"
NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
INCIDENT = Incident(
    id="INC-7",
    title="KubePodCrashLooping prod/api-7d9f-x2x4z",
    alert_name="KubePodCrashLooping",
    labels={"alertname": "KubePodCrashLooping", "namespace": "prod", "pod": "api-7d9f-x2x4z", "container": "api",
            "reason": "CrashLoopBackOff", "severity": "warning"},
    symptom='Pod prod/api-7d9f-x2x4z (api) is in waiting state (reason: "CrashLoopBackOff").',
    created_at=NOW,
    updated_at=NOW,
)
GOOD = {"action": "rollout restart deployment/api -n prod",
        "rationale": "The api container crash-loops; a rolling restart replaces its pods."}


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def advisor(fake: FakeOpenAI) -> AsyncIterator[OpenAIAdvisor]:
    client = OpenAIAdvisor(fake.url, "test-model", KEY, timeout=2.0)
    yield client
    await client.close()


async def test_valid_answer(fake: FakeOpenAI, advisor: OpenAIAdvisor) -> None:
    fake.reply(json.dumps(GOOD))
    answer = await advisor.propose(INCIDENT, proposal_grammar())
    assert answer == AdvisorAnswer(**GOOD)
    assert parse_operation(answer.action) == RestartOp(target="deployment", name="api", namespace="prod")


async def test_request_carries_model_key_grammar_and_incident(fake: FakeOpenAI, advisor: OpenAIAdvisor) -> None:
    fake.reply(json.dumps(GOOD))
    grammar = proposal_grammar()
    await advisor.propose(INCIDENT, grammar)
    [request] = fake.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.body["model"] == "test-model"
    assert request.body["temperature"] == 0
    system, user = request.body["messages"]
    assert system["role"] == "system" and grammar in system["content"]
    assert '{"action": "NONE"}' in system["content"]
    assert user["role"] == "user"
    for text in ("KubePodCrashLooping", '"namespace": "prod"', '"pod": "api-7d9f-x2x4z"', "CrashLoopBackOff"):
        assert text in user["content"]


async def test_defaults_no_key_no_model_and_full_endpoint_url(fake: FakeOpenAI) -> None:
    fake.reply(json.dumps(GOOD))
    client = OpenAIAdvisor(fake.url + "/chat/completions/", None, None)
    try:
        assert await client.propose(INCIDENT, proposal_grammar()) is not None
    finally:
        await client.close()
    [request] = fake.requests
    assert request.path == "/v1/chat/completions"
    assert "Authorization" not in request.headers
    assert request.body["model"] == "gpt-4o-mini"


async def test_answer_outside_the_allow_list_is_returned_for_the_core_to_refuse(
        fake: FakeOpenAI, advisor: OpenAIAdvisor) -> None:
    fake.reply(json.dumps({"action": "kubectl exec -it api-7d9f-x2x4z -n prod -- rm -rf /data",
                           "rationale": "clear the cache"}))
    answer = await advisor.propose(INCIDENT, proposal_grammar())
    assert answer is not None and answer.action.startswith("kubectl exec")
    with pytest.raises(ParseError):
        parse_operation(answer.action)


async def test_timeout_returns_none_quickly(fake: FakeOpenAI) -> None:
    fake.reply(json.dumps(GOOD))
    fake.delay = 30.0
    client = OpenAIAdvisor(fake.url, "test-model", KEY, timeout=0.3)
    started = time.monotonic()
    try:
        assert await client.propose(INCIDENT, proposal_grammar()) is None
    finally:
        await client.close()
    assert time.monotonic() - started < 10.0  # generous: the point is that it does not wait 30 s
    assert len(fake.requests) == 1


async def test_server_error_returns_none(fake: FakeOpenAI, advisor: OpenAIAdvisor) -> None:
    fake.fail(500)
    assert await advisor.propose(INCIDENT, proposal_grammar()) is None
    fake.fail(429, '{"error": {"message": "rate limited"}}')
    assert await advisor.propose(INCIDENT, proposal_grammar()) is None


async def test_malformed_bodies_return_none(fake: FakeOpenAI, advisor: OpenAIAdvisor) -> None:
    for body in ('{"choices": [', "<html>bad gateway</html>", '{"choices": []}', '{"object": "error"}',
                 '{"choices": [{"message": {"content": null}}]}'):
        fake.fail(200, body)
        assert await advisor.propose(INCIDENT, proposal_grammar()) is None, body


async def test_unreadable_or_none_content_returns_none(fake: FakeOpenAI, advisor: OpenAIAdvisor) -> None:
    for content in ('{"action": "rollout restart deployment/api -n prod"', '{"action": "NONE"}', "NONE", "",
                    "I think you should restart it.\nThen check the logs.", '{"rationale": "no action"}',
                    '["rollout restart deployment/api -n prod"]'):
        fake.reply(content)
        assert await advisor.propose(INCIDENT, proposal_grammar()) is None, content


async def test_connection_refused_returns_none() -> None:
    fake = FakeOpenAI()
    await fake.start()
    url = fake.url
    await fake.stop()  # nothing listens on that port any more
    client = OpenAIAdvisor(url, None, KEY, timeout=2.0)
    try:
        assert await client.propose(INCIDENT, proposal_grammar()) is None
    finally:
        await client.close()


async def test_failures_are_logged_without_the_key(fake: FakeOpenAI, advisor: OpenAIAdvisor) -> None:
    fake.fail(500)
    with capture_logs() as logs:
        assert await advisor.propose(INCIDENT, proposal_grammar()) is None
    failed = [entry for entry in logs if entry["event"] == "llm.failed"]
    assert failed and failed[0]["reason"] == "http_status" and failed[0]["status"] == 500
    assert failed[0]["log_level"] == "warning"
    assert KEY not in repr(logs) and KEY not in repr(advisor)


async def test_fenced_json_content(fake: FakeOpenAI, advisor: OpenAIAdvisor) -> None:
    fake.reply("```json\n" + json.dumps(GOOD) + "\n```")
    assert await advisor.propose(INCIDENT, proposal_grammar()) == AdvisorAnswer(**GOOD)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (json.dumps(GOOD), AdvisorAnswer(**GOOD)),
        ("```json\n" + json.dumps(GOOD) + "\n```", AdvisorAnswer(**GOOD)),
        ("```\n" + json.dumps(GOOD) + "\n```", AdvisorAnswer(**GOOD)),
        ('  {"action": "  `cordon node-1`  ", "rationale": " bad disk "}  ',
         AdvisorAnswer(action="cordon node-1", rationale="bad disk")),
        ('{"action": "cordon node-1", "rationale": 7}', AdvisorAnswer(action="cordon node-1", rationale="")),
        ("rollout restart deployment/api -n prod", AdvisorAnswer(action="rollout restart deployment/api -n prod")),
        ("`rollout restart deployment/api -n prod`\n", AdvisorAnswer(action="rollout restart deployment/api -n prod")),
        ("```\nrollout restart deployment/api -n prod\n```",
         AdvisorAnswer(action="rollout restart deployment/api -n prod")),
        ('{"action": "NONE"}', AdvisorAnswer(action="NONE")),
        ("NONE", AdvisorAnswer(action="NONE")),
        ('{"action": "cordon', None),
        ('{"action": ""}', None),
        ('{"action": 3}', None),
        ("line one\nline two", None),
        ("", None),
        ("```json\n```", None),
    ],
)
def test_parse_answer(content: str, expected: AdvisorAnswer | None) -> None:
    assert parse_answer(content) == expected
