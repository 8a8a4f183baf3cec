"""Reading rule files: the packaged defaults, or a directory the FI maintains."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from fiflow.domain.rules import AlertRuleSet, RuleSetError, parse_alert_rule_set


def read_alert_rules_file(path: Path) -> AlertRuleSet:
    """Load and validate one alert rule file (YAML or JSON)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleSetError(f"cannot read rule file {path}: {exc.strerror}") from None
    return parse_alert_rules_text(text, source=str(path))


def parse_alert_rules_text(text: str, *, source: str) -> AlertRuleSet:
    """Validate rule text; YAML syntax errors are reported like any other problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleSetError(f"{source} is not valid YAML/JSON: {exc}") from None
    return parse_alert_rule_set(data, source=source)


class RuleStore:
    """The active rule sets. Files are re-read when they change, so new alerts see new rules."""

    def __init__(self, rules_dir: Path | None):
        self._dir = rules_dir
        self._cache: tuple[float, AlertRuleSet] | None = None

    def _alerts_path(self) -> Path:
        if self._dir is not None:
            return self._dir / "alerts.yaml"
        return Path(str(resources.files("fiflow") / "rules" / "alerts.yaml"))

    def alert_rules(self) -> AlertRuleSet:
        """The current alert rule set (cached until the file's mtime changes)."""
        path = self._alerts_path()
        try:
            mtime = path.stat().st_mtime
        except OSError as exc:
            raise RuleSetError(f"cannot read rule file {path}: {exc.strerror}") from None
        if self._cache is None or self._cache[0] != mtime:
            self._cache = (mtime, read_alert_rules_file(path))
        return self._cache[1]
