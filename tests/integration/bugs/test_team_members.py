"""The team list, role changes, ownership transfer, removal and leaving."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from integration.bugs.team_support import join, outbox

from bugnet_common.bus import subjects
from bugs.access import ROLE_DEFAULTS
from bugs.models import Member, PermissionOverride


def roles(client: Any, slug: str, who: Any) -> dict[str, str]:
    resp = client.get(f"/api/projects/{slug}/team", headers=who.headers)
    assert resp.status_code == 200, resp.json
    return {m["user_id"]: m["role"] for m in resp.json["data"]}


def test_team_lists_the_owner_first_then_by_join_date_with_pages(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner = user("Owner")
    slug = project(owner)["slug"]
    people = [user(f"Person {i}") for i in range(3)]
    for i, person in enumerate(people):
        join(client, owner, slug, person, "admin" if i == 1 else "member")
    resp = client.get(f"/api/projects/{slug}/team?limit=3", headers=people[0].headers)
    assert resp.status_code == 200
    assert resp.json["meta"] == {"page": 1, "limit": 3, "total": 4, "pages": 2}
    first = resp.json["data"][0]
    assert set(first) >= {"user_id", "email", "display_name", "role", "joined_at"}
    assert (first["user_id"], first["email"], first["display_name"], first["role"]) == \
        (owner.id, owner.email, "Owner", "owner")
    assert first["joined_at"].endswith("Z")
    assert [m["user_id"] for m in resp.json["data"][1:]] == [people[0].id, people[1].id]
    page2 = client.get(f"/api/projects/{slug}/team?limit=3&page=2", headers=owner.headers).json
    assert [m["user_id"] for m in page2["data"]] == [people[2].id]
    assert client.get(f"/api/projects/{slug}/team", headers=user("Stranger").headers).status_code == 404


def test_admin_changes_roles_and_each_change_emits_member_updated(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner, admin, member = user("Owner"), user("Admin"), user("Member")
    slug = project(owner)["slug"]
    join(client, owner, slug, admin, "admin")
    join(client, owner, slug, member)
    resp = client.patch(f"/api/projects/{slug}/team/{member.id}", json={"role": "admin"},
                        headers=admin.headers)
    assert resp.status_code == 200 and resp.json["data"]["role"] == "admin"
    assert resp.json["data"]["email"] == member.email
    (event,) = outbox(bugs_db, subjects.MEMBER_UPDATED)
    assert event["user_id"] == member.id and event["role"] == "admin"
    assert set(event["permissions"]) == ROLE_DEFAULTS["admin"]
    back = client.put(f"/api/projects/{slug}/team/{member.id}", json={"role": "member"},
                      headers=owner.headers)
    assert back.status_code == 200 and roles(client, slug, owner)[member.id] == "member"
    same = client.put(f"/api/projects/{slug}/team/{member.id}", json={"role": "member"},
                      headers=owner.headers)
    assert same.status_code == 200 and len(outbox(bugs_db, subjects.MEMBER_UPDATED)) == 2


def test_role_changes_need_team_manage_and_valid_input(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner, member, other = user("Owner"), user("Member"), user("Other")
    slug = project(owner)["slug"]
    join(client, owner, slug, member)
    join(client, owner, slug, other)
    denied = client.patch(f"/api/projects/{slug}/team/{other.id}", json={"role": "admin"},
                          headers=member.headers)
    assert denied.status_code == 403 and "team.manage" in denied.json["error"]
    for body in ({"role": "superuser"}, {"role": None}, {}, {"role": ["admin"]}):
        resp = client.patch(f"/api/projects/{slug}/team/{other.id}", json=body, headers=owner.headers)
        assert resp.status_code == 400 and "role" in resp.json["details"], body
    for missing in ("not-a-uuid", user("Outsider").id):
        resp = client.patch(f"/api/projects/{slug}/team/{missing}", json={"role": "admin"},
                            headers=owner.headers)
        assert resp.status_code == 404, missing
    assert roles(client, slug, owner) == {owner.id: "owner", member.id: "member", other.id: "member"}


def test_owner_transfers_ownership_and_becomes_admin(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner, admin, member = user("Owner"), user("Admin"), user("Member")
    slug = project(owner)["slug"]
    join(client, owner, slug, admin, "admin")
    join(client, owner, slug, member)
    with bugs_db.begin() as session:  # a leftover override must not survive into ownership
        project_id = session.exec(sa.select(Member.project_id)).scalars().first()  # type: ignore[call-overload]
        session.add(PermissionOverride(project_id=project_id, user_id=member.id,
                                       permission="bugs.delete", granted=False))
    not_owner = client.patch(f"/api/projects/{slug}/team/{member.id}", json={"role": "owner"},
                             headers=admin.headers)
    assert not_owner.status_code == 403 and "owner" in not_owner.json["error"]
    resp = client.patch(f"/api/projects/{slug}/team/{member.id}", json={"role": "owner"},
                        headers=owner.headers)
    assert resp.status_code == 200 and resp.json["data"]["role"] == "owner"
    assert roles(client, slug, owner) == {member.id: "owner", owner.id: "admin", admin.id: "admin"}
    perms = client.get(f"/api/projects/{slug}/team/{member.id}/permissions", headers=owner.headers).json
    assert perms["data"]["overrides"] == {} and "bugs.delete" in perms["data"]["permissions"]
    updates = outbox(bugs_db, subjects.MEMBER_UPDATED)
    assert [(e["user_id"], e["role"]) for e in updates] == [(member.id, "owner"), (owner.id, "admin")]
    # The new owner holds project.delete; the old one no longer does.
    assert client.delete(f"/api/projects/{slug}", headers=owner.headers).status_code == 403
    assert client.delete(f"/api/projects/{slug}", headers=member.headers).status_code == 200


def test_nobody_changes_the_owners_role_except_by_transfer(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner, admin = user("Owner"), user("Admin")
    slug = project(owner)["slug"]
    join(client, owner, slug, admin, "admin")
    by_admin = client.patch(f"/api/projects/{slug}/team/{owner.id}", json={"role": "member"},
                            headers=admin.headers)
    assert by_admin.status_code == 403
    by_self = client.patch(f"/api/projects/{slug}/team/{owner.id}", json={"role": "admin"},
                           headers=owner.headers)
    assert by_self.status_code == 409 and "transfer" in by_self.json["error"]
    assert client.delete(f"/api/projects/{slug}/team/{owner.id}", headers=admin.headers).status_code == 403
    assert roles(client, slug, owner) == {owner.id: "owner", admin.id: "admin"}


def test_members_cannot_raise_their_own_role(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner, member, admin = user("Owner"), user("Member"), user("Admin")
    slug = project(owner)["slug"]
    join(client, owner, slug, member)
    join(client, owner, slug, admin, "admin")
    grant = client.put(f"/api/projects/{slug}/team/{member.id}/permissions",
                       json={"overrides": {"team.manage": True}}, headers=owner.headers)
    assert grant.status_code == 200
    raise_self = client.patch(f"/api/projects/{slug}/team/{member.id}", json={"role": "admin"},
                              headers=member.headers)
    assert raise_self.status_code == 403
    lower_self = client.patch(f"/api/projects/{slug}/team/{admin.id}", json={"role": "member"},
                              headers=admin.headers)
    assert lower_self.status_code == 200
    assert roles(client, slug, owner) == {owner.id: "owner", member.id: "member", admin.id: "member"}


def test_managers_remove_members_and_members_leave_but_the_owner_cannot(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner, admin, member, other = user("Owner"), user("Admin"), user("Member"), user("Other")
    slug = project(owner)["slug"]
    for who, role in ((admin, "admin"), (member, "member"), (other, "member")):
        join(client, owner, slug, who, role)
    assert client.delete(f"/api/projects/{slug}/team/{other.id}", headers=member.headers).status_code == 403
    removed = client.delete(f"/api/projects/{slug}/team/{other.id}", headers=admin.headers)
    assert removed.status_code == 200 and removed.json["data"]["user_id"] == other.id
    assert client.get(f"/api/projects/{slug}", headers=other.headers).status_code == 404
    left = client.delete(f"/api/projects/{slug}/team/{member.id}", headers=member.headers)
    assert left.status_code == 200
    owner_leaves = client.delete(f"/api/projects/{slug}/team/{owner.id}", headers=owner.headers)
    assert owner_leaves.status_code == 409 and "transfer" in owner_leaves.json["error"]
    assert client.delete(f"/api/projects/{slug}/team/{other.id}", headers=admin.headers).status_code == 404
    assert client.delete(f"/api/projects/{slug}/team/nope", headers=admin.headers).status_code == 404
    assert roles(client, slug, owner) == {owner.id: "owner", admin.id: "admin"}
    removals = outbox(bugs_db, subjects.MEMBER_REMOVED)
    assert [(e["user_id"], e["role"], e["permissions"]) for e in removals] == [
        (other.id, None, []), (member.id, None, [])]
