"""The JSON-shape checks every xAPI object's walker is built from: which keys, which exact
JSON type, a language map, extensions. Each refusal names the path of the wrong field."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .formats import iri_error, language_tag_error


class StatementInvalidError(ValueError):
    """A statement (or a query value) breaks an xAPI rule; `field` is its JSON path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


def fail(path: str, message: str) -> StatementInvalidError:
    return StatementInvalidError(path, message)


def json_object(value: Any, path: str, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(path, "must be a JSON object")
    for key in value:
        if key not in allowed:
            raise fail(f"{path}.{key}", "is not a property of this object (xAPI property "
                        "names are case sensitive)")
    return value


def check(path: str, reason: str | None) -> None:
    if reason is not None:
        raise fail(path, reason)


def string(value: Any, path: str) -> None:
    if not isinstance(value, str):
        raise fail(path, "must be a string")


def boolean(value: Any, path: str) -> None:
    if not isinstance(value, bool):
        raise fail(path, "must be true or false")


def number(value: Any, path: str) -> Decimal:
    """A JSON number, exactly as sent (a float's shortest spelling), for comparing bounds."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(path, "must be a number")
    return Decimal(str(value))


def required(obj: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise fail(f"{path}.{key}", "is required")
    return obj[key]


def array(value: Any, path: str, *, non_empty: bool = False) -> list[Any]:
    if not isinstance(value, list):
        raise fail(path, "must be an array")
    if non_empty and not value:
        raise fail(path, "must not be empty")
    return value


def language_map(value: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise fail(path, "must be a language map (an object of language tag -> string)")
    for tag, text in value.items():
        check(f"{path}.{tag}", language_tag_error(tag))
        string(text, f"{path}.{tag}")


def extensions(value: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise fail(path, "must be an object whose keys are IRIs")
    for key in value:
        check(f"{path}.{key}", iri_error(key))
