"""A batch worker in its own process, for the test that kills one mid-file (SIGKILL: no
graceful shutdown, no activity completion, exactly like a crashed host).

Configured by the usual FIFLOW_* variables and TEMPORAL_ADDRESS; prints `ready` once polling.
"""

from __future__ import annotations

import asyncio
import os
import sys

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from fiflow.integrations.settings import Settings
from tests.workflows.batch_harness import batch_harness


async def main() -> None:
    """Poll the test's task queue until killed."""
    client = await Client.connect(
        os.environ["TEMPORAL_ADDRESS"], data_converter=pydantic_data_converter
    )
    harness = batch_harness(client, Settings())
    async with harness.worker():
        print("ready", flush=True)
        sys.stdout.flush()
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
