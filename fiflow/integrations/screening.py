"""Batch screening: the compiled conditions as Polars expressions over a frame of transactions.

The same AST the real-time evaluator walks (fiflow.domain.feeds) compiles here to Polars
expressions, so a file of transactions is screened column-wise with no per-row Python on the
hot path. Windowed aggregates are differences of prefix sums within each card or customer
(`_with_windows`), with the window semantics of fiflow.domain.feeds.windows:

- rows are ordered by (occurred_at in UTC, transaction_id);
- a window `within D` over row t holds the key's rows with occurred_at in [t - D, t]
  (both ends inclusive; t itself included), minus rows at t's very instant that come after
  t by transaction_id (a stream would not have seen them yet).

Numbers are exact: amounts (and every number a condition compares) are integers of
1/10,000 of a unit (`AMOUNT_SCALE`), counts are scaled the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC
from decimal import Decimal
from typing import Any

import polars as pl

from fiflow.domain.feeds.conditions import CompiledRules, Starts
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
from fiflow.domain.feeds.matches import Match, MatchSource
from fiflow.domain.feeds.preferences import (
    KIND_ORDER,
    TEMPLATES,
    AlertPreferences,
    BalanceRecord,
    PreferenceChannel,
    PreferenceKind,
    kind_form,
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


def to_polars(
    node: Node,
    settings: FeedSettings,
    columns: dict[Aggregate, str],
    params: Mapping[int, pl.Expr] | None = None,
) -> pl.Expr:
    """One node as a Polars expression; aggregates read their precomputed columns.

    `params` maps a preference template's slots (node positions) to the columns holding
    each row's value: a number literal reads the column, an `in` list tests membership in
    the row's list.
    """
    params = params or {}
    if isinstance(node, Literal):
        if node.position in params:
            return params[node.position]
        return _literal(node.value)
    if isinstance(node, FieldRef):
        return _field(node.name, settings)
    if isinstance(node, Aggregate):
        return pl.col(columns[node])
    if isinstance(node, Not):
        return ~to_polars(node.part, settings, columns, params)
    if isinstance(node, And | Or):
        parts = [to_polars(p, settings, columns, params) for p in node.parts]
        return pl.all_horizontal(parts) if isinstance(node, And) else pl.any_horizontal(parts)
    if isinstance(node, InList):
        operand = to_polars(node.operand, settings, columns, params)
        if node.position in params:
            found = operand.is_in(params[node.position])
        else:
            values = [int(v * AMOUNT_SCALE) if isinstance(v, Decimal) else v for v in node.values]
            found = operand.is_in(pl.lit(pl.Series(values)).implode())
        return ~found if node.negated else found
    assert isinstance(node, Compare)
    left = to_polars(node.left, settings, columns, params)
    right = to_polars(node.right, settings, columns, params)
    return {
        "=": left.eq,
        "!=": left.ne,
        "<": left.lt,
        "<=": left.le,
        ">": left.gt,
        ">=": left.ge,
    }[node.op](right)


def _aggregate_value(agg: Aggregate, settings: FeedSettings) -> pl.Expr:
    """What one row adds to an aggregate: its amount (sum) or 1 scaled (count, exists)."""
    if agg.function == "sum":
        value = to_polars(agg.arg, settings, {})
        if agg.where is not None:
            value = pl.when(to_polars(agg.where, settings, {})).then(value).otherwise(0)
    else:
        value = pl.when(to_polars(agg.arg, settings, {})).then(AMOUNT_SCALE).otherwise(0)
    return value.fill_null(0).cast(pl.Int64)


def _key_order(data: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Row positions grouped by key, each key's rows in screening order, keys numbered.

    Sorting by a 64-bit hash of the key (stable, so screening order holds within a key) is
    several times faster than sorting by the key's strings. Two keys that share a hash would
    interleave; that shows as a key change without a hash change, and then (about once in
    10^7 files of a million keys) the exact sort by the strings is used instead.
    """
    work = data.select(*keys).with_row_index("__pos").with_columns(__h=pl.struct(keys).hash())
    work = work.sort("__h", maintain_order=True)
    key_changed = pl.any_horizontal([pl.col(k) != pl.col(k).shift(1) for k in keys])
    flags = work.select(
        __kc=key_changed.fill_null(True), __hc=(pl.col("__h") != pl.col("__h").shift(1))
    )
    if (flags["__kc"] & ~flags["__hc"].fill_null(True)).any():
        work = work.sort([*keys, "__pos"])
        flags = work.select(__kc=key_changed.fill_null(True))
    return work.select("__pos", __key=flags["__kc"].cum_sum().cast(pl.Int64))


