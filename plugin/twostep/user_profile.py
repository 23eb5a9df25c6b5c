"""The user-profile rule: twostep's record attributes are declared, admin-only, in their own group.

Setup applies it and sync repairs with it; both read it here, below them.
"""

from __future__ import annotations

import copy
from typing import Any

from .policy import ADMIN_ONLY_ATTRS, PROFILE_GROUP

JSON = Any
ADMIN_ONLY = {"view": ["admin"], "edit": ["admin"]}


def desired_profile(profile: JSON) -> JSON:
    """The realm's user profile with our declarations added or repaired (the input is not changed)."""
    want = copy.deepcopy(profile)
    groups = want.setdefault("groups", [])
    if not any(g.get("name") == PROFILE_GROUP for g in groups):
        groups.append({"name": PROFILE_GROUP, "displayHeader": "Two-step authentication (admin only)",
                       "displayDescription": "Records of bypasses and admin-made backup codes"})
    attrs = want.setdefault("attributes", [])
    by_name = {a["name"]: a for a in attrs}
    for name in ADMIN_ONLY_ATTRS:
        decl = by_name.get(name)
        if decl is None:
            attrs.append({"name": name, "displayName": name, "permissions": copy.deepcopy(ADMIN_ONLY),
                          "multivalued": False, "group": PROFILE_GROUP, "validations": {}, "annotations": {}})
            continue
        # A declaration someone widened (user may view/edit) or made required is damage: repair it.
        decl["permissions"] = copy.deepcopy(ADMIN_ONLY)
        decl.pop("required", None)
        decl.pop("selector", None)
    return want
