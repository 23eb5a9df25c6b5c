"""Server-side store of each signed-in person's tokens.

The session cookie only carries a random id: tokens (access, refresh, id) are too big for a cookie
and must not travel to the browser. Files in one private directory work across gunicorn workers.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import Any

_SID = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


class FileTokenStore:
    def __init__(self, directory: str | None = None) -> None:
        self.dir = Path(directory or tempfile.mkdtemp(prefix="twostep-web-tokens-"))
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(32)

    def _path(self, sid: str) -> Path | None:
        return self.dir / sid if _SID.match(sid or "") else None

    def put(self, sid: str, tokens: dict[str, Any]) -> None:
        path = self._path(sid)
        if path is None:
            raise ValueError("bad session id")
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(tokens, fh)
        os.replace(tmp, path)

    def get(self, sid: str) -> dict[str, Any] | None:
        path = self._path(sid)
        if path is None:
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def delete(self, sid: str) -> None:
        path = self._path(sid)
        if path is not None:
            path.unlink(missing_ok=True)
