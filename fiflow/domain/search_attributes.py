"""Search attributes that ops filter on in the Web UI. Never PII: they are not encrypted."""

from temporalio.common import SearchAttributeKey

ALERT_ID = SearchAttributeKey.for_keyword("AlertId")
ALERT_TYPE = SearchAttributeKey.for_keyword("AlertType")
ALERT_STATE = SearchAttributeKey.for_keyword("AlertState")
CHANNEL = SearchAttributeKey.for_keyword("Channel")
RULE_SET_VERSION = SearchAttributeKey.for_keyword("RuleSetVersion")
APPLICATION_ID = SearchAttributeKey.for_keyword("ApplicationId")
PRODUCT = SearchAttributeKey.for_keyword("Product")
DECISION = SearchAttributeKey.for_keyword("Decision")

ALL: tuple[SearchAttributeKey, ...] = (
    ALERT_ID,
    ALERT_TYPE,
    ALERT_STATE,
    CHANNEL,
    RULE_SET_VERSION,
    APPLICATION_ID,
    PRODUCT,
    DECISION,
)


def cli_flags() -> list[str]:
    """`--search-attribute Name=Type` flags for `temporal server start-dev`."""
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}=Keyword"]
    return flags
