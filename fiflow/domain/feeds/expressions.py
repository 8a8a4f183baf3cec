"""The condition language: a tokenizer and a recursive-descent parser to a typed AST.

Conditions (the FI's) and alert preferences (the customers') are written in this one small
language over the transaction schema (`transactions.FIELDS`). Text is tokenized, parsed and
type-checked here; nothing is ever handed to `eval`. A problem is a `ConditionError` whose
message names it and its position (1-based, in characters).

Grammar (keywords are lower case; `#` is not a comment, there are none)::

    condition  := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := operand [ ("=" | "==" | "!=" | "<" | "<=" | ">" | ">=") operand
                          | ["not"] "in" "[" literal ("," literal)* "]" ]
    operand    := literal | field | setting | aggregate | "(" or_expr ")"
    aggregate  := "count"  "(" or_expr "," window ")"
                | "exists" "(" or_expr "," window ")"
                | "sum"    "(" operand "," window ["," "where" or_expr] ")"
    window     := "within" duration "," "per" ("card" | "customer")
    literal    := number | string | "true" | "false"
    number     := digits ["." digits]            (at most 4 decimal places)
    string     := '"' chars '"' | "'" chars "'"  (backslash escapes the quote and itself)
    duration   := digits ("s" | "m" | "h" | "d")  e.g. 30s 10m 1h; more than 0, at most 24h

Types: `amount` and aggregates' results are numbers; `occurred_at` is a time (compare it with
a string holding an ISO 8601 instant with an offset: "2026-11-25T10:00:00+01:00"); the
other fields are strings or booleans (`transactions.FIELDS`). `home_country` and
`home_currency` stand for the rule set's settings. Comparisons need both sides of one type;
`<`, `<=`, `>`, `>=` only numbers and times; strings compare exactly (case matters).

Aggregates look back over the key's recent transactions (per card or per customer): those
at most `within` before the current one (boundary included), the current one included,
and, at the same instant, only those ordered before it by transaction_id. Inside an
aggregate, fields name the windowed transaction, not the current one. Aggregates do not nest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Literal as TypingLiteral

from fiflow.domain.feeds.transactions import (
    AMOUNT_PLACES,
    FIELD_PATTERNS,
    FIELDS,
    SETTINGS,
    FeedSettings,
    FieldType,
)

MAX_TEXT = 2000
MAX_DEPTH = 40
MAX_LIST = 200
MAX_WINDOW = timedelta(hours=24)

Op = TypingLiteral["=", "!=", "<", "<=", ">", ">="]
Per = TypingLiteral["card", "customer"]
Function = TypingLiteral["count", "exists", "sum"]
Value = Decimal | str | bool | datetime
KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "within", "per", "where"})
FUNCTIONS = ("count", "exists", "sum")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ConditionError(ValueError):
    """A condition that cannot be accepted; the message names the problem and where."""

    def __init__(self, problem: str, position: int):
        super().__init__(f"{problem} (at position {position})")
        self.problem = problem
        self.position = position


# --- tokens -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """One token and the 1-based position of its first character."""

    kind: str  # number, duration, string, name, op, end
    text: str
    position: int
    value: object = None


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<duration>\d+[smhd](?![A-Za-z0-9_]))
  | (?P<number>\d+(?:\.\d+)?(?![A-Za-z0-9_.]))
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|=|<|>|\(|\)|\[|\]|,)
    """,
    re.VERBOSE,
)


def tokenize(text: str) -> list[Token]:
    """Split condition text into tokens, ending with an `end` token."""
    if len(text) > MAX_TEXT:
        raise ConditionError(f"a condition is at most {MAX_TEXT} characters", MAX_TEXT + 1)
    tokens: list[Token] = []
    at = 0
    while at < len(text):
        m = _TOKEN.match(text, at)
        if m is None:
            if text[at] in "\"'":
                raise ConditionError("unterminated string", at + 1)
            raise ConditionError(f"unexpected character {text[at]!r}", at + 1)
        kind = m.lastgroup or ""
        raw = m.group()
        if kind == "string":
            value: object = re.sub(r"\\(.)", r"\1", raw[1:-1])
            tokens.append(Token("string", raw, at + 1, value))
        elif kind == "duration":
            tokens.append(Token("duration", raw, at + 1, int(raw[:-1]) * UNITS[raw[-1]]))
        elif kind != "space":
            tokens.append(Token(kind, raw, at + 1))
        at = m.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


