"""Groups: lookup by path or attribute, members, membership."""

from __future__ import annotations

from collections.abc import Iterator
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

    def join_group(self, user_id: str, group_id: str) -> None:
        self.put(f"/users/{q(user_id)}/groups/{q(group_id)}", None, "join group")

    def leave_group(self, user_id: str, group_id: str) -> None:
        self.delete(f"/users/{q(user_id)}/groups/{q(group_id)}", "leave group")
