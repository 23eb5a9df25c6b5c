"""The web package's auth module without Keycloak: the service-client cache closes what it retires,
and the package's modules import without a cycle (no late import in app.py)."""

from __future__ import annotations

import ast
import time
from pathlib import Path
from typing import Any

import pytest
from twostep.settings import Settings
from twostep.web import auth
from twostep.web.auth import SERVICE_CLIENT_TTL_S, ServiceClients, WebConfig


class FakeClient:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_service_clients_close_the_ones_they_retire(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    cache = ServiceClients(Settings(url="http://127.0.0.1:1", realm="r"), WebConfig("http://x", "s"))
    made: list[FakeClient] = []

    def factory() -> Any:
        made.append(FakeClient())
        return made[-1]

    cache.factory = factory
    first = cache.get()
    assert cache.get() is first and len(made) == 1, "reused within the period"
    now[0] += SERVICE_CLIENT_TTL_S + 1
    second = cache.get()
    assert second is not first and not made[0].closed, "a page may still use the old one this period"
    now[0] += SERVICE_CLIENT_TTL_S + 1
    third = cache.get()
    assert made[0].closed and not made[1].closed and third is made[2], "closed one period after retiring"
    cache.close()
    assert all(c.closed for c in made)


def test_web_modules_import_nothing_above_them() -> None:
    """auth is imported by app, admin and security and imports none of them; nothing imports app
    inside a function (the cycle issue 15 found)."""
    web = Path(auth.__file__).parent
    for name in ("auth", "admin", "security", "tokens"):
        tree = ast.parse((web / f"{name}.py").read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1}
        assert "app" not in imported, f"web/{name}.py imports app"
        if name == "auth":
            assert not imported & {"admin", "security"}, imported
    app_tree = ast.parse((web / "app.py").read_text())
    for fn in ast.walk(app_tree):
        if isinstance(fn, ast.FunctionDef):
            late = [n for n in ast.walk(fn) if isinstance(n, ast.ImportFrom) and n.level == 1]
            assert not late, f"app.{fn.name} imports {[n.module for n in late]} late"
