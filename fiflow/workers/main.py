"""The worker process: every fiflow workflow and activity on one task queue."""

from __future__ import annotations

import asyncio
import compileall
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from fiflow import workflows as workflows_package
from fiflow.activities.alert_preparation import AlertPreparation
from fiflow.activities.backoffice import (
    CardActivities,
    ContactCenterActivities,
    CrmActivities,
    FraudActivities,
)
from fiflow.activities.batch_screening import BatchActivities
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
from fiflow.activities.retention import RetentionActivities
from fiflow.activities.rules import RuleActivities
from fiflow.integrations import telemetry
from fiflow.integrations.batch_store import BatchStore
from fiflow.integrations.billing import BillingClient
from fiflow.integrations.bureau import BureauClient
from fiflow.integrations.cards import CardClient
from fiflow.integrations.contact_center import ContactCenterClient
from fiflow.integrations.core_banking import CoreBankingClient
from fiflow.integrations.crm import CrmClient
from fiflow.integrations.database import create_db_engine
from fiflow.integrations.fraud import FraudClient
from fiflow.integrations.http import make_client
from fiflow.integrations.interactions_store import InteractionStore
from fiflow.integrations.message_ledger import MessageLedger
from fiflow.integrations.metrics_store import MetricsStore
from fiflow.integrations.optouts import OptOutStore
from fiflow.integrations.preferences_store import PreferenceStore
from fiflow.integrations.push import PushClient
from fiflow.integrations.reports import CreditReportStore
from fiflow.integrations.results_reports import ResultsReportStore
from fiflow.integrations.rule_versions import RuleVersionStore
from fiflow.integrations.rules_store import RuleStore
from fiflow.integrations.settings import Settings
from fiflow.integrations.sms import SmsClient
from fiflow.integrations.temporal import connect, payload_codec
from fiflow.workflows.account_history import AccountHistoryWorkflow
from fiflow.workflows.batch_screening import BatchInboxSweepWorkflow, BatchScreeningWorkflow
from fiflow.workflows.conversation import ConversationWorkflow
from fiflow.workflows.credit_application import CreditApplicationWorkflow
from fiflow.workflows.credit_check import CreditCheckWorkflow
from fiflow.workflows.credit_prefill import CreditPrefillWorkflow
from fiflow.workflows.follow_up import FollowUpWorkflow
from fiflow.workflows.fraud_alert import FraudAlertWorkflow
from fiflow.workflows.informational_alert import InformationalAlertWorkflow
from fiflow.workflows.interaction import InteractionWorkflow
from fiflow.workflows.metrics_aggregation import MetricsAggregationWorkflow
from fiflow.workflows.retention import RetentionWorkflow

log = logging.getLogger("fiflow.worker")

WORKFLOWS: Sequence[type] = (
    FraudAlertWorkflow,
    ConversationWorkflow,
    CreditApplicationWorkflow,
    CreditCheckWorkflow,
    AccountHistoryWorkflow,
    InteractionWorkflow,
    FollowUpWorkflow,
    CreditPrefillWorkflow,
    RetentionWorkflow,
    BatchScreeningWorkflow,
    BatchInboxSweepWorkflow,
    InformationalAlertWorkflow,
    MetricsAggregationWorkflow,
)
BACKOFFICE_SYSTEMS = (
    "crm",
    "fraud",
    "card",
    "contact_center",
    "push",
    "sms_api",
    "bureau",
    "core_banking",
    "billing",
)


@contextlib.asynccontextmanager
async def activity_set(settings: Settings, client: Client) -> AsyncIterator[list[Callable]]:
    """Every activity, bound to its clients; the HTTP clients close when the block ends."""
    timeout = settings.backoffice_timeout_seconds
    async with contextlib.AsyncExitStack() as stack:
        http: dict[str, httpx.AsyncClient] = {}
        for system in BACKOFFICE_SYSTEMS:
            http[system] = await stack.enter_async_context(
                make_client(settings.system_url(system), timeout)
            )
        engine = create_db_engine(settings.database_url)
        stack.callback(engine.dispose)
        crm = CrmActivities(CrmClient(http["crm"]))
        fraud = FraudActivities(FraudClient(http["fraud"]))
        card = CardActivities(CardClient(http["card"]))
        contact = ContactCenterActivities(ContactCenterClient(http["contact_center"]))
        rule_store = RuleStore(settings.rules_dir, RuleVersionStore(engine))
        messaging = MessagingActivities(
            SmsClient(
                http["sms_api"],
                settings.sms_account_sid,
                settings.sms_auth_token.get_secret_value(),
                settings.sms_from,
            ),
            PushClient(http["push"]),
            OptOutStore(engine),
            settings.address_hash_key.get_secret_value(),
            rule_store,
        )
        rules = RuleActivities(rule_store)
        batches = BatchActivities(
            BatchStore(engine, sealer=payload_codec(settings)),
            rule_store,
            settings,
            client,
            PreferenceStore(engine),
        )
        notices = NoticeActivities(rule_store)
        bureau = BureauActivities(BureauClient(http["bureau"]))
        core = CoreBankingActivities(CoreBankingClient(http["core_banking"]))
        billing = BillingActivities(BillingClient(http["billing"]))
        metrics_store = MetricsStore(engine)
        results_reports = ResultsReportStore(engine, sealer=payload_codec(settings))
        metrics = MetricsActivities(metrics_store, results_reports)
        reports = ReportActivities(
            CreditReportStore(engine, sealer=payload_codec(settings)), metrics_store
        )
        interaction_store = InteractionStore(engine)
        interactions = InteractionActivities(interaction_store)
        retention = RetentionActivities(
            MessageLedger(engine), interaction_store, metrics_store, results_reports
        )
        follow_ups = FollowUpRegistry(client, interaction_store)
        tickets = TicketActivities(CrmClient(http["crm"]))
        windows = ContactWindowActivities()
        alerts_from_calls = FraudAlertFromInteraction(
            CoreBankingClient(http["core_banking"]),
            settings.address_hash_key.get_secret_value(),
            settings.fi_name,
        )
        conversations = ConversationActivities(
            client,
            settings.address_hash_key.get_secret_value(),
            settings.fi_name,
            settings.fi_help_text,
            auto_replies=auto_reply_limit(settings),
        )
        yield [
            rules.load_alert_rules,
            AlertPreparation(rules, crm, conversations).prepare_alert,
            crm.get_customer,
            crm.add_note,
            fraud.record_outcome,
            card.set_blocked,
            contact.schedule_callback,
            messaging.send_sms,
            messaging.send_push,
            messaging.set_sms_opt_out,
            conversations.register_alert,
            conversations.alerts_still_running,
            rules.load_credit_rules,
            bureau.pull,
            core.summary,
            core.statement_page,
            core.open_account,
            core.find_account,
            core.close_account,
            billing.create_account,
            billing.add_schedule,
            billing.cancel_account,
            reports.store_credit_report,
            rules.load_trigger_rules,
            interactions.prior_interactions,
            interactions.record_interaction,
            follow_ups.record_follow_up,
            follow_ups.stop_waiting_follow_ups,
            tickets.create_ticket,
            tickets.get_ticket,
            windows.next_contact_time,
            windows.in_hours,
            alerts_from_calls.prepare,
            retention.purge_message_ledger,
            retention.purge_interaction_events,
            retention.purge_metric_events,
            retention.purge_results_reports,
            batches.prepare,
            batches.screen_chunk,
            batches.begin_alerting,
            batches.start_alerts,
            batches.finish,
            batches.sweep_inbox,
            notices.load_notice_rules,
            notices.notice_send_time,
            metrics.record_metric_events,
            metrics.aggregate_metrics,
        ]


