"""Moved to `twostep.web_client` (setup is a service below the web pages); names kept importable."""

from ..web_client import CALLBACK_PATH, WEB_CLIENT_ID, WEB_SERVICE_ROLES, desired_rep, normalize_url, plan_steps

__all__ = ["CALLBACK_PATH", "WEB_CLIENT_ID", "WEB_SERVICE_ROLES", "desired_rep", "normalize_url", "plan_steps"]