def _with_windows(
    data: pl.DataFrame, aggregates: dict[Aggregate, str], per: Per, settings: FeedSettings
) -> pl.DataFrame:
    """Adds each aggregate over one kind of key as a column (data in screening order).

    Rows are grouped by key, each key's rows in screening order, and every aggregate is a
    difference of prefix sums: the sum up to this row (so later rows at the same instant are
    not in it) less the sum before the key's first row at or after `occurred_at - within`.
    That row is found by a binary search over one sorted number per row, the key's number
    times a span longer than the file plus the window, plus the row's time: a window never
    reaches into the previous key.
    """
    order = _key_order(data, KEYS[per])
    values = data.select(
        __t=pl.col("occurred_at").dt.epoch("us"),
        **{name: _aggregate_value(agg, settings) for agg, name in aggregates.items()},
    )
    work = pl.concat([order, values[order["__pos"]]], how="horizontal")
    t0, t1 = work.select(pl.col("__t").min().alias("lo"), pl.col("__t").max().alias("hi")).row(0)
    longest = max(int(a.within.total_seconds() * 1_000_000) for a in aggregates)
    span = t1 - t0 + longest + 1
    keys = work.height and int(work.select(pl.col("__key").max()).item()) + 1
    if keys * span >= 2**62:
        raise ValueError("the file spans too long a time for its number of cards and customers")
    position = pl.col("__key") * span + (pl.col("__t") - t0)
    work = work.with_columns(__g=position)
    found = {}
    for agg, name in aggregates.items():
        within = int(agg.within.total_seconds() * 1_000_000)
        first = work["__g"].search_sorted(work["__g"] - within, side="left")
        upto = work[name].cum_sum()
        before = upto - work[name]
        total = upto - before.gather(first)
        found[name] = total > 0 if agg.function == "exists" else total
    windows = pl.DataFrame({"__pos": work["__pos"], **found}).sort("__pos")
    return data.with_columns(windows.drop("__pos"))


def screen(frame: pl.DataFrame, rules: CompiledRules) -> pl.DataFrame:
    """Every (transaction_id, condition_id) match of the rules over a frame of transactions."""
    if frame.is_empty():
        return pl.DataFrame(schema=MATCHES_SCHEMA)
    data = prepare(frame)
    columns: dict[Aggregate, str] = {}
    for _, compiled in rules.conditions:
        for agg in compiled.windows:
            columns.setdefault(agg, f"__agg{len(columns)}")
    for per in KEYS:
        over = {agg: name for agg, name in columns.items() if agg.per == per}
        if over:
            # One rule set, one home country and currency: every condition has the same.
            data = _with_windows(data, over, per, rules.conditions[0][1].settings)
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


# --- customers' alert preferences ---------------------------------------------------------------

