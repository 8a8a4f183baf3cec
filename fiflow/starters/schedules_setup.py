"""Schedules as the last step of `fiflow temporal setup`: `fiflow schedules apply`, on the
namespace setup just prepared.

A schedule's action carries the workflow's input, encoded like every payload: applying needs
fiflow's settings and payload keys, which the namespace steps do not.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import ValidationError
from temporalio.client import Client
from temporalio.envconfig import ClientConfigProfile
from temporalio.service import RPCError, RPCStatusCode

from fiflow.integrations.settings import Settings
from fiflow.starters.cli_support import fail

if TYPE_CHECKING:
    from fiflow.starters.temporal_setup import SetupReport


@dataclass
class ScheduleSetup:
    """Applies (or checks) fiflow's schedules with the process's settings."""

    settings: Settings

    @classmethod
    def from_environment(cls) -> ScheduleSetup:
        """From FIFLOW_* variables; a configuration problem ends the command (exit 2)."""
        from fiflow.integrations.codec import KeyRingError
        from fiflow.integrations.production import production_refusal
        from fiflow.integrations.temporal import payload_codec

        hint = " (or run with --no-schedules)"
        try:
            settings = Settings()
        except ValidationError as exc:
            problems = "; ".join(
                f"FIFLOW_{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}"
                for e in exc.errors(include_input=False)
            )
            fail(f"configuration error: {problems}{hint}")
        except ValueError as exc:
            fail(f"configuration error: {exc}{hint}")
        refusal = production_refusal(settings)
        if refusal:
            fail(refusal + hint)
        try:
            payload_codec(settings)
        except KeyRingError as exc:
            fail(f"configuration error: {exc}{hint}")
        return cls(settings)

    async def connect(self, namespace: str) -> Client:
        """A client on `namespace` with fiflow's data converter (the payload codec)."""
        from fiflow.integrations.temporal import DEFAULT_TARGET, data_converter

        config = dict(ClientConfigProfile.load().to_client_connect_config())
        target = str(config.pop("target_host", None) or DEFAULT_TARGET)
        config["namespace"] = namespace
        return await Client.connect(
            target,
            **config,  # type: ignore[arg-type]
            data_converter=data_converter(self.settings),
        )

    async def run(self, namespace: str, report: SetupReport, *, check_only: bool) -> None:
        """Record each schedule's outcome in `report`: created/updated, or exists/missing."""
        import time

        from fiflow.starters.schedules import apply_schedules, schedules
        from fiflow.starters.temporal_setup import NAMESPACE_CACHE_WAIT_S, _retry

        client = await self.connect(namespace)
        deadline = time.monotonic() + NAMESPACE_CACHE_WAIT_S
        if not check_only:
            # A namespace registered a moment ago may not be in every frontend's cache yet.
            applied = await _retry(
                functools.partial(apply_schedules, client, self.settings), deadline
            )
            report.schedules = {a.schedule_id: a.outcome for a in applied}
            return
        for schedule_id in schedules(self.settings):
            try:
                await client.get_schedule_handle(schedule_id).describe()
                report.schedules[schedule_id] = "exists"
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
                report.schedules[schedule_id] = "missing"
