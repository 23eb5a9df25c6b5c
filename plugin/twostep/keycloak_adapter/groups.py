"""Groups: lookup by path or attribute, members, membership."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from ..errors import Conflict, NotFound
from .connection import JSON, Connection, q


class GroupCalls(Connection):
    """/groups/..., /group-by-path/..., /users/{id}/groups/..."""

    def find_group_by_path(self, path: str) -> JSON | None:
        try:
            return self.get(f"/group-by-path/{quote(path.strip('/'), safe='/')}", f"group {path!r}")
        except NotFound:
            return None

    def find_top_group(self, name: str, brief: bool = True) -> JSON | None:
        """The top-level group `name`, by one search: a missing group answers [] (group-by-path's
        404 would cost a second call, the check whether the realm itself is gone). Not `brief`: with
        its attributes."""
        found = self.get("/groups", f"find group {name!r}", search=name, exact="true",
                         briefRepresentation=str(brief).lower(), first=0, max=10) or []
        top = [g for g in found if g.get("path") == "/" + name]
        return top[0] if top else None

    def group_members_page(self, group_id: str, first: int, max_results: int, brief: bool = True) -> list[JSON]:
        """One page of a group's members (one call; iter_group_members walks them all)."""
        return list(self.get(f"/groups/{q(group_id)}/members", "group members", first=first, max=max_results,
                             briefRepresentation=str(brief).lower()) or [])

    def group_children(self, group_id: str) -> list[JSON]:
        return list(self.paged(f"/groups/{q(group_id)}/children", "subgroups"))

    def iter_group_members(self, group_id: str, page_size: int = 100, brief: bool = True) -> Iterator[JSON]:
        return self.paged(f"/groups/{q(group_id)}/members", "group members", page_size,
                          briefRepresentation=str(brief).lower())

    def user_groups(self, user_id: str) -> list[JSON]:
        return list(self.get(f"/users/{q(user_id)}/groups", "user groups") or [])

    def groups_with_attribute(self, name: str, value: str) -> list[JSON]:
        """Groups (at any depth) carrying attribute `name` = `value`."""
        found: list[JSON] = []
        stack = list(self.paged("/groups", f"search groups with {name}={value}", 100,
                                q=f"{name}:{value}", briefRepresentation="false", populateHierarchy="true"))
        while stack:
            g = stack.pop()
            if value in ((g.get("attributes") or {}).get(name) or []):
                found.append(g)
            stack.extend(g.get("subGroups") or [])
        return found

    def get_group(self, group_id: str) -> JSON:
        return self.get(f"/groups/{q(group_id)}", f"group {group_id!r}")

    def update_group(self, group_id: str, rep: JSON) -> None:
        self.put(f"/groups/{q(group_id)}", rep, f"update group {rep.get('path', group_id)!r}")

    def create_group(self, name: str) -> str:
        """A top-level group; its id. A concurrent create (409) answers with the existing one."""
        try:
            return self.created_id(self.post("/groups", {"name": name}, f"create group {name!r}"))
        except Conflict:
            found = self.find_group_by_path(name)
            if found is None:
                raise
            return str(found["id"])

    def create_child_group(self, parent_id: str, name: str, attributes: dict[str, list[str]] | None = None) -> str:
        """A subgroup; its id. Sibling names are unique: a second create of one name answers 409."""
        body: JSON = {"name": name, "attributes": attributes or {}}
        return self.created_id(self.post(f"/groups/{q(parent_id)}/children", body, f"create group {name!r}"))

    def iter_child_groups(self, group_id: str, page_size: int = 100, brief: bool = True,
                          **params: Any) -> Iterator[JSON]:
        """The subgroups of one group, page by page (with their attributes unless `brief`, and
        `subGroupCount` either way)."""
        return self.paged(f"/groups/{q(group_id)}/children", "subgroups", page_size,
                          briefRepresentation=str(brief).lower(), **params)

    def iter_top_groups(self, limit: int) -> list[JSON]:
        """The first `limit` top-level groups (brief), one call."""
        return list(self.get("/groups", "groups", first=0, max=limit, briefRepresentation="true") or [])

    def search_groups(self, search: str, max_results: int = 100) -> list[JSON]:
        """Top-level groups whose subtree holds a group named like `search`, the path down to each
        match in `subGroups` (Keycloak's `GET /groups?search=`; `max` counts the matches)."""
        return list(self.get("/groups", "search groups", search=search, briefRepresentation="false",
                             first=0, max=max_results) or [])

    def delete_group(self, group_id: str) -> None:
        self.delete(f"/groups/{q(group_id)}", "delete group")

    def join_group(self, user_id: str, group_id: str) -> None:
        self.put(f"/users/{q(user_id)}/groups/{q(group_id)}", None, "join group")

    def leave_group(self, user_id: str, group_id: str) -> None:
        self.delete(f"/users/{q(user_id)}/groups/{q(group_id)}", "leave group")
