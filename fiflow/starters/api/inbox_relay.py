"""Inbound messages queued while Temporal was down: what they hold, and the relay delivering them.

The API queues an inbound SMS or push reply in the inbox (fiflow.integrations.inbox) when
Temporal cannot take it, or when older messages of the same address still wait there. Every
API process runs one relay (started in the app's lifespan): about every second, while the
inbox holds pending messages, it claims addresses, delivers their messages oldest first
through the same functions the endpoints use, and marks each one delivered. While Temporal is
still down it stops at the first failure and backs off (doubling, up to a bound).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from fiflow.domain.alerts import ReplyOutcome
from fiflow.integrations.inbox import Inbox, InboxMessage, group_by_address
from fiflow.integrations.settings import Settings
from fiflow.starters.alerts_client import alert_view, deliver_push_reply, deliver_sms
from fiflow.starters.api.errors import UNAVAILABLE, ApiError
from fiflow.starters.workflow_views import Lookup

if TYPE_CHECKING:
    from fiflow.starters.api.state import ApiState

log = logging.getLogger("fiflow.api.inbox")

T = TypeVar("T")

# A relay holds an address this long at most; a crashed relay's addresses free up after it.
LEASE = timedelta(seconds=60)
PURGE_EVERY_S = 3600.0


class Settled(Exception):
    """The message cannot be applied any more (its alert closed); it leaves the inbox."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def temporal_unavailable(exc: BaseException) -> bool:
    """Whether a delivery failed only because Temporal could not be reached in time."""
    if isinstance(exc, RPCError):
        return exc.status in UNAVAILABLE
    if isinstance(exc, ApiError):
        return exc.code == "temporal_unavailable"
    return isinstance(exc, TimeoutError | ConnectionError)


async def bounded(call: Awaitable[T], settings: Settings) -> T:
    """A Temporal call given up on after the inbox's delivery timeout (TimeoutError)."""
    return await asyncio.wait_for(call, settings.inbox_deliver_timeout_seconds)


def sms_content(sender: str, body: str, received_at: datetime) -> dict[str, Any]:
    """What the inbox keeps (sealed) of an inbound SMS."""
    return {"sender": sender, "body": body, "received_at": received_at.isoformat()}


def push_content(
    alert_id: str, action: str, device_id: str, reply_id: str, received_at: datetime
) -> dict[str, Any]:
    """What the inbox keeps (sealed) of a push reply."""
    return {
        "alert_id": alert_id,
        "action": action,
        "device_id": device_id,
        "reply_id": reply_id,
        "received_at": received_at.isoformat(),
    }


async def deliver_queued(client: Client, settings: Settings, message: InboxMessage) -> None:
    """Deliver one queued message as its endpoint would have; Settled if it no longer applies."""
    content = message.content
    received_at = datetime.fromisoformat(content["received_at"])
    if message.channel == "sms":
        await bounded(
            deliver_sms(
                client,
                settings,
                sender=content["sender"],
                body=content["body"],
                message_id=message.message_id,
                received_at=received_at,
            ),
            settings,
        )
        return
    # A push reply was queued without the endpoint's checks on the alert (Temporal was
    # down): they run now, and a reply to an alert that closed meanwhile is settled unsent.
    alert_id = content["alert_id"]
    view = await bounded(alert_view(client, alert_id), settings)
    if view.lookup is Lookup.NOT_FOUND:
        raise Settled("alert_not_found")
    if view.status is None or content["device_id"] not in view.status.pushed_to:
        raise Settled("not_pushed_to_device")
    earlier = view.status.reply
    if view.lookup is Lookup.FINISHED or (earlier and earlier.message_id != message.message_id):
        raise Settled("alert_closed")
    try:
        await bounded(
            deliver_push_reply(
                client, alert_id, ReplyOutcome(content["action"]), message.message_id, received_at
            ),
            settings,
        )
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:  # it finished since the query
            raise Settled("alert_closed") from None
        raise