# The long-format preferences frame: one row per customer and kind, parameters as columns
# (null where a kind has none). Prefixed so they never meet a transaction's own columns.
PREFERENCES_SCHEMA: dict[str, Any] = {
    "customer_id": pl.String,
    "kind": pl.String,
    "p_amount": pl.Int64,  # amount_over, balance_below: units of 1/10,000
    "p_values": pl.List(pl.String),  # merchant_category: MCCs; card_activity: last fours
    "p_currency": pl.String,  # balance_below: only this currency (null: any)
    "channel": pl.String,  # sms, push; null: the customer's preferred channel
    "quiet_hours_ok": pl.Boolean,
}
# Which column fills each template slot.
SLOT_COLUMNS = {"amount": "p_amount", "mccs": "p_values", "cards": "p_values"}
PREFERENCE_MATCHES_SCHEMA: dict[str, Any] = {
    "transaction_id": pl.String,
    "customer_id": pl.String,
    "rule_id": pl.String,
    "alert_type": pl.String,
    "channel": pl.String,
    "quiet_hours_ok": pl.Boolean,
}
BALANCE_MATCHES_SCHEMA: dict[str, Any] = {
    "customer_id": pl.String,
    "account_id": pl.String,
    "as_of": TIME,
    "rule_id": pl.String,
    "alert_type": pl.String,
    "channel": pl.String,
    "quiet_hours_ok": pl.Boolean,
}
BALANCE_REQUIRED = ("customer_id", "account_id", "balance", "currency", "as_of")


def preferences_frame(
    preferences: Mapping[str, AlertPreferences] | Iterable[tuple[str, AlertPreferences]],
) -> pl.DataFrame:
    """The long-format preferences frame of many customers (customer_id -> preferences)."""
    items = preferences.items() if isinstance(preferences, Mapping) else preferences
    cols: dict[str, list[Any]] = {name: [] for name in PREFERENCES_SCHEMA}
    for customer_id, prefs in items:
        for entry in prefs.preferences:
            amount = getattr(entry, "amount", None)
            values = getattr(entry, "mccs", None) or getattr(entry, "cards", None)
            cols["customer_id"].append(customer_id)
            cols["kind"].append(entry.kind)
            cols["p_amount"].append(None if amount is None else int(amount * AMOUNT_SCALE))
            cols["p_values"].append(values)
            cols["p_currency"].append(getattr(entry, "currency", None))
            cols["channel"].append(
                None if entry.channel is PreferenceChannel.PREFERRED else entry.channel.value
            )
            cols["quiet_hours_ok"].append(entry.quiet_hours_ok)
    return pl.DataFrame(cols, schema=PREFERENCES_SCHEMA)


def _check_preferences(preferences: pl.DataFrame) -> None:
    missing = [c for c in PREFERENCES_SCHEMA if c not in preferences.columns]
    if missing:
        raise ValueError(f"preferences frame lacks column(s): {', '.join(missing)}")
    if preferences.select(pl.struct("customer_id", "kind").is_duplicated().any()).item():
        raise ValueError("a preferences frame holds at most one row per customer and kind")


def _match_columns(kind: str) -> list[pl.Expr]:
    return [
        pl.lit(kind).alias("rule_id"),
        pl.lit(f"pref_{kind}").alias("alert_type"),
        pl.col("channel"),
        pl.col("quiet_hours_ok"),
    ]


def screen_preferences(
    frame: pl.DataFrame, preferences: pl.DataFrame, settings: FeedSettings
) -> pl.DataFrame:
    """Every transaction's matches of its customer's preferences (one row per match).

    Columns: transaction_id, customer_id, rule_id (the kind), alert_type, channel (null:
    the customer's preferred one), quiet_hours_ok; ordered by transaction (screening order)
    and kind. Each kind is one expression (its template, compiled once) over the
    transactions joined to that kind's preference rows: no per-customer expressions.
    """
    if frame.is_empty() or preferences.is_empty():
        return pl.DataFrame(schema=PREFERENCE_MATCHES_SCHEMA)
    _check_preferences(preferences)
    data = prepare(frame).with_row_index("__order").lazy()
    prefs = preferences.lazy()
    found = []
    for kind in TEMPLATES:
        form = kind_form(kind, settings)
        params = {position: pl.col(SLOT_COLUMNS[name]) for name, position in form.slots}
        condition = to_polars(form.condition.root, settings, {}, params).fill_null(False)
        rows = prefs.filter(pl.col("kind") == kind.value).drop("kind", "p_currency")
        found.append(
            data.join(rows, on="customer_id", how="inner")
            .filter(condition)
            .select(
                "__order",
                "transaction_id",
                "customer_id",
                *_match_columns(kind.value),
                pl.lit(KIND_ORDER[kind.value]).alias("__rank"),
            )
        )
    return (
        pl.concat(found)
        .sort("__order", "__rank")
        .drop("__order", "__rank")
        .collect()
        .cast(PREFERENCE_MATCHES_SCHEMA)  # type: ignore[arg-type]
    )