def workflow_runner(settings: Settings) -> WorkflowRunner:
    """Temporal's sandbox unless the settings turn it off (see Settings.workflow_sandbox).

    No module of fiflow is added to the sandbox's passthrough list. A new run re-imports only
    the packages `fiflow`, `fiflow.workflows` and the run's own workflow module: every other
    fiflow module a workflow uses (domain, activity definitions, workflows.options,
    local_first, reach, failures) is already imported inside
    `workflow.unsafe.imports_passed_through()`, so it is shared, not re-imported. Listing
    them as well measured the same (a new FraudAlertWorkflow run 6.9 ms of CPU either way, a
    ConversationWorkflow 5.3-5.5 ms; 2 cores). A passthrough entry also matches every module
    below it: `fiflow` or `fiflow.workflows` would pass the workflow modules themselves, whose
    module state the sandbox isolates per run and whose calls it checks, so those two must
    never be listed (tests/workers/test_worker_tuning.py holds that).
    """
    if settings.workflow_sandbox:
        return SandboxedWorkflowRunner()
    return UnsandboxedWorkflowRunner()


def worker_tuning(settings: Settings) -> dict[str, Any]:
    """The Worker's cache, slot and poller settings (FIFLOW_WORKER_*); unset: the SDK's."""
    tuning: dict[str, Any] = {
        "max_cached_workflows": settings.worker_max_cached_workflows,
        "max_concurrent_activities": settings.worker_max_concurrent_activities,
        "nonsticky_to_sticky_poll_ratio": settings.worker_nonsticky_to_sticky_poll_ratio,
    }
    optional = {
        "max_concurrent_workflow_tasks": settings.worker_max_concurrent_workflow_tasks,
        "max_concurrent_local_activities": settings.worker_max_concurrent_local_activities,
        "max_concurrent_workflow_task_polls": settings.worker_workflow_task_polls,
        "max_concurrent_activity_task_polls": settings.worker_activity_task_polls,
    }
    tuning.update({name: value for name, value in optional.items() if value is not None})
    return tuning


def build_worker(
    client: Client, settings: Settings, activities: list[Callable], **kw: Any
) -> Worker:
    """A worker for fiflow's task queue (the tests build theirs the same way)."""
    options: dict[str, Any] = {
        **worker_tuning(settings),
        "workflow_runner": workflow_runner(settings),
        **kw,
    }
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=list(WORKFLOWS),
        activities=activities,
        **options,
    )


def precompile_workflow_modules() -> None:
    """Write bytecode for the modules the sandbox imports per run, if they are writable.

    The workflow sandbox re-imports a workflow's module (and its packages, `fiflow` and
    `fiflow.workflows`) for every new workflow run; without a .pyc (PYTHONDONTWRITEBYTECODE,
    a fresh checkout) each import compiles the source again: a new FraudAlertWorkflow run
    cost 18 ms of CPU that way, 7 ms from bytecode.
    """
    root = Path(workflows_package.__file__).parent
    with contextlib.suppress(OSError):
        compileall.compile_dir(str(root), quiet=2)
        compileall.compile_file(str(root.parent / "__init__.py"), quiet=2)


async def run_worker(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM, then finish in-flight tasks and exit."""
    telemetry.setup("worker", settings)
    precompile_workflow_modules()
    client = await connect(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with activity_set(settings, client) as activities:
        worker = build_worker(
            client,
            settings,
            activities,
            graceful_shutdown_timeout=timedelta(seconds=10),
        )
        log.info("worker polling task queue %s", settings.task_queue)
        async with worker:
            await stop.wait()
            log.info("worker stopping")
    log.info("worker stopped")
