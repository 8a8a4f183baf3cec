"""Batch screening: the compiled conditions as Polars expressions over a frame of transactions.

The same AST the real-time evaluator walks (fiflow.domain.feeds) compiles here to Polars
expressions, so a file of transactions is screened column-wise with no per-row Python on the
hot path. Windowed aggregates are rolling sums by occurred_at within each card or customer,
with the window semantics of fiflow.domain.feeds.windows:

- rows are ordered by (occurred_at in UTC, transaction_id);
- a window `within D` over row t holds the key's rows with occurred_at in [t - D, t]
  (both ends inclusive; t itself included), minus rows at t's very instant that come after
  t by transaction_id (a stream would not have seen them yet).

Numbers are exact: amounts (and every number a condition compares) are integers of
1/10,000 of a unit (`AMOUNT_SCALE`), counts are scaled the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC
from decimal import Decimal
from typing import Any

import polars as pl

from fiflow.domain.feeds.conditions import CompiledRules
from fiflow.domain.feeds.expressions import (
    Aggregate,
    And,
    Compare,
    FieldRef,
    InList,
    Literal,
    Node,
    Not,
    Or,
    Per,
    Value,
)
from fiflow.domain.feeds.transactions import AMOUNT_SCALE, FeedSettings, Transaction

KEYS: dict[Per, list[str]] = {"card": ["customer_id", "card_last4"], "customer": ["customer_id"]}
STRING_COLUMNS = ("transaction_id", "customer_id", "card_last4", "currency", "merchant", "mcc")
REQUIRED = (*STRING_COLUMNS, "amount", "country", "card_present", "status", "occurred_at")
TIME = pl.Datetime("us", "UTC")
MATCHES_SCHEMA = {"transaction_id": pl.String, "condition_id": pl.String}


def transactions_frame(transactions: Iterable[Transaction]) -> pl.DataFrame:
    """A screening frame from validated transactions (amounts as exact decimal strings)."""
    rows = [
        {
            **t.model_dump(mode="python", exclude={"amount", "occurred_at", "status"}),
            "amount": str(t.amount),
            "status": t.status.value,
            "occurred_at": t.instant,
        }
        for t in transactions
    ]
    schema: dict[str, Any] = {
        **{c: pl.String for c in STRING_COLUMNS},
        "amount": pl.String,
        "home_currency": pl.String,
        "country": pl.String,
        "card_present": pl.Boolean,
        "status": pl.String,
        "occurred_at": TIME,
    }
    return pl.DataFrame(rows, schema=schema)


def _amount_units(column: pl.Expr) -> pl.Expr:
    """Decimal text ("-12.5") to exact integer units of 1/10,000."""
    parts = column.str.extract_groups(r"^(-?)(\d+)(?:\.(\d{1,4}))?$")
    whole = parts.struct.field("2").cast(pl.Int64)
    frac = parts.struct.field("3").fill_null("").str.pad_end(4, "0").cast(pl.Int64)
    sign = pl.when(parts.struct.field("1") == "-").then(-1).otherwise(1)
    return sign * (whole * AMOUNT_SCALE + frac)


def prepare(frame: pl.DataFrame) -> pl.DataFrame:
    """Check and normalise a frame: UTC microsecond times, exact amounts, screening order."""
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"transaction frame lacks column(s): {', '.join(missing)}")
    time_type = frame.schema["occurred_at"]
    if not isinstance(time_type, pl.Datetime) or time_type.time_zone is None:
        raise ValueError("occurred_at must be a time-zone-aware datetime column")
    if frame.schema["amount"].is_float():
        raise ValueError("amount must be exact (decimal or text), not a float")
    if "home_currency" not in frame.columns:
        frame = frame.with_columns(home_currency=pl.lit(None, pl.String))
    frame = frame.with_columns(
        pl.col("occurred_at").dt.convert_time_zone("UTC").dt.cast_time_unit("us"),
        amount_units=_amount_units(pl.col("amount").cast(pl.String)),
    )
    nulls = [c for c in (*REQUIRED, "amount_units") if frame[c].null_count()]
    if nulls:
        raise ValueError(f"transaction frame has missing or malformed values in: {nulls}")
    if frame["transaction_id"].n_unique() != frame.height:
        raise ValueError("transaction_id must be unique within a frame")
    return frame.sort("occurred_at", "transaction_id")


def _literal(value: Value) -> pl.Expr:
    if isinstance(value, Decimal):
        return pl.lit(int(value * AMOUNT_SCALE), pl.Int64)
    if isinstance(value, bool):
        return pl.lit(value, pl.Boolean)
    if isinstance(value, str):
        return pl.lit(value, pl.String)
    return pl.lit(value.astimezone(UTC), TIME)


def _field(name: str, settings: FeedSettings) -> pl.Expr:
    if name == "amount":
        return pl.col("amount_units")
    if name == "international":
        return pl.col("country") != settings.home_country
    if name == "foreign_currency":
        return pl.col("currency") != pl.coalesce(
            pl.col("home_currency"), pl.lit(settings.home_currency)
        )
    return pl.col(name)


def to_polars(node: Node, settings: FeedSettings, columns: dict[Aggregate, str]) -> pl.Expr:
    """One node as a Polars expression; aggregates read their precomputed columns."""
    if isinstance(node, Literal):
        return _literal(node.value)
    if isinstance(node, FieldRef):
        return _field(node.name, settings)
    if isinstance(node, Aggregate):
        return pl.col(columns[node])
    if isinstance(node, Not):
        return ~to_polars(node.part, settings, columns)
    if isinstance(node, And | Or):
        parts = [to_polars(p, settings, columns) for p in node.parts]
        return pl.all_horizontal(parts) if isinstance(node, And) else pl.any_horizontal(parts)
    if isinstance(node, InList):
        operand = to_polars(node.operand, settings, columns)
        values = [int(v * AMOUNT_SCALE) if isinstance(v, Decimal) else v for v in node.values]
        found = operand.is_in(pl.lit(pl.Series(values)).implode())
        return ~found if node.negated else found
    assert isinstance(node, Compare)
    left = to_polars(node.left, settings, columns)
    right = to_polars(node.right, settings, columns)
    return {
        "=": left.eq,
        "!=": left.ne,
        "<": left.lt,
        "<=": left.le,
        ">": left.gt,
        ">=": left.ge,
    }[node.op](right)


def _with_aggregate(
    frame: pl.DataFrame, agg: Aggregate, name: str, settings: FeedSettings
) -> pl.DataFrame:
    """Adds the aggregate's value per row as column `name` (frame in screening order)."""
    if agg.function == "sum":
        value = to_polars(agg.arg, settings, {})
        if agg.where is not None:
            value = pl.when(to_polars(agg.where, settings, {})).then(value).otherwise(0)
    else:
        value = pl.when(to_polars(agg.arg, settings, {})).then(AMOUNT_SCALE).otherwise(0)
    keys = KEYS[agg.per]
    same_instant = [*keys, "occurred_at"]
    v = pl.col("__v")
    window = v.rolling_sum_by("occurred_at", window_size=agg.within, closed="both").over(keys)
    # Rows at the same instant that sort after this one have not been seen by a stream yet.
    later_same_instant = v.sum().over(same_instant) - v.cum_sum().over(same_instant)
    total = window - later_same_instant
    result = total > 0 if agg.function == "exists" else total
    return frame.with_columns(__v=value.cast(pl.Int64)).with_columns(result.alias(name)).drop("__v")


