"""Feeds: the FI's own transaction data, screened against conditions written as data.

`transactions` is the documented record schema, `expressions` the one rule language (parsed
and type-checked, never evaluated as Python), `windows` the real-time evaluator with its
serialisable per-key window state, `conditions` the versioned rule set. Pure: no I/O here.
"""
