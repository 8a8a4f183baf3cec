"""When a follow-up may contact a customer: quiet hours, FI business hours, attempt caps.

Wall-clock rules are evaluated in each party's own time zone with zoneinfo, so a rule
written as "not before 08:00" means 08:00 on both sides of a daylight-saving change.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from fiflow.domain.triggers import WEEKDAYS, FollowUpRules, Hours, zone, zone_or_utc

# A window that never opens (say, business days that are all inside quiet hours) must not
# loop forever: past this horizon there is no contact time.
HORIZON = timedelta(days=21)
MAX_JUMPS = 200


def _next_at(
    t: datetime, tz: ZoneInfo, clock: time, days_ok: Callable[[datetime], bool]
) -> datetime:
    """The first moment after `t` when the local clock in `tz` shows `clock` on an allowed day."""
    local = t.astimezone(tz)
    for offset in range(0, 9):
        day = local.date() + timedelta(days=offset)
        candidate = datetime.combine(day, clock, tzinfo=tz)
        if candidate > t and days_ok(candidate):
            return candidate
    return t + HORIZON


def next_business_start(t: datetime, hours: Hours, tz: ZoneInfo) -> datetime:
    """When the business-hours span next opens after `t`."""
    return _next_at(t, tz, hours.start, lambda c: WEEKDAYS[c.weekday()] in hours.days)


def next_quiet_end(t: datetime, hours: Hours, tz: ZoneInfo) -> datetime:
    """When the quiet span that `t` is in ends."""
    return _next_at(t, tz, hours.end, lambda c: True)


def next_contact_time(
    now: datetime, customer_zone: str, rules: FollowUpRules, attempts: list[datetime]
) -> datetime | None:
    """The earliest moment at or after `now` a contact is allowed; None within the horizon."""
    t = now
    if len(attempts) >= rules.max_attempts:
        # At most max_attempts in any attempt_window: wait until the oldest counted one ages out.
        oldest_counted = sorted(attempts)[-rules.max_attempts]
        t = max(t, oldest_counted + rules.attempt_window)
    customer_tz, fi_tz = zone_or_utc(customer_zone), zone(rules.fi_timezone)
    for _ in range(MAX_JUMPS):
        if t - now > HORIZON:
            return None
        quiet, business = rules.quiet_hours, rules.business_hours
        if quiet is not None and quiet.contains(t.astimezone(customer_tz)):
            t = next_quiet_end(t, quiet, customer_tz)
        elif business is not None and not business.contains(t.astimezone(fi_tz)):
            t = next_business_start(t, business, fi_tz)
        else:
            return t
    return None
