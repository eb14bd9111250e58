"""The docs say what the code does: the policy reference against the policy model, the similarity
formula against its module, the comments' references against docs/design.md."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from core.domain import policy_file, similarity
from core.domain.policy import Policy
from core.domain.policy_file import parse_policy

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _element_model(annotation: Any) -> type[BaseModel]:
    """The model a section of the file holds: `dict[K, M]` and `tuple[M, ...]` hold M's."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not Ellipsis and a is not type(None)]
    if origin in (dict, tuple, list, typing.Union, types.UnionType) and args:
        return _element_model(args[-1])
    raise AssertionError(f"no model in {annotation!r}")


def _model_sections() -> dict[str, set[str]]:
    sections = {}
    for section in policy_file._TOP_LEVEL:
        model = _element_model(Policy.model_fields[section].annotation)
        keys = {field.alias or name for name, field in model.model_fields.items()}  # `as`, written `as_`
        keys.discard("name")  # a person's name is the table's name, [people.<name>]
        sections[section] = keys
    return sections


def _documented_sections() -> dict[str, set[str]]:
    text = (DOCS / "policy.md").read_text()
    sections: dict[str, set[str]] = {}
    current = None
    for line in text.splitlines():
        heading = re.match(r"^## `\[\[?([a-z_]+)[^`]*`", line)
        if heading:
            current = heading.group(1)
            sections[current] = set()
        elif line.startswith("## "):
            current = None
        elif current is not None:
            row = re.match(r"^\| `([a-z_]+)` \|", line)
            if row:
                sections[current].add(row.group(1))
    return sections


def test_policy_reference_documents_exactly_the_models_keys() -> None:
    assert _documented_sections() == _model_sections()


def test_policy_reference_example_parses() -> None:
    text = (DOCS / "policy.md").read_text()
    example = re.search(r"## Example\n\n```toml\n(.*?)```", text, re.S)
    assert example
    policy = parse_policy(example.group(1), "docs/policy.md")
    assert policy.rules and policy.people and policy.playbooks.similarity == 0.85


def test_similarity_page_renders_the_module_and_states_its_formula() -> None:
    page = (DOCS / "similarity.md").read_text()
    assert "::: core.domain.similarity" in page  # mkdocstrings renders the module's own docstring
    formula = "score = round(0.5·A + 0.4·W + 0.1·S, 4)"
    assert formula in (similarity.__doc__ or "") and formula in page


def test_code_cites_docs_design_md_that_exists() -> None:
    design = (DOCS / "design.md").read_text()
    headings = {m.group(1) for m in re.finditer(r"^## (\d+)\.", design, re.M)}
    for path in [*ROOT.glob("core/**/*.py"), *ROOT.glob("adapters/**/*.py"), *ROOT.glob("bot/**/*.py")]:
        text = path.read_text()
        assert not re.search(r"(?<![/\w])DESIGN\.md", text), f"{path}: cite docs/design.md"
        for section in re.findall(r"docs/design\.md §(\d+)", text):
            assert section in headings, f"{path}: docs/design.md has no §{section}"


def test_metrics_page_lists_exactly_what_metrics_exports() -> None:
    from bot.metrics import EXPORTED
    page = (DOCS / "metrics.md").read_text()
    documented = set(re.findall(r"^\| `(signoff_[a-z_]+)` \|", page, re.M))
    assert documented == set(EXPORTED)


def test_every_page_is_in_the_navigation() -> None:
    import yaml
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text().replace("!!python/name:", ""))

    def pages(node: Any) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, list):
            return [p for item in node for p in pages(item)]
        if isinstance(node, dict):
            return [p for value in node.values() for p in pages(value)]
        return []

    assert sorted(pages(config["nav"])) == sorted(p.name for p in DOCS.glob("*.md"))
