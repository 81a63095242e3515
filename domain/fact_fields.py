"""The field types every fact payload is built from: exact decimal quantities with their
bounds, ids, free text. Each refuses what cannot be a real value, with a message naming why.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, PlainSerializer, StringConstraints
from pydantic_core import PydanticCustomError


def canonical_decimal(value: Decimal) -> str:
    """Shortest exact spelling of a decimal: 12.50 -> "12.5", 100 -> "100", -0 -> "0"."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


# Quantities are taken as sent: any finite JSON number (integer or float, in any spelling) or
# a decimal string, kept exactly and stored in canonical_decimal's spelling. Rounding is the
# policy pack's business, never the envelope's. What is refused is what cannot be a real
# measurement or would make the stored spelling unbounded:
MAX_SIGNIFICANT_DIGITS = 28  # decimal's default precision: normalize() never rounds a value
MAX_DECIMAL_PLACES = 40  # float noise (0.1 + 0.2 - 0.3 = 5.551115123125783e-17) still fits
MAX_HOURS = 10_000  # one fact: more than a year of days and nights
MAX_MINUTES = 600_000  # the same 10,000 hours
MAX_SCORE = 10_000  # scores run to 100, 150, 750 or 1000 on the scales in use
MAX_AMOUNT = 10_000  # an adjustment of credits or hours, either sign


def _exact_enough(value: Decimal) -> Decimal:
    """Refuse a quantity whose exact spelling would be absurdly long (1e-100000 would print
    100,000 digits) or whose digits decimal arithmetic would silently round."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # NaN and infinities are refused before this runs
    significant = len(digits)
    while significant > 1 and digits[significant - 1] == 0:
        significant -= 1
    exponent += len(digits) - significant
    if value != 0 and significant > MAX_SIGNIFICANT_DIGITS:
        raise PydanticCustomError(
            "too_many_digits",
            "Number should have at most {limit} significant digits",
            {"limit": MAX_SIGNIFICANT_DIGITS})
    if value != 0 and -exponent > MAX_DECIMAL_PLACES:
        raise PydanticCustomError(
            "too_many_decimal_places",
            "Number should have no digit beyond decimal place {limit}",
            {"limit": MAX_DECIMAL_PLACES})
    return value


_CANONICAL = PlainSerializer(canonical_decimal, return_type=str, when_used="json")
Hours = Annotated[
    Decimal, Field(ge=0, le=MAX_HOURS), AfterValidator(_exact_enough), _CANONICAL
]
Minutes = Annotated[
    Decimal, Field(ge=0, le=MAX_MINUTES), AfterValidator(_exact_enough), _CANONICAL
]
Score = Annotated[
    Decimal, Field(ge=0, le=MAX_SCORE), AfterValidator(_exact_enough), _CANONICAL
]
Share = Annotated[Decimal, Field(ge=0, le=1), AfterValidator(_exact_enough), _CANONICAL]
SignedAmount = Annotated[
    Decimal, Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT), AfterValidator(_exact_enough), _CANONICAL
]

# Ids travel in URL paths (/v1/learners/{id}), file names and log lines, and are compared
# byte for byte, so they hold no whitespace, nothing invisible and nothing a URL or a path
# gives a meaning to. Every other character (letters and digits of any script,
# - _ . : @ + ~ and the rest of printable ASCII punctuation) is allowed.
ID_FORBIDDEN_ASCII = re.compile(r"[\x00-\x20\x7f/\\?#%]")
ID_FORBIDDEN_PUNCTUATION = frozenset("/\\?#%")
# Free text may hold line feeds and tabs, never other control characters (a NUL cannot be
# stored in PostgreSQL text) nor a lone surrogate (it has no UTF-8 spelling to hash).
TEXT_FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def _character(char: str) -> str:
    shown = f" {char!r}" if char.isprintable() else ""
    return f"U+{ord(char):04X}{shown}"


def _id_character_refused(value: str) -> str | None:
    if value.isascii():
        found = ID_FORBIDDEN_ASCII.search(value)
        return found.group() if found else None
    for char in value:
        category = unicodedata.category(char)
        # Z*: spaces and line separators; Cc, Cf, Cs: controls, invisible format characters
        # (zero-width space, bidi overrides) and lone surrogates.
        if char in ID_FORBIDDEN_PUNCTUATION or category[0] == "Z" or category in ("Cc", "Cf", "Cs"):
            return char
    return None


def _valid_id(value: str) -> str:
    if (char := _id_character_refused(value)) is not None:
        raise PydanticCustomError(
            "id_character",
            "An id may not contain {char}: no whitespace, control or invisible characters, "
            "nor / \\ ? # %",
            {"char": _character(char)})
    if value in (".", ".."):
        raise PydanticCustomError("id_dots", "An id may not be . or ..")
    return value


def _valid_text(value: str) -> str:
    if found := TEXT_FORBIDDEN.search(value):
        raise PydanticCustomError(
            "text_character",
            "Text may not contain {char}: line feeds and tabs are the only control "
            "characters allowed", {"char": _character(found.group())})
    return value


Ident = Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(_valid_id)]
# The source is joined to external_id with ":" to form the fact key, so it may not hold one.
SourceName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^:]+$"),
    AfterValidator(_valid_id),
]
Text = Annotated[str, StringConstraints(min_length=1, max_length=500), AfterValidator(_valid_text)]
OptionalText = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_valid_text)]
Level = Literal["unit", "district", "city", "province", "national"]
Rank = Literal["county_division_and_above", "township_section_and_below"]
