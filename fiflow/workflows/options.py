"""Timeouts and retry policies for activity calls, in one place."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy

# Back-office calls: a slow or failing system delays the flow; it does not lose the action.
# Bounded: about 30 minutes of retrying, then the step is recorded as failed.
BACKOFFICE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=60,
)
BACKOFFICE: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=10),
    "schedule_to_close_timeout": timedelta(minutes=30),
    "retry_policy": BACKOFFICE_RETRY,
}

# Reads and local look-ups are quick; fail fast and retry often.
QUICK: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=5),
    "schedule_to_close_timeout": timedelta(minutes=10),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=100,
    ),
}

# Local activities run inside the workflow task (no extra server round trips; one marker
# event each), retried by the worker itself. Reads use QUICK as they are.
# A local activity that calls Temporal itself (the conversation's update-with-start) gets a
# longer attempt, since it waits for the conversation's own workflow task.
LOCAL_CALL: dict[str, Any] = {**QUICK, "start_to_close_timeout": timedelta(seconds=15)}

# The results report: a decided application must not fail because the database is down for
# a while, so this write retries (backing off to every 5 minutes) until the database is back.
REPORT: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5)
    ),
}

# Critical writes (an opt-out, a follow-up registration, an interaction record): losing one
# is worse than waiting for it, so they retry until the store takes them — no
# schedule-to-close limit, no attempt limit — backing off to one attempt every 5 minutes.
# A non-retryable (business) error still ends them. The calling workflow stays healthy
# meanwhile and says in its current details what it waits for.
CRITICAL_WRITE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
)
CRITICAL_WRITE: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=10),
    "retry_policy": CRITICAL_WRITE_RETRY,
}

# Business metrics recorded at a flow's end (a local activity: one marker event). The store
# dedupes by key, so retries are safe; past this budget (a database outage) the flow ends
# without them rather than wait on the database: the path says "metrics not recorded", and
# the figures for that flow are missing from the aggregates (a known, documented gap).
METRICS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=5),
    "schedule_to_close_timeout": timedelta(seconds=10),
    # Backoffs over a second wait on a workflow timer: a database outage must not hold the
    # workflow task open (and heartbeating) for the whole two minutes.
    "local_retry_threshold": timedelta(seconds=1),
    # Bounded by attempts too (about 6 s of backoff): a local activity whose backoff waits on
    # a timer is not reliably held by its schedule-to-close (see BACKOFFICE_LOCAL).
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=6,
    ),
}

# The alert's hot path runs its back-office writes as local activities: no activity task
# round trip and one marker per workflow task instead of three events per call. The budget
# is short on purpose; past it the same call (same idempotency key) goes out as a regular
# activity with the whole BACKOFFICE budget (`local_first`), so a long outage still waits
# on the server, not in the worker. Backoffs over a second wait on a workflow timer.
# The budget is counted in attempts (5, about 8 s): a local activity whose backoff waits
# on a timer starts its schedule-to-close clock again (measured: an endless CRM outage
# retried for hours under a 20 s schedule-to-close), so only the attempt count bounds it.
BACKOFFICE_LOCAL: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=10),
    "schedule_to_close_timeout": timedelta(seconds=20),
    "local_retry_threshold": timedelta(seconds=1),
    "retry_policy": RetryPolicy(
        initial_interval=BACKOFFICE_RETRY.initial_interval,
        backoff_coefficient=BACKOFFICE_RETRY.backoff_coefficient,
        maximum_interval=BACKOFFICE_RETRY.maximum_interval,
        maximum_attempts=5,
    ),
}

# Preparing an alert in one local activity (rules, customer, conversation). Past this
# budget the alert prepares step by step, each step with its own budget (LOCAL_CALL and
# QUICK), so a CRM outage still degrades the alert exactly as before.
PREPARE_ALERT: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=15),
    "schedule_to_close_timeout": timedelta(seconds=20),
    "local_retry_threshold": timedelta(seconds=1),
    # Bounded by attempts (about 3 s), for the reason given at BACKOFFICE_LOCAL.
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=5,
    ),
}
