"""PlaybookRules: the extraction thresholds are named once and everything reads them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from core.chat.learning_texts import playbooks_text, rating_card, resolved_reply
from core.domain.playbooks import PlaybookStatus, extract
from core.domain.policy import PlaybookRules

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _extract(score: int, rules: PlaybookRules) -> PlaybookStatus:
    change = extract(
        playbook_id="PB-1", incident_id="INC-1", alert_name="KubePodCrashLooping", trigger_labels={},
        symptom="", command="kubectl rollout restart deployment/api -n prod",
        alert_labels={"deployment": "api", "namespace": "prod"}, request_id="R-1", effectiveness=score,
        risk=None, at=T0, rules=rules,
    )
    return change.playbook.status


def test_defaults_are_four_and_five() -> None:
    rules = PlaybookRules()
    assert (rules.extract_min_score, rules.auto_approve_score) == (4, 5)
    assert [s for s in range(1, 6) if rules.extracts(s)] == [4, 5]
    assert _extract(5, rules) is PlaybookStatus.approved
    assert _extract(4, rules) is PlaybookStatus.proposed
    assert rules.describe_extracting() == "4 or 5"


def test_other_thresholds_reach_extraction_and_sentences() -> None:
    rules = PlaybookRules(extract_min_score=3, auto_approve_score=4)
    assert _extract(4, rules) is PlaybookStatus.approved
    assert _extract(3, rules) is PlaybookStatus.proposed
    assert rules.describe_extracting() == "3 to 5"
    assert "a 3 to 5 turns the fix" in rating_card("R-1", "INC-1", rules).text
    assert [b.style for b in rating_card("R-1", "INC-1", rules).buttons].count("primary") == 3
    assert "score of 3 to 5" in playbooks_text([], rules)
    assert "3 to 5 turns" in resolved_reply("INC-1", 3, rules)
    assert "turns" not in resolved_reply("INC-1", 2, rules)
    assert PlaybookRules(extract_min_score=5).describe_extracting() == "5"


def test_auto_approval_below_extraction_is_refused() -> None:
    with pytest.raises(ValidationError, match="auto_approve_score"):
        PlaybookRules(extract_min_score=5, auto_approve_score=4)
