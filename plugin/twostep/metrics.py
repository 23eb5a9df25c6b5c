"""Prometheus metrics of the sync job and of Keycloak requests, in one registry per process.

Served three ways, under the same names:
  * `twostep sync --watch --metrics-port N` : `serve()` (prometheus_client's HTTP server, loopback by default);
  * `twostep sync --once --textfile PATH`  : `write_textfile()` for node_exporter's textfile collector;
    counters and the last success are carried over from the file the previous run wrote, so they stay
    monotonic across cron runs and a failed run does not move "last success";
  * the web app's `/metrics`: `attach(registry)` (or `exposition()`), see docs/operations.md.

| name | type | labels | meaning |
| --- | --- | --- | --- |
| twostep_bypass_active | gauge | realm | active bypasses seen by the last sync pass |
| twostep_bypass_expired_total | counter | realm | bypasses ended because their time was up |
| twostep_bypass_ended_early_total | counter | realm | bypasses ended early (new device enrolled) |
| twostep_enforcement_actions_total | counter | realm | users given CONFIGURE_TOTP by the enforcement pass |
| twostep_drift_repaired_total | counter | realm | drift repairs (hand-set markers, group markers, profile, flow) |
| twostep_sync_errors_total | counter | realm, kind | failed sync actions or passes, by error kind |
| twostep_keycloak_request_seconds | histogram | method | admin REST request latency (not in the textfile) |
| twostep_sync_up | gauge | realm | 1 when the last pass completed and every action succeeded |
| twostep_sync_last_run_timestamp_seconds | gauge | realm | end of the last pass, whatever its outcome |
| twostep_sync_last_success_timestamp_seconds | gauge | realm | end of the last fully successful pass |
| twostep_bypass_next_end_timestamp_seconds | gauge | realm | earliest end among the bypasses still in force |
| twostep_bypass_most_overdue_seconds | gauge | realm | now minus the most overdue end still in force (0 if none) |
| twostep_help_requests_open | gauge | realm | open help requests seen by the last sync pass (damaged included) |
| twostep_help_request_oldest_age_seconds | gauge | realm | now minus asked_at of the oldest open request (0 if none) |

`twostep_bypass_most_overdue_seconds` is computed when scraped, from the ends the last pass read:
if the sync stops ending bypasses (loop stuck, Keycloak unreachable) it keeps growing, which is
what the alert `TwostepBypassOverdue` watches. Sync-state gauges appear only in a process that ran
a sync pass, so the web app never exports a stale "last success".
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    start_http_server,
    write_to_textfile,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from .audit import EndKind
from .errors import (
    BadRequest,
    ConfigError,
    Conflict,
    Forbidden,
    InvalidInput,
    KeycloakUnavailable,
    NotFound,
    TwostepError,
    Unauthorized,
)

# `x_created` series double every counter for no use here (and confuse the textfile collector).
disable_created_metrics()  # type: ignore[no-untyped-call]

CONTENT_TYPE = CONTENT_TYPE_LATEST
REGISTRY = CollectorRegistry(auto_describe=True)

BYPASS_EXPIRED = Counter("twostep_bypass_expired", "Bypasses ended because their time was up.",
                         ["realm"], registry=REGISTRY)
BYPASS_ENDED_EARLY = Counter("twostep_bypass_ended_early",
                             "Bypasses ended early because the user enrolled a new OTP device.",
                             ["realm"], registry=REGISTRY)
ENFORCEMENT_ACTIONS = Counter("twostep_enforcement_actions",
                              "Users given CONFIGURE_TOTP by the enforcement pass.", ["realm"], registry=REGISTRY)
DRIFT_REPAIRED = Counter("twostep_drift_repaired", "Drift repairs: hand-set or group bypass markers, user "
                         "profile declarations, the login flow.", ["realm"], registry=REGISTRY)
SYNC_ERRORS = Counter("twostep_sync_errors", "Failed sync actions or passes, by error kind.",
                      ["realm", "kind"], registry=REGISTRY)
KEYCLOAK_REQUEST = Histogram("twostep_keycloak_request_seconds", "Keycloak admin REST request latency.",
                             ["method"], registry=REGISTRY,
                             buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))

# Keyed by the sync's action kinds (sync/plan.py ActionKind); a bypass's ends are EndKind's values.
_ACTION_COUNTERS: dict[str, Counter] = {
    EndKind.EXPIRE: BYPASS_EXPIRED, EndKind.END_EARLY: BYPASS_ENDED_EARLY, "enforce": ENFORCEMENT_ACTIONS,
    "drift_user": DRIFT_REPAIRED, "drift_group": DRIFT_REPAIRED, "repair_profile": DRIFT_REPAIRED,
    "repair_flow": DRIFT_REPAIRED}
_CARRIED = {"twostep_bypass_expired": BYPASS_EXPIRED, "twostep_bypass_ended_early": BYPASS_ENDED_EARLY,
            "twostep_enforcement_actions": ENFORCEMENT_ACTIONS, "twostep_drift_repaired": DRIFT_REPAIRED,
            "twostep_sync_errors": SYNC_ERRORS}

_KINDS: tuple[tuple[type[TwostepError], str], ...] = (
    (KeycloakUnavailable, "unavailable"), (Unauthorized, "unauthorized"), (Forbidden, "forbidden"),
    (NotFound, "not_found"), (Conflict, "conflict"), (BadRequest, "bad_request"),
    (InvalidInput, "invalid_input"), (ConfigError, "config"),
)


def error_kind(exc: BaseException) -> str:
    """A small fixed set of label values (never the message: unbounded, and it may quote input)."""
    for cls, kind in _KINDS:
        if isinstance(exc, cls):
            return kind
    return "other" if isinstance(exc, TwostepError) else "internal"


@dataclass
class _RealmState:
    up: bool = False
    last_run: float | None = None
    last_success: float | None = None
    active: int | None = None
    next_end: float | None = None      # earliest end (epoch s) among bypasses still in force
    help_open: int | None = None       # open help requests seen by the last pass
    help_oldest: float | None = None   # asked_at (epoch s) of the oldest readable open request


class SyncStateCollector(Collector):
    """The sync's gauges; the most overdue end is computed at collect time with `clock` (injectable)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._realms: dict[str, _RealmState] = {}

    def state(self, realm: str) -> _RealmState:
        with self._lock:
            return self._realms.setdefault(realm, _RealmState())

    def reset(self) -> None:
        with self._lock:
            self._realms.clear()

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        with self._lock:
            realms = dict(self._realms)
        fams = {
            "up": GaugeMetricFamily("twostep_sync_up", "1 when the last sync pass completed and every action "
                                    "succeeded.", labels=["realm"]),
            "last_run": GaugeMetricFamily("twostep_sync_last_run_timestamp_seconds",
                                          "When the last sync pass ended, whatever its outcome.", labels=["realm"]),
            "last_success": GaugeMetricFamily("twostep_sync_last_success_timestamp_seconds",
                                              "When the last fully successful sync pass ended.", labels=["realm"]),
            "active": GaugeMetricFamily("twostep_bypass_active", "Active bypasses seen by the last sync pass.",
                                        labels=["realm"]),
            "next_end": GaugeMetricFamily("twostep_bypass_next_end_timestamp_seconds",
                                          "Earliest end among the bypasses still in force.", labels=["realm"]),
            "overdue": GaugeMetricFamily("twostep_bypass_most_overdue_seconds",
                                         "Seconds since the end of the most overdue bypass still in force "
                                         "(0 if none): grows while the sync does not end it.", labels=["realm"]),
            "help_open": GaugeMetricFamily("twostep_help_requests_open", "Open help requests (\"I lost my phone\") "
                                           "seen by the last sync pass, damaged entries included.", labels=["realm"]),
            "help_age": GaugeMetricFamily("twostep_help_request_oldest_age_seconds",
                                          "Seconds since the oldest open help request was asked (0 if none): "
                                          "grows while nobody answers it.", labels=["realm"]),
        }
        for realm, st in sorted(realms.items()):
            if st.help_open is not None:
                fams["help_open"].add_metric([realm], float(st.help_open))
                age = max(0.0, now - st.help_oldest) if st.help_oldest is not None else 0.0
                fams["help_age"].add_metric([realm], age)
            if st.last_run is not None:
                fams["up"].add_metric([realm], 1.0 if st.up else 0.0)
                fams["last_run"].add_metric([realm], st.last_run)
            if st.last_success is not None:
                fams["last_success"].add_metric([realm], st.last_success)
            if st.active is not None:
                fams["active"].add_metric([realm], float(st.active))
            if st.next_end is not None:
                fams["next_end"].add_metric([realm], st.next_end)
            if st.last_run is not None or st.next_end is not None:
                overdue = max(0.0, now - st.next_end) if st.next_end is not None else 0.0
                fams["overdue"].add_metric([realm], overdue)
        for fam in fams.values():
            if fam.samples:
                yield fam

    def describe(self) -> Iterable[Metric]:
        return []


