"""Reading rule files: the packaged defaults, or a directory the FI maintains."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from fiflow.domain.credit_rules import CreditRuleSet, parse_credit_rule_set
from fiflow.domain.rules import AlertRuleSet, RuleSetError, parse_alert_rule_set

Parser = Callable[..., Any]

# Rule set name -> (file name, parser). The name is also the rule file's own `name`.
RULE_FILES: dict[str, tuple[str, Parser]] = {
    "alerts": ("alerts.yaml", parse_alert_rule_set),
    "credit": ("credit.yaml", parse_credit_rule_set),
}


def _load_text(text: str, *, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleSetError(f"{source} is not valid YAML/JSON: {exc}") from None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleSetError(f"cannot read rule file {path}: {exc.strerror}") from None


def parse_alert_rules_text(text: str, *, source: str) -> AlertRuleSet:
    """Validate alert rule text; YAML syntax errors are reported like any other problem."""
    return parse_alert_rule_set(_load_text(text, source=source), source=source)


def parse_credit_rules_text(text: str, *, source: str) -> CreditRuleSet:
    """Validate credit rule text; YAML syntax errors are reported like any other problem."""
    return parse_credit_rule_set(_load_text(text, source=source), source=source)


def read_alert_rules_file(path: Path) -> AlertRuleSet:
    """Load and validate one alert rule file (YAML or JSON)."""
    return parse_alert_rules_text(_read(path), source=str(path))


def read_rules_file(path: Path) -> AlertRuleSet | CreditRuleSet:
    """Load and validate a rule file of either kind, told apart by its `name`."""
    text = _read(path)
    data = _load_text(text, source=str(path))
    name = data.get("name", "alerts") if isinstance(data, dict) else "alerts"
    if name not in RULE_FILES:
        raise RuleSetError(f"{path}: name must be one of {', '.join(RULE_FILES)}, not {name!r}")
    parsed: AlertRuleSet | CreditRuleSet = RULE_FILES[name][1](data, source=str(path))
    return parsed


class RuleStore:
    """The active rule sets. Files are re-read when they change, so new runs see new rules."""

    def __init__(self, rules_dir: Path | None):
        self._dir = rules_dir
        self._cache: dict[str, tuple[float, Any]] = {}

    def path(self, name: str) -> Path:
        """Where the named rule set's file is read from."""
        file_name = RULE_FILES[name][0]
        if self._dir is not None:
            return self._dir / file_name
        return Path(str(resources.files("fiflow") / "rules" / file_name))

    def _current(self, name: str) -> Any:
        path = self.path(name)
        try:
            mtime = path.stat().st_mtime
        except OSError as exc:
            raise RuleSetError(f"cannot read rule file {path}: {exc.strerror}") from None
        cached = self._cache.get(name)
        if cached is None or cached[0] != mtime:
            parser = RULE_FILES[name][1]
            rules = parser(_load_text(_read(path), source=str(path)), source=str(path))
            cached = self._cache[name] = (mtime, rules)
        return cached[1]

    def alert_rules(self) -> AlertRuleSet:
        """The current alert rule set (cached until the file's mtime changes)."""
        rules: AlertRuleSet = self._current("alerts")
        return rules

    def credit_rules(self) -> CreditRuleSet:
        """The current credit rule set (cached until the file's mtime changes)."""
        rules: CreditRuleSet = self._current("credit")
        return rules
