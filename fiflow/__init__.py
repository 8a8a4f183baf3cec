"""fiflow: orchestration of a financial institution's customer processes on Temporal."""