SYNC_STATE = SyncStateCollector()
REGISTRY.register(SYNC_STATE)


# -- recording (called by sync/ and the Keycloak adapter) --------------------------------------------

def observe_request(method: str, seconds: float) -> None:
    KEYCLOAK_REQUEST.labels(method=method).observe(seconds)


def record_action(realm: str, kind: str) -> None:
    counter = _ACTION_COUNTERS.get(kind)
    if counter is not None:
        counter.labels(realm=realm).inc()


def record_error(realm: str, kind: str) -> None:
    SYNC_ERRORS.labels(realm=realm, kind=kind).inc()


def record_pass(realm: str, *, ok: bool, active: int, next_end: float | None, now: float | None = None) -> None:
    """A pass that read the realm: `next_end` is the earliest end among bypasses still in force after it
    (including any it failed to end)."""
    t = time.time() if now is None else now
    st = SYNC_STATE.state(realm)
    with SYNC_STATE._lock:
        st.up, st.last_run, st.active, st.next_end = ok, t, active, next_end
        if ok:
            st.last_success = t


def record_help(realm: str, *, open_count: int, oldest: float | None) -> None:
    """The help request queue as a sync pass read it; the oldest one's age is computed when scraped."""
    st = SYNC_STATE.state(realm)
    with SYNC_STATE._lock:
        st.help_open, st.help_oldest = open_count, oldest


