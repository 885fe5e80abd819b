"""The permission matrix, a member's effective permissions, overrides and their reset."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from integration.bugs.team_support import join

from bugnet_common.bus import subjects
from bugs.access import PERMISSIONS, ROLE_DEFAULTS
from bugs.models import BUS


def updates(db: Any) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(BUS.outbox.c.payload).where(
            BUS.outbox.c.subject == subjects.MEMBER_UPDATED).order_by(BUS.outbox.c.seq)).scalars()
        return [json.loads(p)["data"] for p in rows]


def perms_url(slug: str, user_id: str) -> str:
    return f"/api/projects/{slug}/team/{user_id}/permissions"


def test_permission_matrix_lists_every_permission_and_each_roles_defaults(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner, member = user("Owner"), user("Member")
    slug = project(owner)["slug"]
    join(client, owner, slug, member)
    resp = client.get(f"/api/projects/{slug}/permissions", headers=member.headers)
    assert resp.status_code == 200
    data = resp.json["data"]
    assert data["permissions"] == list(PERMISSIONS)
    assert {role: set(p) for role, p in data["roles"].items()} == \
        {role: set(p) for role, p in ROLE_DEFAULTS.items()}
    assert "project.delete" not in data["roles"]["admin"]
    assert client.get(f"/api/projects/{slug}/permissions", headers=user("X").headers).status_code == 404


def test_overrides_grant_and_deny_and_take_effect_at_once(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner, member, admin = user("Owner"), user("Member"), user("Admin")
    slug = project(owner)["slug"]
    join(client, owner, slug, member)
    join(client, owner, slug, admin, "admin")
    assert client.patch(f"/api/projects/{slug}", json={"name": "X"}, headers=member.headers).status_code == 403
    resp = client.put(perms_url(slug, member.id), headers=admin.headers,
                      json={"overrides": {"settings.manage": True, "bugs.edit": False}})
    assert resp.status_code == 200, resp.json
    data = resp.json["data"]
    assert data["user_id"] == member.id and data["role"] == "member"
    assert data["overrides"] == {"bugs.edit": False, "settings.manage": True}
    assert set(data["permissions"]) == (ROLE_DEFAULTS["member"] | {"settings.manage"}) - {"bugs.edit"}
    assert client.get(perms_url(slug, member.id), headers=member.headers).json["data"] == data
    assert client.patch(f"/api/projects/{slug}", json={"name": "X"}, headers=member.headers).status_code == 200
    (event,) = updates(bugs_db)
    assert event["user_id"] == member.id and set(event["permissions"]) == set(data["permissions"])
    # An admin denied a default permission loses it too.
    client.put(perms_url(slug, admin.id), json={"overrides": {"api_key.manage": False}},
               headers=owner.headers)
    assert client.get(f"/api/projects/{slug}/api-key", headers=admin.headers).status_code == 403
    # PUT replaces the whole set; DELETE goes back to the role's defaults.
    replaced = client.put(perms_url(slug, member.id), json={"overrides": {"bugs.delete": True}},
                          headers=owner.headers).json["data"]
    assert replaced["overrides"] == {"bugs.delete": True}
    reset = client.delete(perms_url(slug, member.id), headers=owner.headers)
    assert reset.status_code == 200 and reset.json["data"]["overrides"] == {}
    assert set(reset.json["data"]["permissions"]) == ROLE_DEFAULTS["member"]
    assert client.patch(f"/api/projects/{slug}", json={"name": "Y"}, headers=member.headers).status_code == 403
    assert len(updates(bugs_db)) == 4
    assert client.delete(perms_url(slug, member.id), headers=owner.headers).status_code == 200
    assert len(updates(bugs_db)) == 4  # nothing to reset: no event


def test_overrides_refuse_unknown_permissions_the_owner_and_oneself(client, user, project, bugs_db) -> None:  # type: ignore[no-untyped-def]
    owner, member, admin = user("Owner"), user("Member"), user("Admin")
    slug = project(owner)["slug"]
    join(client, owner, slug, member)
    join(client, owner, slug, admin, "admin")
    for body in ({"overrides": {"bugs.fly": True}}, {"overrides": {"bugs.view": "yes"}},
                 {"overrides": ["bugs.view"]}, {}):
        resp = client.put(perms_url(slug, member.id), json=body, headers=owner.headers)
        assert resp.status_code == 400 and any(k.startswith("overrides") for k in resp.json["details"]), body
    unknown = client.put(perms_url(slug, member.id), json={"overrides": {"bugs.fly": True}},
                         headers=owner.headers)
    assert "bugs.fly" in unknown.json["error"]
    on_owner = client.put(perms_url(slug, owner.id), json={"overrides": {"bugs.delete": False}},
                          headers=admin.headers)
    assert on_owner.status_code == 400
    assert on_owner.json["error"] == "The owner's permissions cannot be reduced"
    own = client.put(perms_url(slug, admin.id), json={"overrides": {"project.delete": True}},
                     headers=admin.headers)
    assert own.status_code == 403
    assert client.put(perms_url(slug, admin.id), json={"overrides": {"bugs.view": True}},
                      headers=member.headers).status_code == 403
    assert client.get(perms_url(slug, "not-a-uuid"), headers=owner.headers).status_code == 404
    assert client.get(perms_url(slug, user("Outsider").id), headers=owner.headers).status_code == 404
    owner_perms = client.get(perms_url(slug, owner.id), headers=member.headers).json["data"]
    assert owner_perms["permissions"] == list(PERMISSIONS) and owner_perms["overrides"] == {}
    assert updates(bugs_db) == []


def test_a_member_granted_team_manage_can_manage_the_team(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner, lead, other = user("Owner"), user("Lead"), user("Other")
    slug = project(owner)["slug"]
    join(client, owner, slug, lead)
    join(client, owner, slug, other)
    assert client.get(f"/api/projects/{slug}/team/invitations", headers=lead.headers).status_code == 403
    client.put(perms_url(slug, lead.id), json={"overrides": {"team.manage": True}}, headers=owner.headers)
    assert client.get(f"/api/projects/{slug}/team/invitations", headers=lead.headers).status_code == 200
    invited = client.post(f"/api/projects/{slug}/team/invitations", headers=lead.headers,
                          json={"email": "newcomer@example.com", "role": "member"})
    assert invited.status_code == 201
    # ...within their own rank: no admins made, by role change or by invitation.
    assert client.patch(f"/api/projects/{slug}/team/{other.id}", json={"role": "admin"},
                        headers=lead.headers).status_code == 403
    assert client.post(f"/api/projects/{slug}/team/invitations", headers=lead.headers,
                       json={"email": "boss@example.com", "role": "admin"}).status_code == 403
    # ...but a member denied team.view no longer sees the team.
    client.put(perms_url(slug, other.id), json={"overrides": {"team.view": False}}, headers=owner.headers)
    assert client.get(f"/api/projects/{slug}/team", headers=other.headers).status_code == 403


def test_nobody_grants_a_permission_they_do_not_hold(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner, admin, member = user("Owner"), user("Admin"), user("Member")
    slug = project(owner)["slug"]
    join(client, owner, slug, admin, role="admin")
    join(client, owner, slug, member)
    refused = client.put(perms_url(slug, member.id), json={"overrides": {"project.delete": True}},
                         headers=admin.headers)
    assert refused.status_code == 403 and "project.delete" in refused.json["error"]
    assert client.get(perms_url(slug, member.id), headers=owner.headers).json["data"]["overrides"] == {}
    allowed = client.put(perms_url(slug, member.id), json={"overrides": {"labels.manage": True}},
                         headers=admin.headers)
    assert allowed.status_code == 200


def test_a_member_with_team_manage_cannot_remove_an_admin(client, user, project) -> None:  # type: ignore[no-untyped-def]
    owner, admin, lead = user("Owner"), user("Admin"), user("Lead")
    slug = project(owner)["slug"]
    join(client, owner, slug, admin, role="admin")
    join(client, owner, slug, lead)
    client.put(perms_url(slug, lead.id), json={"overrides": {"team.manage": True}}, headers=owner.headers)
    resp = client.delete(f"/api/projects/{slug}/team/{admin.id}", headers=lead.headers)
    assert resp.status_code == 403
    team = client.get(f"/api/projects/{slug}/team", headers=owner.headers).json["data"]
    assert admin.id in {m["user_id"] for m in team}
