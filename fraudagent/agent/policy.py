"""The action policy: a versioned YAML rule file evaluated against a case's facts.

The policy decides what the agent may recommend; the model only chooses within
it. A condition names a fact (`new_device`) or compares one of its fields
(`velocity_24h.declined >= 4`); a fact the case lacks reads as absent, and its
fields as 0. The file is validated when loaded, so a typo in a rule fails
loudly at start-up rather than silently never firing.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fraudagent.core.models import Action, Typology

_CONDITION = re.compile(
    r"^\s*(?P<fact>[a-z_0-9]+)(?:\.(?P<field>[a-z_0-9]+)\s*(?P<op>>=|<=|==|>|<)\s*(?P<value>-?\d+(?:\.\d+)?))?\s*$"
)
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    ">": operator.gt,
    "<": operator.lt,
}
DEFAULT_POLICY = "default.yaml"

# Facts as the policy sees them: name -> the fact item's data.
Facts = Mapping[str, Mapping[str, Any]]
Condition = str | list[str]


def _check_condition(text: str) -> str:
    if not _CONDITION.match(text):
        raise ValueError(f"not a condition: {text!r} (expected 'fact' or 'fact.field >= number')")
    return text


def holds(condition: Condition, facts: Facts) -> bool:
    """One condition, or all of a list of them."""
    if isinstance(condition, list):
        return all(holds(c, facts) for c in condition)
    m = _CONDITION.match(condition)
    assert m is not None  # validated on load
    fact = facts.get(m["fact"])
    if m["field"] is None:
        return fact is not None
    value = (fact or {}).get(m["field"], 0)
    if isinstance(value, list):
        value = len(value)
    try:
        return _OPS[m["op"]](float(value), float(m["value"]))
    except (TypeError, ValueError):
        return False


def fact_names(condition: Condition) -> list[str]:
    items = condition if isinstance(condition, list) else [condition]
    return [m["fact"] for c in items if (m := _CONDITION.match(c))]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(min_length=1)
    when: list[str] = Field(default_factory=list, description="all must hold")

    @field_validator("when")
    @classmethod
    def _valid(cls, value: list[str]) -> list[str]:
        return [_check_condition(c) for c in value]

    def fires(self, facts: Facts) -> bool:
        return all(holds(c, facts) for c in self.when)


class ClassifyRule(_Rule):
    typology: Typology


class SuggestRule(_Rule):
    actions: list[Action] = Field(min_length=1)


class TypologyPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    supported_by: list[Condition] = Field(default_factory=list, description="any one; empty: always supported")
    must_cite: list[str] = Field(
        default_factory=list, description="facts a report of this typology cites when they exist"
    )
    allowed: list[Action] = Field(min_length=1)
    suggest: list[SuggestRule] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> TypologyPolicy:
        for c in self.supported_by:
            for text in c if isinstance(c, list) else [c]:
                _check_condition(text)
        for rule in self.suggest:
            if not set(rule.actions) <= set(self.allowed):
                raise ValueError(f"rule {rule.id} suggests actions the typology does not allow")
        if self.suggest[-1].when:
            raise ValueError("the last suggest rule must have no conditions (the default)")
        return self


class ClearingPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    actions: list[Action]
    refused_when: list[Condition] = Field(default_factory=list)


class PolicyDecision(BaseModel):
    """What the policy says about one case for one typology."""

    typology: Typology
    allowed: list[Action]
    suggested: list[Action]
    rules: list[str] = Field(description="ids of the rules that fired")


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: str = Field(min_length=1)
    classify: list[ClassifyRule] = Field(min_length=1)
    typologies: dict[Typology, TypologyPolicy]
    always_cite: list[str] = Field(default_factory=list)
    high_impact: dict[Action, list[Condition]] = Field(default_factory=dict)
    clearing: ClearingPolicy

    @model_validator(mode="after")
    def _complete(self) -> Policy:
        missing = set(Typology) - set(self.typologies)
        if missing:
            raise ValueError(f"no policy for typologies: {', '.join(sorted(missing))}")
        if self.classify[-1].when:
            raise ValueError("the last classify rule must have no conditions (the default)")
        for conditions in [*self.high_impact.values(), self.clearing.refused_when]:
            for c in conditions:
                for text in c if isinstance(c, list) else [c]:
                    _check_condition(text)
        return self

    def classify_case(self, facts: Facts) -> ClassifyRule:
        return next(rule for rule in self.classify if rule.fires(facts))

    def decide(self, typology: Typology, facts: Facts) -> PolicyDecision:
        rules = self.typologies[typology]
        suggestion = next(rule for rule in rules.suggest if rule.fires(facts))
        return PolicyDecision(
            typology=typology, allowed=list(rules.allowed), suggested=list(suggestion.actions), rules=[suggestion.id]
        )

    def supported(self, typology: Typology, facts: Facts) -> bool:
        conditions = self.typologies[typology].supported_by
        return not conditions or any(holds(c, facts) for c in conditions)

    def action_problems(self, typology: Typology, actions: list[Action], facts: Facts) -> list[str]:
        """Why these actions may not be recommended for this case; empty when they may."""
        problems: list[str] = []
        allowed = self.typologies[typology].allowed
        for action in actions:
            if action not in allowed:
                problems.append(
                    f"{action.value} is not allowed for {typology.value}; "
                    f"allowed: {', '.join(a.value for a in allowed)}"
                )
            elif action in self.high_impact and not any(holds(c, facts) for c in self.high_impact[action]):
                needs = sorted({f for c in self.high_impact[action] for f in fact_names(c)})
                problems.append(f"{action.value} needs a supporting fact ({' or '.join(needs)}) and none holds")
            elif action in self.clearing.actions:
                blocking = [c for c in self.clearing.refused_when if holds(c, facts)]
                if blocking:
                    names = sorted({f for c in blocking for f in fact_names(c)})
                    problems.append(f"{action.value} is refused while these facts show fraud: {', '.join(names)}")
        return problems

    def required_citations(self, typology: Typology, facts: Facts) -> list[str]:
        """The facts a report of this typology must cite, among those the case has."""
        names = [*self.always_cite, *self.typologies[typology].must_cite]
        return [f"fact:{n}" for n in dict.fromkeys(names) if n in facts]


def load_policy(path: Path | None = None) -> Policy:
    """The policy at `path`, or the packaged default; raises ValueError with the file's problems."""
    text = (
        path.read_text() if path else resources.files("fraudagent.agent.policies").joinpath(DEFAULT_POLICY).read_text()
    )
    try:
        return Policy.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValueError) as error:
        raise ValueError(f"policy {path or DEFAULT_POLICY} is invalid: {error}") from error


@lru_cache(maxsize=8)
def cached_policy(path: Path | None = None) -> Policy:
    return load_policy(path)


def facts_of(items: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The pack's `fact:` items as the policy reads them."""
    return {key.removeprefix("fact:"): dict(item.data) for key, item in items.items() if key.startswith("fact:")}
