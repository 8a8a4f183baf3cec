"""Every fiflow activity bound to the stand-in office: the worker's set, minus real HTTP."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from temporalio.client import Client

from fiflow.activities.alert_preparation import AlertPreparation
from fiflow.activities.backoffice import (
    CardActivities,
    ContactCenterActivities,
    CrmActivities,
    FraudActivities,
)
from fiflow.activities.conversations import ConversationActivities, auto_reply_limit
from fiflow.activities.credit import BillingActivities, BureauActivities, CoreBankingActivities
from fiflow.activities.interactions import (
    ContactWindowActivities,
    FollowUpRegistry,
    FraudAlertFromInteraction,
    InteractionActivities,
    TicketActivities,
)
from fiflow.activities.messaging import MessagingActivities
from fiflow.activities.metrics import MetricsActivities
from fiflow.activities.notices import NoticeActivities
from fiflow.activities.reports import ReportActivities
from fiflow.activities.rules import RuleActivities
from fiflow.integrations.interactions_store import InteractionStore
from fiflow.integrations.metrics_store import MetricsStore
from fiflow.integrations.optouts import OptOutStore
from fiflow.integrations.reports import CreditReportStore
from fiflow.integrations.results_reports import ResultsReportStore
from fiflow.integrations.rules_store import RuleStore
from fiflow.integrations.settings import Settings
from tests.workflows.standins import LendingOffice


def all_activities(
    office: LendingOffice,
    client: Client,
    settings: Settings,
    engine: Engine,
    rules_dir: Path | None = None,
) -> list[Callable[..., Any]]:
    """The same activities `fiflow worker` registers, over the stand-ins and a test database."""
    stand_in: Any = office  # it stands in for every client type at once
    rule_store = RuleStore(rules_dir)
    messaging = MessagingActivities(
        stand_in,
        stand_in,
        OptOutStore(engine),
        settings.address_hash_key.get_secret_value(),
        rule_store,
    )
    rules = RuleActivities(rule_store)
    crm = CrmActivities(stand_in)
    core = CoreBankingActivities(stand_in)
    billing = BillingActivities(stand_in)
    tickets = TicketActivities(stand_in)
    interaction_store = InteractionStore(engine)
    metrics_store = MetricsStore(engine)
    metrics = MetricsActivities(metrics_store, ResultsReportStore(engine))
    interactions = InteractionActivities(interaction_store)
    follow_ups = FollowUpRegistry(client, interaction_store)
    conversations = ConversationActivities(
        client,
        settings.address_hash_key.get_secret_value(),
        settings.fi_name,
        settings.fi_help_text,
        auto_replies=auto_reply_limit(settings),
    )
    return [
        rules.load_alert_rules,
        AlertPreparation(rules, crm, conversations).prepare_alert,
        rules.load_credit_rules,
        rules.load_trigger_rules,
        crm.get_customer,
        crm.add_note,
        FraudActivities(stand_in).record_outcome,
        CardActivities(stand_in).set_blocked,
        ContactCenterActivities(stand_in).schedule_callback,
        messaging.send_sms,
        messaging.send_push,
        messaging.set_sms_opt_out,
        conversations.register_alert,
        conversations.alerts_still_running,
        BureauActivities(stand_in).pull,
        core.summary,
        core.statement_page,
        core.open_account,
        core.find_account,
        core.close_account,
        billing.create_account,
        billing.add_schedule,
        billing.cancel_account,
        ReportActivities(CreditReportStore(engine), metrics_store).store_credit_report,
        interactions.prior_interactions,
        interactions.record_interaction,
        follow_ups.record_follow_up,
        follow_ups.stop_waiting_follow_ups,
        tickets.create_ticket,
        tickets.get_ticket,
        ContactWindowActivities().next_contact_time,
        ContactWindowActivities().in_hours,
        FraudAlertFromInteraction(
            stand_in, settings.address_hash_key.get_secret_value(), settings.fi_name
        ).prepare,
        NoticeActivities(rule_store).load_notice_rules,
        NoticeActivities(rule_store).notice_send_time,
        metrics.record_metric_events,
        metrics.aggregate_metrics,
    ]
