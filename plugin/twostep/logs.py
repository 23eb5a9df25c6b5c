"""Structured logs: stdlib logging, one event per line on stderr, JSON or text.

    log = logs.get("twostep.sync")
    log.info("sync.action", kind="expire", target="hana", outcome="done")

A JSON line carries `ts`, `level`, `logger`, `event`, `msg` and the event's fields. Logs go to stderr;
the commands' human output stays on stdout. Configured once by the CLI (`--log-format`,
`TWOSTEP_LOG_FORMAT`, `TWOSTEP_LOG_LEVEL`): text on a terminal, JSON otherwise.

No secret reaches a line: `SecretFilter` masks every field whose name says it is one (the one rule
of `redact.py`, shared with the audit), whatever logger sent it, and callers log path templates and
parameter names, never query values or bodies.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from .redact import MASK, is_secret_name, mask

ROOT = "twostep"
FORMATS = ("json", "text")
_STD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "taskName"}


class SecretFilter(logging.Filter):
    """Masks fields named like a secret, both our `fields` and any `extra=` attribute."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = {k: MASK if is_secret_name(k) else mask(v) for k, v in fields.items()}
        for key in [k for k in vars(record) if k not in _STD and k not in ("fields", "event")]:
            if is_secret_name(key):
                setattr(record, key, MASK)
        return True


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in vars(record).items():
        if key not in _STD and key not in ("fields", "event"):
            out[key] = value
    fields = getattr(record, "fields", None)
    if isinstance(fields, dict):
        out.update(fields)
    return out


def _ts(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event = getattr(record, "event", None) or record.name
        line: dict[str, Any] = {"ts": _ts(record), "level": record.levelname.lower(), "logger": record.name,
                                "event": event, "msg": record.getMessage()}
        for key, value in _fields(record).items():
            line.setdefault(key, value)
        if record.exc_info and record.exc_info[0] is not None:
            line["exc_type"] = record.exc_info[0].__name__  # the type only: a message may quote input
        return json.dumps(line, default=str, sort_keys=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event = getattr(record, "event", None) or record.name
        msg = record.getMessage()
        parts = [_ts(record), record.levelname.lower(), event]
        if msg and msg != event:
            parts.append(msg)
        parts += [f"{k}={v}" for k, v in _fields(record).items()]
        return " ".join(str(p) for p in parts)


class EventLogger:
    """A logger whose calls name an event and carry fields: `log.info("sync.action", kind=...)`."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def _log(self, level: int, event: str, msg: str | None, fields: dict[str, Any]) -> None:
        if self.logger.isEnabledFor(level):
            self.logger.log(level, msg or event, extra={"event": event, "fields": fields}, stacklevel=3)

    def debug(self, event: str, msg: str | None = None, **fields: Any) -> None:
        self._log(logging.DEBUG, event, msg, fields)

    def info(self, event: str, msg: str | None = None, **fields: Any) -> None:
        self._log(logging.INFO, event, msg, fields)

    def warning(self, event: str, msg: str | None = None, **fields: Any) -> None:
        self._log(logging.WARNING, event, msg, fields)

    def error(self, event: str, msg: str | None = None, **fields: Any) -> None:
        self._log(logging.ERROR, event, msg, fields)


def get(name: str) -> EventLogger:
    return EventLogger(logging.getLogger(name if name.startswith(ROOT) else f"{ROOT}.{name}"))


_handler: logging.Handler | None = None


def default_format(stream: TextIO | None = None) -> str:
    env = os.environ.get("TWOSTEP_LOG_FORMAT", "").strip().lower()
    if env in FORMATS:
        return env
    s = stream or sys.stderr
    try:
        return "text" if s.isatty() else "json"
    except (AttributeError, ValueError):
        return "json"


def configure(fmt: str | None = None, level: str | int | None = None, stream: TextIO | None = None) -> None:
    """Set up the `twostep` logger once (a second call replaces the first: tests, re-entrant CLI).

    Only our logger hierarchy is touched: other libraries' loggers (urllib3 logs full URLs with their
    query strings at DEBUG) keep Python's defaults, so nothing of theirs reaches our stream."""
    global _handler
    fmt = (fmt or default_format(stream)).lower()
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    lvl = level if level is not None else os.environ.get("TWOSTEP_LOG_LEVEL", "INFO")
    numeric = logging.getLevelName(lvl.upper()) if isinstance(lvl, str) else lvl
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {lvl!r}")
    logger = logging.getLogger(ROOT)
    if _handler is not None:
        logger.removeHandler(_handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(SecretFilter())
    logger.addHandler(handler)
    logger.setLevel(numeric)
    logger.propagate = False
    _handler = handler
