"""Loading the rules a run goes by (recorded in its history, so replays never re-read).

The store may ask the database which version is active, so reads run off the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from fiflow.domain.credit import Product
from fiflow.domain.credit_rules import CreditRules
from fiflow.domain.rules import AlertRules, RuleSetError
from fiflow.domain.triggers import TriggerRuleSet
from fiflow.integrations.rules_store import RuleStore

T = TypeVar("T")


class LoadAlertRules(BaseModel):
    """Which alert type's rules to load."""

    alert_type: str


class LoadCreditRules(BaseModel):
    """Which product's credit rules to load."""

    product: Product


class LoadTriggerRules(BaseModel):
    """Load the trigger rules (one model argument, so fields can be added later)."""


class RuleActivities:
    """Rule-set reads."""

    def __init__(self, store: RuleStore):
        self._store = store

    async def _read(self, getter: Callable[[], T]) -> T:
        """The current rule set, read off the event loop (the store may ask the database)."""
        try:
            return await asyncio.to_thread(getter)
        except RuleSetError as exc:
            # A broken rule set is an operator problem: keep retrying until it is fixed.
            raise ApplicationError(str(exc), type="rules.invalid") from exc

    @activity.defn(name="load_alert_rules")
    async def load_alert_rules(self, req: LoadAlertRules) -> AlertRules:
        """The active rule version's policy for this alert type."""
        rules = await self._read(self._store.alert_rules)
        policy = rules.policy(req.alert_type)
        if policy is None:
            raise ApplicationError(
                f"no rules for alert type {req.alert_type!r}",
                type="rules.unknown_alert_type",
                non_retryable=True,
            )
        return AlertRules(
            version=rules.version,
            fi_name=rules.fi_name,
            templates=rules.templates,
            policy=policy,
            sms_max_segments=rules.sms_max_segments,
            sms_alert_cap=rules.sms_alert_cap,
        )

    @activity.defn(name="load_credit_rules")
    async def load_credit_rules(self, req: LoadCreditRules) -> CreditRules:
        """The active credit rule version, for this product."""
        rules = await self._read(self._store.credit_rules)
        product_rules = rules.for_product(req.product)
        if product_rules is None:
            raise ApplicationError(
                f"no credit rules for product {req.product.value!r}",
                type="rules.unknown_product",
                non_retryable=True,
            )
        return product_rules

    @activity.defn(name="load_trigger_rules")
    async def load_trigger_rules(self, req: LoadTriggerRules) -> TriggerRuleSet:
        """The active trigger rule version (triggers and follow-up contact rules)."""
        return await self._read(self._store.trigger_rules)
