"""Audit events go to their sink (a file, else stderr), never into a command's own output on stdout:
every command that writes audit events, run as an operator would (no audit file, no --json)."""

from __future__ import annotations

import io
import json
import sys
from datetime import timedelta
from typing import Any

from twostep.audit import event, sink_for

from tests.conftest import Keycloak, MakeUser, Twostep
from tests.support.bypass_helpers import client, grant_ending_at, utcnow
from tests.support.twofactor import setup_realm


def _audit_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and "event" in data and "actor" in data:
            out.append(data)
    return out


def test_stream_sink_defaults_to_stderr(monkeypatch: Any) -> None:
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    sink_for(None).write(event("codes.generate", realm="r", actor="a", now=utcnow()))
    sink_for("-").write(event("codes.revoke", realm="r", actor="a", now=utcnow()))
    assert out.getvalue() == ""
    assert [e["event"] for e in _audit_lines(err.getvalue())] == ["codes.generate", "codes.revoke"]


def test_every_audited_command_keeps_stdout_for_its_own_output(
    twostep: Twostep, make_user: MakeUser, keycloak: Keycloak, realm: str
) -> None:
    setup_realm(twostep)
    make_user("ann", otp=True)
    ben = make_user("ben", otp=True)
    seen: set[str] = set()

    def run(*args: str) -> str:
        r = twostep(*args)
        assert r.code == 0, (args, r.err)
        on_stdout = _audit_lines(r.out)
        assert on_stdout == [], (args, on_stdout)
        seen.update(e["event"] for e in _audit_lines(r.err))
        return r.out

    sheet = run("codes", "generate", "ann", "--count", "5", "--no-notify")
    # stdout is exactly the sheet: redirected to a file it is the codes and nothing else.
    numbered = [ln for ln in sheet.splitlines() if ln.strip().startswith("#")]
    assert sheet.splitlines()[0].startswith("Backup codes for ann") and len(numbered) == 5
    run("codes", "revoke", "ann", "--no-notify")
    run("otp", "reset", "ann", "--reason", "new phone")
    run("bypass", "grant", "ben", "--for", "1h", "--reason", "lost phone")
    run("bypass", "revoke", "ben", "--reason", "found it")
    # An expired bypass for the sync to end (a real grant made by a clock 5 minutes back).
    grant_ending_at(client(keycloak.url, realm), ben.id, utcnow() - timedelta(seconds=5))
    summary = run("sync")
    assert summary.strip(), "sync prints its own summary"
    assert {"codes.generate", "codes.revoke", "otp.reset", "bypass.grant", "bypass.revoke",
            "bypass.expire"} <= seen, seen
