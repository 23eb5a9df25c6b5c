"""Structured logs: one JSON event per line on stderr, and never a secret (client secret, codes, seeds)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twostep import logs
from twostep.keycloak_adapter import path_template
from twostep.redact import MASK

from tests.conftest import Admin, MakeUser, Twostep


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    buf = io.StringIO()
    logs.configure("json", "DEBUG", buf)
    yield buf
    logs.configure("text", "WARNING", io.StringIO())


def _lines(buf: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_json_line_has_ts_level_logger_event_and_fields(stream: io.StringIO) -> None:
    logs.get("twostep.sync").info("sync.action", kind="expire", target="hana", n=3)
    (line,) = _lines(stream)
    assert line["level"] == "info" and line["logger"] == "twostep.sync" and line["event"] == "sync.action"
    assert line["kind"] == "expire" and line["target"] == "hana" and line["n"] == 3
    assert line["ts"].endswith("Z") and "T" in line["ts"]


def test_fields_named_like_secrets_are_masked_even_nested_and_from_plain_loggers(stream: io.StringIO) -> None:
    log = logs.get("twostep.test")
    log.warning("x", client_secret="S3CRET-1", password="S3CRET-2", totp_seed="S3CRET-3", code="S3CRET-4",
                params={"access_token": "S3CRET-5", "first": 0}, codes_count=12, status=200)
    logging.getLogger("twostep.plain").error("plain", extra={"refresh_token": "S3CRET-6"})
    text = stream.getvalue()
    assert "S3CRET" not in text
    first, second = _lines(stream)
    assert first["client_secret"] == MASK and first["params"] == {"access_token": MASK, "first": 0}
    assert first["codes_count"] == 12 and first["status"] == 200, "counts and statuses are not secrets"
    assert second["refresh_token"] == MASK


def test_text_format_is_one_line_per_event() -> None:
    buf = io.StringIO()
    logs.configure("text", "INFO", buf)
    try:
        logs.get("twostep.sync").info("sync.pass", expired=2, password="nope")
        logs.get("twostep.sync").debug("hidden")
    finally:
        logs.configure("text", "WARNING", io.StringIO())
    (line,) = buf.getvalue().splitlines()
    assert " info sync.pass " in line and "expired=2" in line and "nope" not in line


def test_path_template_hides_ids_and_names() -> None:
    assert path_template("/users/4f1c-9/credentials/abc") == "/users/{}/credentials/{}"
    assert path_template("/roles/twostep-lock-xyz") == "/roles/{}"
    assert path_template("/authentication/flows/my%20flow/executions") == "/authentication/flows/{}/executions"
    assert path_template("/group-by-path/staff/it") == "/group-by-path/{}/{}"
    assert path_template("") == "/"


def test_cli_logs_are_json_lines_without_any_secret(
    twostep: Twostep, make_user: MakeUser, admin: Admin, realm: str, tmp_path: Path
) -> None:
    """setup writes a client secret to a file, codes are generated and shown on stdout: neither
    appears in any log line (stderr), even at DEBUG where every Keycloak request is logged."""
    env = {"TWOSTEP_LOG_LEVEL": "DEBUG", "TWOSTEP_LOG_FORMAT": "json"}
    secret_file = tmp_path / "cli-secret"
    r = twostep("setup", "--secret-file", str(secret_file), env=env)
    assert r.code == 0, r.err
    secret = secret_file.read_text().strip()
    assert len(secret) >= 16
    stderr = [r.err]
    outputs = [r.out]
    lee = make_user("lee", otp=True)
    r = twostep("codes", "generate", "lee", "--count", "6", env=env)
    assert r.code == 0, r.err
    codes = [ln.split()[-1] for ln in r.out.splitlines() if ln.strip().startswith("#")]
    assert len(codes) == 6
    stderr.append(r.err)
    # the service account just created, used with its secret (the token request is logged too)
    r = twostep("sync", "--json", env={**env, "TWOSTEP_CLIENT_ID": "twostep-cli", "TWOSTEP_CLIENT_SECRET": secret,
                                       "TWOSTEP_ADMIN_USERNAME": "", "TWOSTEP_ADMIN_PASSWORD": ""})
    assert r.code == 0, r.err
    stderr.append(r.err)
    outputs.append(r.out)

    events = []
    for text in stderr:
        for line in text.splitlines():
            doc = json.loads(line)  # every stderr line is one JSON document
            if "logger" in doc:
                events.append(doc)
    requests = [e for e in events if e["event"] == "keycloak.request"]
    assert requests, "DEBUG logs every Keycloak request"
    assert all(set(e) >= {"ts", "level", "logger", "event", "msg", "method", "path", "status", "ms"}
               for e in requests)
    assert any(e["event"] == "sync.pass" for e in events)
    assert not [e for e in requests if lee.id in e["path"]], "ids are templated out of paths"
    haystack = "".join(stderr) + "".join(outputs)
    assert secret not in haystack
    assert lee.totp_secret and lee.totp_secret not in haystack
    for code in codes:
        assert code not in "".join(stderr) and code.replace("-", "") not in "".join(stderr)


def test_log_format_text_and_bad_level(twostep: Twostep) -> None:
    r = twostep("--log-format", "text", "status", env={"TWOSTEP_LOG_LEVEL": "DEBUG"})
    assert "keycloak.request" in r.err and not r.err.lstrip().startswith("{")
    r = twostep("status", env={"TWOSTEP_LOG_LEVEL": "LOUD"})
    assert r.code == 2 and "unknown log level" in r.err
