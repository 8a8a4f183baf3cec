"""Understanding a customer's free-text SMS reply: YES/NO (with typos), a code, or a keyword."""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

from pydantic import BaseModel


class ReplyKind(StrEnum):
    """What a message means, before it is matched to an alert."""

    YES = "yes"
    NO = "no"
    STOP = "stop"
    START = "start"
    HELP = "help"
    UNKNOWN = "unknown"


class ParsedReply(BaseModel):
    """A message's meaning and the reply code it carried, if any."""

    kind: ReplyKind
    code: str | None = None


# Carrier-standard opt-out / opt-in / help keywords (CTIA and Twilio's defaults).
STOP_WORDS = {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "optout", "revoke"}
START_WORDS = {"start", "unstop", "subscribe", "optin"}
HELP_WORDS = {"help", "info"}

YES_WORDS = {
    "yes", "y", "yeah", "yea", "yep", "yup", "ya", "yah", "yas", "yess", "yesss", "yse", "ys",
    "yes.", "ye", "yeh", "ok", "okay", "k", "confirm", "confirmed", "correct", "si", "sí", "oui",
    "affirmative", "yes please", "it was me", "that was me", "was me", "its me", "it's me", "me",
}  # fmt: skip
NO_WORDS = {
    "no", "n", "n0", "no thanks", "nope", "nah", "noo", "nooo", "nop", "np", "nay", "non",
    "not me", "wasnt me", "wasn't me", "was not me", "not mine", "fraud", "deny", "denied",
    "didnt", "didn't",
}  # fmt: skip
# Words of three letters or more whose one-letter typos still read clearly.
FUZZY_YES = ("yes", "yeah", "yep", "yup", "confirm")
FUZZY_NO = ("nope",)

CODE = re.compile(r"\b(\d{4})\b")
GLUED = re.compile(r"^([a-z]+)(\d{4})$")


def _normalise(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = re.sub(r"[^\w\s']", " ", folded)
    return re.sub(r"\s+", " ", folded).strip()


def _within_one_edit(a: str, b: str) -> bool:
    """Damerau distance <= 1 (one insertion, deletion, substitution or swap)."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def _answer(words: str) -> ReplyKind | None:
    if words in YES_WORDS:
        return ReplyKind.YES
    if words in NO_WORDS:
        return ReplyKind.NO
    if " " not in words and len(words) >= 3:
        if any(_within_one_edit(words, w) for w in FUZZY_YES):
            return ReplyKind.YES
        if any(_within_one_edit(words, w) for w in FUZZY_NO):
            return ReplyKind.NO
    return None


def parse_reply(text: str, *, glue_across_spaces: bool = False) -> ParsedReply:
    """Classify one inbound message; keywords win only when they are the whole message.

    `glue_across_spaces` is the old reading, kept for histories that took it: it read every
    message ending in a code as a word glued to it, so "not me 4821" was not understood.
    """
    norm = _normalise(text)
    if not norm:
        return ParsedReply(kind=ReplyKind.UNKNOWN)
    compact = norm.replace(" ", "")
    if norm in STOP_WORDS or compact in {"stopall", "optout"}:
        return ParsedReply(kind=ReplyKind.STOP)
    if norm in START_WORDS or compact == "optin":
        return ParsedReply(kind=ReplyKind.START)
    if norm in HELP_WORDS:
        return ParsedReply(kind=ReplyKind.HELP)

    glued = GLUED.match(compact if glue_across_spaces else norm)
    if glued:
        kind = _answer(glued.group(1))
        return ParsedReply(kind=kind or ReplyKind.UNKNOWN, code=glued.group(2) if kind else None)

    codes = CODE.findall(norm)
    words = CODE.sub(" ", norm)
    words = re.sub(r"\s+", " ", words).strip()
    code = codes[0] if len(codes) == 1 else None
    kind = _answer(words) if words else None
    if kind is None:
        return ParsedReply(kind=ReplyKind.UNKNOWN, code=code)
    return ParsedReply(kind=kind, code=code)
