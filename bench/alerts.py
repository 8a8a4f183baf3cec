"""Fraud-alert benchmark: kept as an entry point; the code is the `bench/alertbench` package.

    .venv/bin/python bench/alerts.py --rate 10 --duration 60   # one rate, alerts only
    .venv/bin/python bench/alerts.py                           # floor and alert knees

Same as `python -m bench.alertbench ...` from the repository root; see bench/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.alertbench.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