def screen_preference_matches(
    frame: pl.DataFrame, preferences: pl.DataFrame, settings: FeedSettings
) -> set[tuple[str, str]]:
    """The preference matches as a set of (transaction_id, kind)."""
    result = screen_preferences(frame, preferences, settings)
    return {(t, k) for t, k in result.select("transaction_id", "rule_id").iter_rows()}


def balances_frame(records: Iterable[BalanceRecord]) -> pl.DataFrame:
    """A balance frame from validated records (balances as exact decimal strings)."""
    rows = [
        {
            "customer_id": r.customer_id,
            "account_id": r.account_id,
            "balance": format(r.balance, "f"),
            "currency": r.currency,
            "as_of": r.as_of.astimezone(UTC),
        }
        for r in records
    ]
    schema: dict[str, Any] = {
        "customer_id": pl.String,
        "account_id": pl.String,
        "balance": pl.String,
        "currency": pl.String,
        "as_of": TIME,
    }
    return pl.DataFrame(rows, schema=schema)


def screen_balances(frame: pl.DataFrame, preferences: pl.DataFrame) -> pl.DataFrame:
    """Every balance record below its customer's balance_below amount (one row per match).

    The frame holds settlement/balance records (customer_id, account_id, balance as exact
    decimal text, currency, as_of); the result names each record by customer_id,
    account_id and as_of, in the frame's order. Below means strictly below, and only in
    the preference's currency when it names one (fiflow.domain.feeds.preferences).
    """
    if frame.is_empty() or preferences.is_empty():
        return pl.DataFrame(schema=BALANCE_MATCHES_SCHEMA)
    _check_preferences(preferences)
    missing = [c for c in BALANCE_REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"balance frame lacks column(s): {', '.join(missing)}")
    if frame.schema["balance"].is_float():
        raise ValueError("balance must be exact (decimal or text), not a float")
    data = frame.select(
        *BALANCE_REQUIRED[:2],
        "currency",
        pl.col("as_of").dt.convert_time_zone("UTC").dt.cast_time_unit("us"),
        balance_units=_amount_units(pl.col("balance").cast(pl.String)),
    )
    nulls = [c for c in data.columns if data[c].null_count()]
    if nulls:
        raise ValueError(f"balance frame has missing or malformed values in: {nulls}")
    kind = PreferenceKind.BALANCE_BELOW.value
    rows = preferences.lazy().filter(pl.col("kind") == kind)
    below = (pl.col("balance_units") < pl.col("p_amount")) & (
        pl.col("p_currency").is_null() | (pl.col("p_currency") == pl.col("currency"))
    )
    return (
        data.with_row_index("__order")
        .lazy()
        .join(rows, on="customer_id", how="inner")
        .filter(below)
        .sort("__order")
        .select("customer_id", "account_id", "as_of", *_match_columns(kind))
        .collect()
        .cast(BALANCE_MATCHES_SCHEMA)  # type: ignore[arg-type]
    )


def preference_match(row: Mapping[str, Any]) -> Match:
    """The Match of one result row of screen_preferences or screen_balances."""
    return Match(
        source=MatchSource.PREFERENCE,
        rule_id=row["rule_id"],
        starts=Starts.INFORMATIONAL_ALERT,
        alert_type=row["alert_type"],
        channel=row["channel"],
        quiet_hours_ok=row["quiet_hours_ok"],
    )


def preference_matches_by_transaction(result: pl.DataFrame) -> dict[str, list[Match]]:
    """screen_preferences' rows as each transaction's Matches, in kind order."""
    found: dict[str, list[Match]] = {}
    for row in result.iter_rows(named=True):
        found.setdefault(row["transaction_id"], []).append(preference_match(row))
    return found
