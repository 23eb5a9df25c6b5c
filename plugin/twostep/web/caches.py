"""Small thread-safe caches the pages share across requests (AppState holds one of each): ids that
never change for an object's life, and Keycloak's "may this person manage anyone?" per token.
"""

from __future__ import annotations

import threading

ACCESS_CACHE_MAX = 1000


class IdCache:
    """Ids that never change for an object's life (a group's id): read once, forgotten when
    Keycloak says the object is gone, so a re-created object is looked up again."""

    def __init__(self) -> None:
        self._ids: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._ids.get(key)

    def put(self, key: str, value: str) -> None:
        with self._lock:
            self._ids[key] = value

    def forget(self, key: str) -> None:
        with self._lock:
            self._ids.pop(key, None)


class AccessCache:
    """Keycloak's answer "may this person manage anyone?" per access token (by its hash), so the
    question is asked once per token, not per page: a permission taken away counts from the next
    token (minutes). Bounded: the oldest answers go first."""

    def __init__(self, max_entries: int = ACCESS_CACHE_MAX) -> None:
        self._answers: dict[str, bool] = {}
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def get(self, key: str) -> bool | None:
        with self._lock:
            return self._answers.get(key)

    def put(self, key: str, value: bool) -> None:
        with self._lock:
            self._answers[key] = value
            while len(self._answers) > self.max_entries:
                del self._answers[next(iter(self._answers))]
