"""Server-side store of each signed-in person's tokens.

The session cookie only carries a random id: tokens (access, refresh, id) are too big for a cookie
and must not travel to the browser. Files in one private directory work across gunicorn workers.

Bounded: a file's mtime is set to the end of its record's life (the later of the access and refresh
tokens' expiry, never past the session cookie's lifetime), so expired records are found with one
`stat` each and swept; one person keeps at most `per_user` records (the oldest are dropped at a new
sign-in) and the directory at most `max_records`, so repeated sign-ins cannot fill a small /tmp.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# "<16 hex: whose>.<43 random>": the prefix lets a sign-in find that person's other records.
_SID = re.compile(r"^[0-9a-f]{16}\.[A-Za-z0-9_-]{43}$")
MAX_PER_USER = 5
MAX_RECORDS = 2000  # at about 4 KiB each on tmpfs: 8 MiB at most
SWEEP_EVERY_S = 30.0
TMP_GRACE_S = 60.0


class FileTokenStore:
    def __init__(self, directory: str | None = None, *, max_records: int = MAX_RECORDS,
                 per_user: int = MAX_PER_USER, now: Callable[[], float] = time.time) -> None:
        self.dir = Path(directory or tempfile.mkdtemp(prefix="twostep-web-tokens-"))
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self.max_records = max(1, max_records)
        self.per_user = max(1, per_user)
        self.now = now
        self._lock = threading.Lock()
        self._swept = 0.0

    @staticmethod
    def user_key(realm: str, sub: str) -> str:
        return hashlib.sha256(f"{realm}\0{sub}".encode()).hexdigest()[:16]

    @staticmethod
    def new_id(user_key: str) -> str:
        return f"{user_key}.{secrets.token_urlsafe(32)}"

    def _path(self, sid: str) -> Path | None:
        return self.dir / sid if _SID.match(sid or "") else None

    def put(self, sid: str, tokens: dict[str, Any], ends_at: float) -> None:
        path = self._path(sid)
        if path is None:
            raise ValueError("bad session id")
        tmp = path.with_name(path.name + f".{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(tokens, fh)
        os.utime(tmp, (ends_at, ends_at))
        os.replace(tmp, path)
        self.sweep()

    def get(self, sid: str) -> dict[str, Any] | None:
        path = self._path(sid)
        if path is None:
            return None
        try:
            if path.stat().st_mtime <= self.now():
                path.unlink(missing_ok=True)  # expired: nothing in it can be used any more
                return None
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def delete(self, sid: str) -> None:
        path = self._path(sid)
        if path is not None:
            path.unlink(missing_ok=True)

    def _entries(self) -> list[tuple[float, Path]]:
        out = []
        with os.scandir(self.dir) as it:
            for entry in it:
                try:
                    out.append((entry.stat(follow_symlinks=False).st_mtime, Path(entry.path)))
                except FileNotFoundError:  # removed by another worker meanwhile
                    continue
        return out

    def sweep(self, *, force: bool = False) -> int:
        """Remove expired records and stale temporary files; at most every SWEEP_EVERY_S unless forced."""
        now = self.now()
        with self._lock:
            if not force and now - self._swept < SWEEP_EVERY_S:
                return 0
            self._swept = now
        removed = 0
        for mtime, path in self._entries():
            stale_tmp = path.name.endswith(".tmp") and mtime < now - TMP_GRACE_S
            if stale_tmp or (not path.name.endswith(".tmp") and mtime <= now):
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def admit(self, user_key: str) -> None:
        """Before a new sign-in is stored: room for it within the per-person and total bounds."""
        self.sweep(force=True)
        records = sorted((m, p) for m, p in self._entries() if not p.name.endswith(".tmp"))
        mine = [p for _m, p in records if p.name.startswith(user_key + ".")]
        for path in mine[: max(0, len(mine) - (self.per_user - 1))]:
            path.unlink(missing_ok=True)
        left = [p for _m, p in records if p.exists()]
        # Full: the records closest to their end go first (sign those people in again) rather than
        # refusing every new sign-in or filling the disk.
        for path in left[: max(0, len(left) - (self.max_records - 1))]:
            path.unlink(missing_ok=True)

    def count(self) -> int:
        return sum(1 for _m, p in self._entries() if not p.name.endswith(".tmp"))