class InboxRelay:
    """One API process's relay loop."""

    def __init__(
        self,
        inbox: Callable[[], Inbox],
        client: Callable[[], Awaitable[Client]],
        settings: Settings,
    ) -> None:
        self._inbox = inbox
        self._client = client
        self._settings = settings
        self._last_purge = 0.0

    @classmethod
    def for_state(cls, state: ApiState) -> InboxRelay:
        """The relay of an API process."""
        return cls(state.inbox, state.client, state.settings)

    async def run(self) -> None:
        """Relay until cancelled, backing off while Temporal (or the database) is down."""
        interval = self._settings.inbox_relay_interval_seconds
        delay = interval
        while True:
            await asyncio.sleep(delay)
            try:
                ok = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The type only: a driver's message can quote the sealed payload or a number.
                log.warning("inbox relay round failed: %s", type(exc).__name__)
                ok = False
            delay = (
                interval if ok else min(delay * 2, self._settings.inbox_relay_max_backoff_seconds)
            )

    async def run_once(self) -> bool:
        """One round: deliver what is pending; False when Temporal or the database was down."""
        inbox = self._inbox()
        try:
            await self._maybe_purge(inbox)
            if not await asyncio.to_thread(inbox.pending_count):
                return True
            claimed = await asyncio.to_thread(inbox.claim, datetime.now(UTC), LEASE)
        except SQLAlchemyError as exc:
            log.warning("inbox unavailable: %s", type(exc).__name__)
            return False
        if not claimed:
            return True
        try:
            client = await bounded(self._client(), self._settings)
        except Exception as exc:
            if not temporal_unavailable(exc):
                raise
            await asyncio.to_thread(inbox.release, [m.id for m in claimed])
            return False
        results = await asyncio.gather(
            *(
                self._deliver_address(inbox, client, messages)
                for messages in group_by_address(claimed).values()
            )
        )
        return all(results)

    async def _deliver_address(
        self, inbox: Inbox, client: Client, messages: list[InboxMessage]
    ) -> bool:
        for n, message in enumerate(messages):
            try:
                await deliver_queued(client, self._settings, message)
            except Settled as settled:
                log.info("queued %s message %s settled: %s", message.channel, message.id,
                         settled.reason)  # fmt: skip
                await asyncio.to_thread(
                    inbox.mark_delivered, message.id, datetime.now(UTC), settled.reason
                )
                continue
            except Exception as exc:
                unavailable = temporal_unavailable(exc)
                name = exc.status.name if isinstance(exc, RPCError) else type(exc).__name__
                if unavailable:
                    log.info("inbox relay: temporal still unavailable (%s)", name)
                else:
                    # The order per address is kept: the address waits behind this message.
                    log.error("queued %s message %s failed: %s", message.channel, message.id,
                              name)  # fmt: skip
                await asyncio.to_thread(inbox.record_failure, message.id, name)
                await asyncio.to_thread(inbox.release, [m.id for m in messages[n:]])
                return not unavailable
            await asyncio.to_thread(inbox.mark_delivered, message.id, datetime.now(UTC))
            log.info("queued %s message %s delivered", message.channel, message.id)
            # A long backlog must not outlive its lease: another relay would then take the
            # address and deliver its later messages ahead of the rest of these.
            rest = [m.id for m in messages[n + 1 :]]
            await asyncio.to_thread(inbox.renew, rest, datetime.now(UTC) + LEASE)
        return True

    async def _maybe_purge(self, inbox: Inbox) -> None:
        now = asyncio.get_running_loop().time()
        if self._last_purge and now - self._last_purge < PURGE_EVERY_S:
            return
        self._last_purge = now
        cutoff = datetime.now(UTC) - timedelta(days=self._settings.inbox_retention_days)
        purged = await asyncio.to_thread(inbox.purge, cutoff)
        if purged:
            log.info("inbox: purged %d messages delivered before %s", purged, cutoff.isoformat())


def start_relay(state: ApiState) -> asyncio.Task[None]:
    """Start the process's relay in the running loop."""
    return asyncio.create_task(InboxRelay.for_state(state).run(), name="fiflow-inbox-relay")
