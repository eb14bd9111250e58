"""The team most tests sign with, as a policy file: alice, bob and carol are SREs (carol also a lead),
an outsider is a developer; medium risk takes one SRE, high risk two, a playbook one lead.

Each chat maps the same people to its own account ids, so a test names the accounts only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

GROUPS: dict[str, tuple[str, ...]] = {
    "alice": ("sre",),
    "bob": ("sre",),
    "carol": ("sre", "leads"),
    "mallory": ("dev",),
    "dave": ("dev",),
}

RULES = """
[risk.medium]
quorum = 1
approvers = ["sre"]

[risk.high]
quorum = 2
approvers = ["sre"]

[playbooks]
quorum = 1
approvers = ["leads"]
"""


def team_policy(*, slack: Mapping[str, str] | None = None, discord: Mapping[str, str] | None = None,
                groups: Mapping[str, Sequence[str]] | None = None, medium_quorum: int = 1,
                rules: str | None = None) -> str:
    """The team's policy file, with each person's `slack`/`discord` account from the given maps
    (name → id); `groups` overrides a person's groups, `rules` replaces the risk/playbook rules."""
    accounts = {"slack": dict(slack or {}), "discord": dict(discord or {})}
    names = list(dict.fromkeys([*accounts["slack"], *accounts["discord"]]))
    lines: list[str] = []
    for name in names:
        lines.append(f"[people.{name}]")
        for platform, ids in accounts.items():
            if name in ids:
                lines.append(f'{platform} = "{ids[name]}"')
        member_of = (groups or {}).get(name, GROUPS[name])
        lines.append("groups = [" + ", ".join(f'"{g}"' for g in member_of) + "]")
        lines.append("")
    body = RULES.replace("[risk.medium]\nquorum = 1", f"[risk.medium]\nquorum = {medium_quorum}")
    return "\n".join(lines) + (body if rules is None else rules)