def screen(frame: pl.DataFrame, rules: CompiledRules) -> pl.DataFrame:
    """Every (transaction_id, condition_id) match of the rules over a frame of transactions."""
    if frame.is_empty():
        return pl.DataFrame(schema=MATCHES_SCHEMA)
    data = prepare(frame)
    columns: dict[Aggregate, str] = {}
    for _, compiled in rules.conditions:
        for agg in compiled.windows:
            if agg not in columns:
                columns[agg] = f"__agg{len(columns)}"
                data = _with_aggregate(data, agg, columns[agg], compiled.settings)
    outcomes = [
        to_polars(compiled.root, compiled.settings, columns)
        .fill_null(False)
        .alias(f"__c:{condition.id}")
        for condition, compiled in rules.conditions
    ]
    flags = data.select("transaction_id", *outcomes)
    return (
        flags.unpivot(index="transaction_id", variable_name="condition_id", value_name="hit")
        .filter(pl.col("hit"))
        .select("transaction_id", pl.col("condition_id").str.strip_prefix("__c:"))
    )


def screen_matches(frame: pl.DataFrame, rules: CompiledRules) -> set[tuple[str, str]]:
    """The matches as a set of (transaction_id, condition_id)."""
    return {(t, c) for t, c in screen(frame, rules).iter_rows()}
