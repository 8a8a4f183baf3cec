"""Reading rule files: the packaged defaults, or a directory the FI maintains."""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.exc import SQLAlchemyError

from fiflow.domain.credit_rules import CreditRuleSet, parse_credit_rule_set
from fiflow.domain.feeds.conditions import ConditionRuleSet, parse_condition_rule_set
from fiflow.domain.rules import AlertRuleSet, RuleSetError, parse_alert_rule_set
from fiflow.domain.triggers import TriggerRuleSet, parse_trigger_rule_set
from fiflow.integrations.rule_versions import RuleVersionStore

Parser = Callable[..., Any]

# Rule set name -> (file name, parser). The name is also the rule file's own `name`.
RULE_FILES: dict[str, tuple[str, Parser]] = {
    "alerts": ("alerts.yaml", parse_alert_rule_set),
    "credit": ("credit.yaml", parse_credit_rule_set),
    "triggers": ("triggers.yaml", parse_trigger_rule_set),
    "conditions": ("conditions.yaml", parse_condition_rule_set),
}

# Which rule sets need four eyes to activate; not a rule set itself, so not in RULE_FILES.
ACTIVATION_FILE = "activation.yaml"


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


AnyRuleSet = AlertRuleSet | CreditRuleSet | TriggerRuleSet | ConditionRuleSet


def read_rules_file(path: Path) -> AnyRuleSet:
    """Load and validate a rule file of any kind, told apart by its `name`."""
    text = _read(path)
    data = _load_text(text, source=str(path))
    name = data.get("name", "alerts") if isinstance(data, dict) else "alerts"
    if name not in RULE_FILES:
        raise RuleSetError(f"{path}: name must be one of {', '.join(RULE_FILES)}, not {name!r}")
    parsed: AnyRuleSet = RULE_FILES[name][1](data, source=str(path))
    return parsed


# How long a looked-up "which version is active" answer is reused: an activation reaches
# every process within this, without a database query per rule load.
ACTIVE_VERSION_TTL = 1.0


class RuleStore:
    """The active rule sets: the version activated through the admin API, else the file.

    Files are re-read when they change; activated versions are picked up within
    ACTIVE_VERSION_TTL seconds. Either way only new runs see new rules.
    """

    def __init__(self, rules_dir: Path | None, versions: RuleVersionStore | None = None):
        self._dir = rules_dir
        self._versions = versions
        self._cache: dict[str, tuple[float, Any]] = {}
        self._activated: dict[str, tuple[int, Any]] = {}
        self._markers: dict[str, tuple[float, tuple[int, str] | None]] = {}

    def path(self, name: str) -> Path:
        """Where the named rule set's file is read from."""
        file_name = RULE_FILES[name][0]
        if self._dir is not None:
            return self._dir / file_name
        return Path(str(resources.files("fiflow") / "rules" / file_name))

    def _current(self, name: str) -> Any:
        activated = self._activated_version(name)
        if activated is not None:
            return activated
        return self.from_file(name)

    def _activated_version(self, name: str) -> Any:
        """The version activated through the admin API, if any (None: use the file)."""
        if self._versions is None:
            return None
        cached = self._activated.get(name)
        try:
            marker = self._active_marker(name)
            if marker is None:
                return None
            if cached is not None and cached[0] == marker[0]:
                return cached[1]
            row = self._versions.active(name)
        except SQLAlchemyError as exc:
            # The database is down: the version already in use stays in use; with none
            # known yet, say so rather than silently fall back to the file.
            if cached is not None:
                return cached[1]
            raise RuleSetError(
                f"cannot read the active {name} rule version: {type(exc).__name__}"
            ) from None
        if row is None:
            return None
        rules = RULE_FILES[name][1](row.content, source=f"{name} version {row.version}")
        self._activated[name] = (row.id, rules)
        return rules

    def _active_marker(self, name: str) -> tuple[int, str] | None:
        assert self._versions is not None
        now = time.monotonic()
        looked_up = self._markers.get(name)
        if looked_up is None or now - looked_up[0] > ACTIVE_VERSION_TTL:
            looked_up = self._markers[name] = (now, self._versions.active_marker(name))
        return looked_up[1]

    def from_file(self, name: str) -> Any:
        """The rule set in the file (the packaged one, or the FI's directory)."""
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

    def second_admin_required(self, name: str) -> bool:
        """Whether activating this rule set through the admin API needs a second admin.

        From `activation.yaml` in the FI's rules directory, else the packaged one. A broken
        file is a RuleSetError: nothing is activated until it is fixed.
        """
        path = self._dir / ACTIVATION_FILE if self._dir is not None else None
        if path is None or not path.exists():
            path = Path(str(resources.files("fiflow") / "rules" / ACTIVATION_FILE))
        data = _load_text(_read(path), source=str(path))
        listed = data.get("second_admin_required") if isinstance(data, dict) else None
        if not isinstance(listed, list) or not all(n in RULE_FILES for n in listed):
            raise RuleSetError(
                f"{path}: second_admin_required must list rule sets of {', '.join(RULE_FILES)}"
            )
        return name in listed

    def alert_rules(self) -> AlertRuleSet:
        """The current alert rule set (cached until the file's mtime changes)."""
        rules: AlertRuleSet = self._current("alerts")
        return rules

    def credit_rules(self) -> CreditRuleSet:
        """The current credit rule set (cached until the file's mtime changes)."""
        rules: CreditRuleSet = self._current("credit")
        return rules

    def trigger_rules(self) -> TriggerRuleSet:
        """The current trigger rule set (with the follow-up contact rules)."""
        rules: TriggerRuleSet = self._current("triggers")
        return rules

    def condition_rules(self) -> ConditionRuleSet:
        """The current FI alert conditions (screened on the stream and in batch files)."""
        rules: ConditionRuleSet = self._current("conditions")
        return rules
