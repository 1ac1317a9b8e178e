"""Redaction of secrets (passwords in URLs, API keys) before anything is logged or written.

By shape (URL userinfo, credential parameters, bearer tokens, sk- keys) and by value: the
values of environment variables and options whose names look secret (remember_secrets_of)
are hidden wherever they appear, whatever the text around them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlsplit

REDACTED = "***"

# Parts of a variable's or option's name (split at anything not a letter or digit) that make
# its value a secret; a name ending in one of _NOT_SECRET_LAST names a setting about secrets.
_SECRET_NAME_PARTS = frozenset(
    {"PASSWORD", "PASSWD", "PWD", "PASS", "KEY", "KEYS", "APIKEY", "TOKEN", "SECRET", "SECRETS",
     "CREDENTIAL", "CREDENTIALS", "AUTH", "DSN"}
)  # fmt: skip
_NOT_SECRET_LAST = frozenset({"PREFIX", "FILE", "PATH", "DIR", "HEADER", "NAME", "LENGTH"})
# Shorter values are not hidden by value: "admin" or "test" would blank out ordinary words.
MIN_SECRET_CHARS = 6
_NAME_PARTS = re.compile(r"[^A-Za-z0-9]+")

# Query parameters that carry credentials: redis-py reads ?password= and ?username= from a URL.
_SECRET_PARAMS = (
    "password|passwd|pwd|pass|username|user|token|access_token|secret|api_key|apikey|auth"
)
# A URL's authority begins after "://"; its userinfo runs to the last @ before the path or a
# space, so a password with an unencoded @ is hidden whole. Found by a scan from each "://"
# rather than one regex: a regex that looks for the scheme first retries at every letter of a
# long word, quadratic in its length.
_AUTHORITY = re.compile(r"://")
_AUTHORITY_END = re.compile(r"[/\s]")
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
# A credential parameter in a URL's query, in free text or in a query string alone.
_QUERY_SECRET = re.compile(rf"(?i)(?P<lead>^|[?&;])(?P<name>{_SECRET_PARAMS})=(?P<value>[^&;#\s]*)")
# OpenAI-style keys and bearer tokens inside free text
_BEARER = re.compile(r"(?i)(bearer\s+)([A-Za-z0-9._~+/=-]{4,})")
_SK_KEY = re.compile(r"\bsk-[A-Za-z0-9_-]{4,}")


def _redact_userinfo(userinfo: str) -> str:
    """`user:***` when a password is given, else `***` (a lone user name may be a token)."""
    user, colon, _ = userinfo.partition(":")
    return f"{user}:{REDACTED}" if colon else REDACTED


def _redact_query(query: str) -> str:
    return _QUERY_SECRET.sub(lambda m: f"{m['lead']}{m['name']}={REDACTED}", query)


def redact_url(url: str) -> str:
    """Return `url` with its password, token-like user name and credential parameters as ***."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return redact_text(url)
    # From the raw netloc, not parts.hostname/port: those drop IPv6 brackets and raise on a
    # port out of range, and a URL that cannot be used must still be safe to print.
    userinfo, at, hostport = parts.netloc.rpartition("@")
    netloc = f"{_redact_userinfo(userinfo)}@{hostport}" if at else parts.netloc
    query = _redact_query(parts.query)
    if netloc == parts.netloc and query == parts.query:
        return redact_values(url)
    # Joined by hand: urlunsplit drops the // of unix:///path when the netloc is empty.
    scheme = f"{parts.scheme}:" if parts.scheme else ""
    has_authority = url.strip()[len(scheme) :].startswith("//")
    joined = scheme + (f"//{netloc}" if has_authority else "") + parts.path
    joined += f"?{query}" if query else ""
    joined += f"#{parts.fragment}" if parts.fragment else ""
    return redact_values(joined)


def _redact_userinfos(text: str) -> str:
    """Every scheme://userinfo@ in free text with its userinfo redacted; linear in the text."""
    pieces, done = [], 0
    for found in _AUTHORITY.finditer(text):
        start = found.end()
        if start < done or not _has_scheme(text, found.start()):
            continue
        end_match = _AUTHORITY_END.search(text, start)
        end = end_match.start() if end_match else len(text)
        at = text.rfind("@", start, end)
        if at < 0:
            continue
        pieces += [text[done:start], _redact_userinfo(text[start:at]), "@"]
        done = at + 1
    return "".join(pieces) + text[done:] if pieces else text


def _has_scheme(text: str, colon: int) -> bool:
    """True when a URL scheme (a letter, then letters, digits, + . -) ends at `colon`."""
    first = colon
    while first > 0 and text[first - 1] in _SCHEME_CHARS:
        first -= 1
    return any(c.isascii() and c.isalpha() for c in text[first:colon])


def redact_text(text: str) -> str:
    """Redact URL passwords and credential parameters, bearer tokens and sk- keys in free text."""
    text = _redact_userinfos(text)
    text = _redact_query(text)
    text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    text = _SK_KEY.sub("sk-" + REDACTED, text)
    return redact_values(text)


_remembered: set[str] = set()
_by_value: re.Pattern[str] | None = None


def looks_secret(name: str) -> bool:
    """True when the name of a variable or option says its value is a secret."""
    parts = [p.upper() for p in _NAME_PARTS.split(name) if p]
    if not parts or parts[-1] in _NOT_SECRET_LAST:
        return False
    return any(part in _SECRET_NAME_PARTS or part.endswith("PASSWORD") for part in parts)


def secrets_of(values: Mapping[str, str]) -> set[str]:
    """The secrets among name=value pairs: values of secret-looking names, and the passwords
    (or token-like user names) of URLs in any value."""
    found = {value for name, value in values.items() if looks_secret(name)}
    for value in values.values():
        if "://" not in value:
            continue
        try:
            parts = urlsplit(value)
            params = parse_qsl(parts.query)
        except ValueError:  # e.g. an unbalanced IPv6 bracket: no password to read
            continue
        user, colon, password = parts.netloc.rpartition("@")[0].partition(":")
        found.add(password if colon else user)
        found.update(v for k, v in params if _QUERY_SECRET.match(f"{k}={v}"))
    return {value for value in found if len(value) >= MIN_SECRET_CHARS}


def remember_secrets(values: Iterable[str]) -> None:
    """Hide each of `values` (at least MIN_SECRET_CHARS long) in every later redact_text."""
    global _by_value
    fresh = {v for v in values if len(v) >= MIN_SECRET_CHARS} - _remembered
    if not fresh:
        return
    _remembered.update(fresh)
    # Longest first, so a secret that contains another is hidden whole.
    ordered = sorted(_remembered, key=len, reverse=True)
    _by_value = re.compile("|".join(re.escape(v) for v in ordered))


def remember_secrets_of(values: Mapping[str, str]) -> None:
    """remember_secrets of secrets_of(values), e.g. of os.environ or of --target-env."""
    remember_secrets(secrets_of(values))


def redact_values(text: str) -> str:
    """`text` with every remembered secret value as ***: for whole files and streams, where
    the shapes redact_text knows could match what is not a secret."""
    return text if _by_value is None else _by_value.sub(REDACTED, text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message, secrets by shape and by value."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def forget_secrets() -> None:
    """Forget every remembered secret (tests, and a process that starts over)."""
    global _by_value
    _remembered.clear()
    _by_value = None