def record_failed_pass(realm: str, now: float | None = None) -> None:
    """A pass that could not read the realm: what is known about pending ends stays as it was."""
    st = SYNC_STATE.state(realm)
    with SYNC_STATE._lock:
        st.up, st.last_run = False, time.time() if now is None else now


# -- exposing ----------------------------------------------------------------------------------------

def exposition(*extra: CollectorRegistry) -> bytes:
    """This process's metrics in the text format (plus any extra registries), for a /metrics handler."""
    return b"".join(generate_latest(r) for r in (REGISTRY, *extra))


class _Bridge(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()

    def describe(self) -> Iterable[Metric]:
        return []


def attach(registry: CollectorRegistry) -> None:
    """Make `registry` (e.g. the web app's own) also serve the metrics of this module."""
    registry.register(_Bridge())


def serve(port: int, host: str = "127.0.0.1") -> Any:
    """Serve /metrics over HTTP in a daemon thread; returns the server (call .shutdown() to stop)."""
    server, _thread = start_http_server(port, addr=host, registry=REGISTRY)
    return server


class _TextfileView(Collector):
    """Everything but the latency histogram: per-run buckets cannot be carried across cron runs."""

    def collect(self) -> Iterator[Metric]:
        for metric in REGISTRY.collect():
            if metric.name != "twostep_keycloak_request_seconds":
                yield metric

    def describe(self) -> Iterable[Metric]:
        return []


def load_textfile(path: str) -> None:
    """Carry the previous run's counters, last success and pending end over into this process
    (cron runs are separate processes). A missing or unreadable file starts from zero."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        written = Path(path).stat().st_mtime  # the ages in the file were computed then
        families = list(text_string_to_metric_families(text))
    except (OSError, ValueError):
        return
    for fam in families:
        for sample in fam.samples:
            realm = sample.labels.get("realm")
            if realm is None:
                continue
            counter = _CARRIED.get(fam.name)
            if counter is not None and sample.name.endswith("_total") and sample.value > 0:
                labels = {"realm": realm, **({"kind": sample.labels["kind"]} if "kind" in sample.labels else {})}
                counter.labels(**labels).inc(sample.value)
                continue
            st = SYNC_STATE.state(realm)
            with SYNC_STATE._lock:
                if sample.name == "twostep_sync_last_success_timestamp_seconds":
                    st.last_success = sample.value
                elif sample.name == "twostep_bypass_next_end_timestamp_seconds":
                    st.next_end = sample.value
                elif sample.name == "twostep_bypass_active":
                    st.active = int(sample.value)
                elif sample.name == "twostep_help_requests_open" and st.help_open is None:
                    # A cron run that fails before reading the queue keeps the last count (and its age).
                    st.help_open = int(sample.value)
                elif sample.name == "twostep_help_request_oldest_age_seconds" and sample.value > 0:
                    st.help_oldest = written - sample.value


def write_textfile(path: str) -> None:
    """The textfile-collector file, replaced atomically by prometheus_client (a temporary file beside
    it, then a rename), world-readable so node_exporter can read it."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_TextfileView())
    # The temporary file is made with the process umask (0077 under systemd): widen it for this one
    # write, so the file is 0644 from the moment of the rename. The sync creates no other file
    # meanwhile (its audit file is opened with an explicit 0600, which a 022 umask keeps).
    old = os.umask(0o022)
    try:
        write_to_textfile(path, registry)
    finally:
        os.umask(old)


def reset_for_tests() -> None:
    """Forget every value (tests run several passes in one process)."""
    SYNC_STATE.reset()
    for counter in {*_ACTION_COUNTERS.values(), SYNC_ERRORS}:
        counter.clear()
    KEYCLOAK_REQUEST.clear()