# --- the AST ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    """A constant: number (Decimal), string, boolean or time (an aware UTC datetime)."""

    value: Value
    type: FieldType
    position: int


@dataclass(frozen=True)
class FieldRef:
    """A schema field of the transaction being looked at."""

    name: str
    type: FieldType
    position: int


@dataclass(frozen=True)
class Compare:
    """left <op> right, both of one type."""

    op: Op
    left: Node
    right: Node
    position: int


@dataclass(frozen=True)
class InList:
    """operand [not] in [literals]."""

    operand: Node
    values: tuple[Value, ...]
    negated: bool
    position: int


@dataclass(frozen=True)
class And:
    """All of the parts hold."""

    parts: tuple[Node, ...]
    position: int


@dataclass(frozen=True)
class Or:
    """Any of the parts holds."""

    parts: tuple[Node, ...]
    position: int


@dataclass(frozen=True)
class Not:
    """The part does not hold."""

    part: Node
    position: int


@dataclass(frozen=True)
class Aggregate:
    """count/exists/sum over the key's trailing window.

    For count and exists `arg` is the predicate and `where` is None; for sum `arg` is the
    number summed and `where` an optional predicate (None: every transaction).
    """

    function: Function
    arg: Node
    where: Node | None
    within: timedelta
    per: Per
    position: int


Node = Literal | FieldRef | Compare | InList | And | Or | Not | Aggregate


def type_of(node: Node) -> FieldType:
    """The type of an expression."""
    if isinstance(node, Literal | FieldRef):
        return node.type
    if isinstance(node, Aggregate):
        return "bool" if node.function == "exists" else "number"
    return "bool"


def aggregates(node: Node) -> list[Aggregate]:
    """Every aggregate in an expression, outermost first, without duplicates."""
    found: list[Aggregate] = []

    def walk(n: Node) -> None:
        if isinstance(n, Aggregate):
            if n not in found:
                found.append(n)
        elif isinstance(n, Compare):
            walk(n.left)
            walk(n.right)
        elif isinstance(n, InList):
            walk(n.operand)
        elif isinstance(n, And | Or):
            for p in n.parts:
                walk(p)
        elif isinstance(n, Not):
            walk(n.part)

    walk(node)
    return found


