"""OpenAI's error body, the one shape every error of the app and the fake upstream answers in."""

from __future__ import annotations

from typing import Any


def error_body(
    message: str,
    type_: str = "invalid_request_error",
    *,
    param: str | None = None,
    code: str | int | None = None,
) -> dict[str, Any]:
    """{"error": {"message", "type", "param", "code"}}, as the OpenAI API answers errors."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}
