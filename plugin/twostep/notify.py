"""Tell a user by e-mail when an admin weakened or reset their second factor.

Mail goes through the realm's own SMTP settings (`smtpServer` of the realm), so a stolen admin
session cannot quietly change an account: the owner hears of it. Keycloak masks the SMTP password
in the realm representation; when SMTP auth is on the password comes from `settings.smtp_password`.
Messages never carry a secret: no code, no seed, no link that acts on the account.

Language: the recipient's `locale` attribute, else the realm's default locale (when the realm has
internationalization on), else en; templates exist in en (templates/email/), de and ru
(templates/email/<lang>/). Times are worded by twostep.timefmt in the language of the template used.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from pathlib import Path
from typing import Any, Protocol

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

from . import audit, timefmt
from .audit import AuditSink
from .errors import InvalidInput
from .keycloak_adapter import JSON, KeycloakClient
from .policy import utc_iso

TEMPLATES = Path(__file__).resolve().parent / "templates" / "email"
SUBJECTS = {  # en; de and ru below (same keys)
    "codes.generate": "New backup codes were made for your account",
    "codes.revoke": "Your backup codes were revoked",
    "otp.reset": "Your authenticator device was reset",
    "bypass.grant": "Two-step sign-in was paused for your account",
    "bypass.extend": "The pause of two-step sign-in on your account was extended",
    "device.change": "Your authenticator device was changed",
    "enroll.reminder": "Please set up two-step sign-in for your account",
    "help.grant": "Your request for help with two-step sign-in was answered",
    "help.dismiss": "Your request for help with two-step sign-in was declined",
    "help.new": "A user asks for help with two-step sign-in",
}
LOCALIZED_SUBJECTS: dict[str, dict[str, str]] = {
    "de": {
        "codes.generate": "Für Ihr Konto wurden neue Backup-Codes erstellt",
        "codes.revoke": "Ihre Backup-Codes wurden widerrufen",
        "otp.reset": "Ihr Authenticator-Gerät wurde zurückgesetzt",
        "bypass.grant": "Die Zwei-Schritt-Anmeldung wurde für Ihr Konto ausgesetzt",
        "bypass.extend": "Die Aussetzung der Zwei-Schritt-Anmeldung für Ihr Konto wurde verlängert",
        "device.change": "Ihr Authenticator-Gerät wurde geändert",
        "enroll.reminder": "Bitte richten Sie die Zwei-Schritt-Anmeldung für Ihr Konto ein",
        "help.grant": "Ihre Bitte um Hilfe bei der Zwei-Schritt-Anmeldung wurde beantwortet",
        "help.dismiss": "Ihre Bitte um Hilfe bei der Zwei-Schritt-Anmeldung wurde abgelehnt",
        "help.new": "Ein Benutzer bittet um Hilfe bei der Zwei-Schritt-Anmeldung",
    },
    "ru": {
        "codes.generate": "Для вашей учётной записи созданы новые резервные коды",
        "codes.revoke": "Ваши резервные коды отозваны",
        "otp.reset": "Ваше устройство-аутентификатор сброшено",
        "bypass.grant": "Двухэтапный вход для вашей учётной записи приостановлен",
        "bypass.extend": "Приостановка двухэтапного входа для вашей учётной записи продлена",
        "device.change": "Ваше устройство-аутентификатор изменено",
        "enroll.reminder": "Пожалуйста, настройте двухэтапный вход для вашей учётной записи",
        "help.grant": "Ваш запрос помощи по двухэтапному входу рассмотрен",
        "help.dismiss": "Ваш запрос помощи по двухэтапному входу отклонён",
        "help.new": "Пользователь просит помощи по двухэтапному входу",
    },
}
# Detail keys a template may use; anything else is refused, so a caller can't slip a secret in.
_ALLOWED_DETAILS = {"count", "reason", "until", "removed", "label", "reset_device",
                    "requester", "asked_at", "message"}

_env = Environment(  # noqa: S701 - plain-text mail, not HTML
    loader=FileSystemLoader(str(TEMPLATES)), undefined=StrictUndefined, keep_trailing_newline=True,
    trim_blocks=True, lstrip_blocks=True,
)


def _template_name(kind: str) -> str:
    return kind.replace(".", "_") + ".txt"


def _check(kind: str, details: dict[str, Any]) -> None:
    if kind not in SUBJECTS:
        raise InvalidInput(f"unknown notification kind {kind!r}")
    bad = sorted(k for k in details if k not in _ALLOWED_DETAILS)
    if bad:
        raise InvalidInput(f"notification details not allowed: {', '.join(bad)}")


def render(kind: str, user: JSON, realm: str, details: dict[str, Any], actor: str,
           now: datetime, locale: str | None = None) -> tuple[str, str]:
    """(subject, body) for one notification, in `locale` (else the user's `locale` attribute, else en);
    a kind without a template in that language falls back to the English one, times included."""
    _check(kind, details)
    full = " ".join(str(user.get(k) or "") for k in ("firstName", "lastName")).strip()
    name = full or user.get("username", "")
    lang = timefmt.negotiate(locale, timefmt.user_locale(user))
    tpl = None
    if lang != timefmt.DEFAULT and kind in LOCALIZED_SUBJECTS.get(lang, {}):
        try:
            tpl = _env.get_template(f"{lang}/{_template_name(kind)}")
        except TemplateNotFound:
            tpl = None
    if tpl is None:
        lang = timefmt.DEFAULT
        try:
            tpl = _env.get_template(_template_name(kind))
        except TemplateNotFound:
            raise InvalidInput(f"no e-mail template for {kind!r}") from None
    until = details.get("until")
    body = tpl.render(name=name, username=user.get("username", ""), realm=realm, actor=actor,
                      when=timefmt.describe_on(now, now, lang), when_iso=utc_iso(now),
                      until=timefmt.friendly(until, now, lang, "until") if until else None,
                      deadline=timefmt.friendly(until, now, lang, "deadline") if until else None,
                      asked=timefmt.friendly(details["asked_at"], now, lang, "on") if details.get("asked_at") else None,
                      details={k: details.get(k) for k in _ALLOWED_DETAILS})
    subject = SUBJECTS[kind] if lang == timefmt.DEFAULT else LOCALIZED_SUBJECTS[lang][kind]
    return subject, body


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes", "on")


def _send(smtp: dict[str, str], password: str | None, msg: EmailMessage, timeout: float) -> None:
    host = smtp.get("host", "")
    use_ssl = _truthy(smtp.get("ssl", "false"))
    port = int(smtp.get("port") or (465 if use_ssl else 25))
    context = ssl.create_default_context()
    conn: smtplib.SMTP
    if use_ssl:
        conn = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        conn = smtplib.SMTP(host, port, timeout=timeout)
    try:
        conn.ehlo()
        if not use_ssl and _truthy(smtp.get("starttls", "false")):
            conn.starttls(context=context)
            conn.ehlo()
        if _truthy(smtp.get("auth", "false")):
            conn.login(smtp.get("user", ""), password or "")
        conn.send_message(msg)
    finally:
        try:
            conn.quit()
        except smtplib.SMTPException:
            conn.close()


def notify_user(kc: KeycloakClient, user: dict[str, Any], kind: str, details: dict[str, Any],
                audit_sink: AuditSink, actor: str, now: datetime) -> str:
    """E-mail the user about an admin action; "sent", "skipped: why" or "failed: why". Always audited.
    In the user's `locale`, else the realm's default locale, else en (one realm read, as before)."""
    _check(kind, details)
    outcome = _deliver_composed(kc, user, lambda realm_rep: render(
        kind, user, kc.realm, details, actor, now,
        timefmt.negotiate(timefmt.user_locale(user), timefmt.realm_default_locale(realm_rep))))
    result, _sep, why = outcome.partition(": ")
    audit_sink.write(audit.event(
        "notify", realm=kc.realm, actor=actor, now=now, user_id=user.get("id"), username=user.get("username"),
        outcome=result, about=kind, detail=why or None,
    ))
    return outcome


class Notifier(Protocol):
    """Tells a user about an admin action; returns "sent", "skipped: why" or "failed: why"."""

    def notify(self, kc: KeycloakClient, user: JSON, kind: str, details: dict[str, Any], audit_sink: AuditSink,
               actor: str, now: datetime) -> str: ...


class EmailNotifier:
    """The realm's own SMTP server (`notify_user`); what every command and page uses."""

    def notify(self, kc: KeycloakClient, user: JSON, kind: str, details: dict[str, Any], audit_sink: AuditSink,
               actor: str, now: datetime) -> str:
        return notify_user(kc, user, kind, details, audit_sink, actor, now)


EMAIL = EmailNotifier()


def _deliver_composed(kc: KeycloakClient, user: dict[str, Any],
                      compose: Callable[[JSON], tuple[str, str]]) -> str:
    """Send the message `compose` writes from the realm representation (read once: SMTP settings and
    the default locale), or say why not."""
    to = (user.get("email") or "").strip()
    if not to:
        return "skipped: the user has no e-mail address"
    realm_rep = kc.get_realm()
    smtp = dict(realm_rep.get("smtpServer") or {})
    if not smtp.get("host") or not smtp.get("from"):
        return "skipped: the realm has no SMTP server configured"
    password = kc.settings.smtp_password
    if _truthy(smtp.get("auth", "false")) and not password:
        return "skipped: SMTP needs a password; set TWOSTEP_SMTP_PASSWORD (Keycloak does not reveal it)"
    subject, body = compose(realm_rep)
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = formataddr((smtp.get("fromDisplayName", ""), smtp["from"]))
    msg["To"] = to
    if smtp.get("replyTo"):
        msg["Reply-To"] = formataddr((smtp.get("replyToDisplayName", ""), smtp["replyTo"]))
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=smtp["from"].rsplit("@", 1)[-1] or None)
    msg.set_content(body)
    try:
        _send(smtp, password, msg, kc.settings.timeout)
    except (OSError, smtplib.SMTPException, ValueError) as exc:
        text = str(exc).strip().splitlines()
        return f"failed: {type(exc).__name__}: {text[0][:160] if text else ''}".rstrip(": ")
    return "sent"