# --- the parser ---------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, settings: FeedSettings):
        self.tokens = tokenize(text)
        self.i = 0
        self.settings = settings
        self.depth = 0
        self.in_aggregate = False

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def at(self, kind: str, text: str | None = None) -> bool:
        tok = self.tok
        return tok.kind == kind and (text is None or tok.text == text)

    def expect(self, kind: str, text: str, what: str) -> Token:
        if not self.at(kind, text):
            raise ConditionError(f"expected {what}, found {describe(self.tok)}", self.tok.position)
        return self.take()

    def parse(self) -> Node:
        node = self.or_expr()
        if not self.at("end"):
            raise ConditionError(
                f"unexpected {describe(self.tok)} after a complete condition", self.tok.position
            )
        return node

    def nested(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ConditionError(f"nested more than {MAX_DEPTH} deep", self.tok.position)

    def or_expr(self) -> Node:
        self.nested()
        first = self.and_expr()
        parts = [first]
        while self.at("name", "or"):
            self.take()
            parts.append(self.and_expr())
        self.depth -= 1
        if len(parts) == 1:
            return first
        for p in parts:
            self.need_bool(p, "`or`")
        return Or(tuple(parts), first_position(first))

    def and_expr(self) -> Node:
        first = self.not_expr()
        parts = [first]
        while self.at("name", "and"):
            self.take()
            parts.append(self.not_expr())
        if len(parts) == 1:
            return first
        for p in parts:
            self.need_bool(p, "`and`")
        return And(tuple(parts), first_position(first))

    def not_expr(self) -> Node:
        if self.at("name", "not"):
            tok = self.take()
            self.nested()
            part = self.not_expr()
            self.depth -= 1
            self.need_bool(part, "`not`")
            return Not(part, tok.position)
        return self.comparison()

    def comparison(self) -> Node:
        left = self.operand()
        if self.at("op") and self.tok.text in ("=", "==", "!=", "<", "<=", ">", ">="):
            op_tok = self.take()
            right = self.operand()
            op: Op = "=" if op_tok.text == "==" else op_tok.text  # type: ignore[assignment]
            return self.check_compare(op, left, right, op_tok.position)
        negated = False
        if self.at("name", "not") and self.tokens[self.i + 1].text == "in":
            self.take()
            negated = True
        if self.at("name", "in"):
            in_tok = self.take()
            return self.in_list(left, negated, in_tok.position)
        if negated:
            raise ConditionError("expected `in` after `not`", self.tok.position)
        return left

    def in_list(self, left: Node, negated: bool, position: int) -> Node:
        kind = type_of(left)
        if kind not in ("number", "string"):
            raise ConditionError(f"`in` needs a number or a string, not a {kind}", position)
        self.expect("op", "[", "`[` after `in`")
        values: list[Value] = []
        while True:
            lit = self.operand()
            if not isinstance(lit, Literal):
                raise ConditionError("a list holds literals only", first_position(lit))
            lit = self.coerce(lit, left)
            values.append(lit.value)
            if len(values) > MAX_LIST:
                raise ConditionError(f"a list holds at most {MAX_LIST} values", lit.position)
            if self.at("op", "]"):
                self.take()
                break
            self.expect("op", ",", "`,` or `]` in a list")
        return InList(left, tuple(values), negated, position)

    def operand(self) -> Node:
        tok = self.tok
        if tok.kind == "op" and tok.text == "(":
            self.take()
            node = self.or_expr()
            self.expect("op", ")", "`)`")
            return node
        if tok.kind == "number":
            self.take()
            try:
                number = Decimal(tok.text)
            except InvalidOperation:  # pragma: no cover - the pattern admits only digits
                raise ConditionError(f"not a number: {tok.text}", tok.position) from None
            if "." in tok.text and len(tok.text.split(".")[1]) > AMOUNT_PLACES:
                raise ConditionError(
                    f"a number has at most {AMOUNT_PLACES} decimal places: {tok.text}",
                    tok.position,
                )
            if number > Decimal(10) ** 12:
                raise ConditionError(f"number too large: {tok.text}", tok.position)
            return Literal(number, "number", tok.position)
        if tok.kind == "string":
            self.take()
            return Literal(str(tok.value), "string", tok.position)
        if tok.kind == "duration":
            raise ConditionError(
                f"a duration ({tok.text}) is only allowed after `within`", tok.position
            )
        if tok.kind == "name":
            return self.name()
        raise ConditionError(f"expected a value, found {describe(tok)}", tok.position)

    def name(self) -> Node:
        tok = self.take()
        word = tok.text
        if word in ("true", "false"):
            return Literal(word == "true", "bool", tok.position)
        if word in FIELDS:
            return FieldRef(word, FIELDS[word], tok.position)
        if word in SETTINGS:
            return Literal(getattr(self.settings, SETTINGS[word]), "string", tok.position)
        if self.at("op", "("):
            if word in FUNCTIONS:
                return self.aggregate(tok)
            raise ConditionError(
                f"unknown function {word!r}; known: {', '.join(FUNCTIONS)}", tok.position
            )
        if word in FUNCTIONS:
            raise ConditionError(f"{word} needs arguments: {word}(...)", tok.position)
        if word in KEYWORDS:
            raise ConditionError(f"expected a value, found `{word}`", tok.position)
        known = ", ".join([*FIELDS, *SETTINGS])
        raise ConditionError(f"unknown field {word!r}; known: {known}", tok.position)

    def aggregate(self, name_tok: Token) -> Node:
        if self.in_aggregate:
            raise ConditionError("aggregates cannot be nested", name_tok.position)
        function: Function = name_tok.text  # type: ignore[assignment]
        self.take()  # (
        self.in_aggregate = True
        arg = self.or_expr()
        if function == "sum":
            if type_of(arg) != "number":
                raise ConditionError(
                    f"sum needs a number (amount), not a {type_of(arg)}", first_position(arg)
                )
        else:
            self.need_bool(arg, function)
        self.expect("op", ",", f"`,` and then `within <duration>` in {function}(...)")
        self.expect("name", "within", f"`within <duration>` in {function}(...)")
        dur = self.tok
        if dur.kind != "duration":
            raise ConditionError(
                f"expected a duration such as 10m, 15m or 1h, found {describe(dur)}",
                dur.position,
            )
        self.take()
        assert isinstance(dur.value, int)
        within = timedelta(seconds=dur.value)
        if within <= timedelta(0):
            raise ConditionError("a window must be longer than 0", dur.position)
        if within > MAX_WINDOW:
            raise ConditionError(f"a window is at most 24h, not {dur.text}", dur.position)
        self.expect("op", ",", f"`,` and then `per card` or `per customer` in {function}(...)")
        self.expect("name", "per", f"`per card` or `per customer` in {function}(...)")
        per_tok = self.tok
        if per_tok.text not in ("card", "customer"):
            raise ConditionError(
                f"expected `card` or `customer` after `per`, found {describe(per_tok)}",
                per_tok.position,
            )
        self.take()
        per: Per = per_tok.text  # type: ignore[assignment]
        where: Node | None = None
        if function == "sum" and self.at("op", ","):
            self.take()
            self.expect("name", "where", "`where <condition>` in sum(...)")
            where = self.or_expr()
            self.need_bool(where, "`where`")
        self.in_aggregate = False
        self.expect("op", ")", f"`)` to close {function}(...)")
        return Aggregate(function, arg, where, within, per, name_tok.position)

    def need_bool(self, node: Node, what: str) -> None:
        kind = type_of(node)
        if kind != "bool":
            raise ConditionError(
                f"{what} needs a true/false condition, not a {kind}", first_position(node)
            )

    def coerce(self, lit: Literal, other: Node) -> Literal:
        """A literal compared with `other`, checked and converted to its type."""
        want = type_of(other)
        if want == "time" and lit.type == "string":
            return Literal(parse_instant(str(lit.value), lit.position), "time", lit.position)
        if lit.type != want:
            what = f"{other.name} is a {want}" if isinstance(other, FieldRef) else f"a {want}"
            raise ConditionError(
                f"{what}; cannot compare it with the {lit.type} {render(lit)}", lit.position
            )
        if isinstance(other, FieldRef) and other.name in FIELD_PATTERNS:
            pattern, shape = FIELD_PATTERNS[other.name]
            if not re.fullmatch(pattern, str(lit.value)):
                raise ConditionError(
                    f"{other.name} is {shape}; {render(lit)} can never match", lit.position
                )
        return lit

    def check_compare(self, op: Op, left: Node, right: Node, position: int) -> Node:
        if isinstance(right, Literal) and not isinstance(left, Literal):
            right = self.coerce(right, left)
        elif isinstance(left, Literal) and not isinstance(right, Literal):
            left = self.coerce(left, right)
        lt, rt = type_of(left), type_of(right)
        if lt != rt:
            raise ConditionError(f"cannot compare a {lt} with a {rt} using {op}", position)
        if op not in ("=", "!=") and lt not in ("number", "time"):
            raise ConditionError(f"{op} needs numbers or times, not {lt}s", position)
        return Compare(op, left, right, position)


def parse_instant(text: str, position: int) -> datetime:
    """An ISO 8601 instant with an offset, as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ConditionError(
            f"occurred_at is a time; {text!r} is not an ISO 8601 time", position
        ) from None
    if value.tzinfo is None:
        raise ConditionError(
            f"a time needs an offset (e.g. {text}Z or {text}+01:00): {text!r}", position
        )
    return value.astimezone(UTC)


def first_position(node: Node) -> int:
    """Where an expression starts."""
    if isinstance(node, Compare):
        return first_position(node.left)
    if isinstance(node, InList):
        return first_position(node.operand)
    if isinstance(node, And | Or):
        return first_position(node.parts[0])
    return node.position


def describe(tok: Token) -> str:
    """A token as a message shows it."""
    return "the end" if tok.kind == "end" else f"`{tok.text}`"


def render(lit: Literal) -> str:
    """A literal as a message shows it."""
    if lit.type == "string":
        return f'"{lit.value}"'
    if lit.type == "bool":
        return "true" if lit.value else "false"
    return str(lit.value)


@dataclass(frozen=True)
class CompiledCondition:
    """A parsed, type-checked condition and what its windows need; both engines take this."""

    text: str
    root: Node
    settings: FeedSettings
    windows: tuple[Aggregate, ...] = field(default=())

    def horizon(self, per: Per) -> timedelta:
        """The longest window over this key (0: the key's history is not needed)."""
        return max((a.within for a in self.windows if a.per == per), default=timedelta(0))


def compile_condition(text: str, settings: FeedSettings) -> CompiledCondition:
    """Parse and type-check a condition; a ConditionError says what is wrong and where."""
    root = _Parser(text, settings).parse()
    if type_of(root) != "bool":
        raise ConditionError(
            f"a condition must be true or false, not a {type_of(root)}", first_position(root)
        )
    return CompiledCondition(text, root, settings, tuple(aggregates(root)))
