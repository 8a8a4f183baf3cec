"""`python -m fiflow.sandbox`: serve the sandbox with uvicorn."""

from __future__ import annotations

import sys

import uvicorn

from fiflow.sandbox.app import create_app
from fiflow.sandbox.config import SandboxConfig


def main() -> None:
    """Run the sandbox in the foreground until interrupted."""
    config = SandboxConfig()
    print(f"fiflow sandbox on http://{config.host}:{config.port}", file=sys.stderr, flush=True)
    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        # Logging every request costs more than handling it at benchmark rates.
        access_log=False,
    )


if __name__ == "__main__":
    main()
