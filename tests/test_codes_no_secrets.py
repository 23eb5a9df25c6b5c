"""No backup code and no OTP seed in any log line or audit event."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Admin, MakeUser, Twostep
from tests.support.twofactor import setup_realm


def test_no_code_or_seed_in_logs_or_audit(twostep: Twostep, make_user: MakeUser, tmp_path: Path, admin: Admin,
                                          realm: str) -> None:
    setup_realm(twostep)
    lee = make_user("lee", otp=True)
    audit_file = tmp_path / "audit.jsonl"
    env = {"TWOSTEP_AUDIT_FILE": str(audit_file), "TWOSTEP_DEBUG": "1"}
    outputs: list[str] = []
    shown: list[str] = []

    r = twostep("codes", "generate", "lee", "--count", "5", env=env)
    assert r.code == 0, r.err
    shown += [ln.split()[-1] for ln in r.out.splitlines() if ln.strip().startswith("#")]
    outputs.append(r.err)  # stdout shows the codes by design; stderr is the log
    r = twostep("codes", "generate", "lee", "--count", "7", "--json", env=env)
    assert r.code == 0, r.err
    shown += [c["code"] for c in json.loads(r.out)["codes"]]
    outputs.append(r.err)
    out = tmp_path / "codes.txt"
    r = twostep("codes", "generate", "lee", "--count", "9", "--out", str(out), env=env)
    assert r.code == 0, r.err
    file_codes = [ln.split()[-1] for ln in out.read_text().splitlines() if ln.strip().startswith("#")]
    outputs += [r.out, r.err]
    for args in (("codes", "status", "lee"), ("codes", "status", "lee", "--json"), ("otp", "list", "lee"),
                 ("otp", "list", "lee", "--json"), ("otp", "reset", "lee", "--reason", "test"),
                 ("codes", "revoke", "lee")):
        r = twostep(*args, env=env)
        assert r.code == 0, (args, r.err)
        outputs += [r.out, r.err]
    # Without an audit file the events go to stderr: same guarantee there.
    r = twostep("codes", "generate", "lee", "--count", "5", "--json")
    assert r.code == 0, r.err
    stream_codes = [c["code"] for c in json.loads(r.out)["codes"]]
    assert '"event": "codes.generate"' in r.err
    outputs.append(r.err)

    audit = audit_file.read_text()
    events = [json.loads(line) for line in audit.splitlines()]
    assert {"codes.generate", "otp.reset", "codes.revoke", "notify"} <= {e["event"] for e in events}
    haystack = audit + "".join(outputs)
    assert len(shown + file_codes + stream_codes) == 5 + 7 + 9 + 5
    assert lee.totp_secret and lee.totp_secret not in haystack
    for code in shown + file_codes + stream_codes:
        assert code not in haystack and code.replace("-", "") not in haystack
