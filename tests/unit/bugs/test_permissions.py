"""The role matrix and how overrides combine with it (no servers)."""

from __future__ import annotations

import pytest

from bugnet_common import errors
from bugs.access import PERMISSIONS, ROLE_DEFAULTS, ROLES, Access, effective_permissions
from bugs.models import Project

MEMBER = {"bugs.view", "bugs.create", "bugs.edit", "bugs.assign", "comments.create",
          "comments.internal", "analytics.view", "team.view"}


def test_the_spec_names_sixteen_permissions_and_three_roles() -> None:
    assert len(PERMISSIONS) == len(set(PERMISSIONS)) == 16
    assert ROLES == ("owner", "admin", "member")


def test_owner_holds_everything() -> None:
    assert effective_permissions("owner", {}) == frozenset(PERMISSIONS)


def test_admin_holds_everything_but_deleting_the_project() -> None:
    assert effective_permissions("admin", {}) == frozenset(PERMISSIONS) - {"project.delete"}


def test_member_views_creates_edits_assigns_comments_and_views_analytics_and_team() -> None:
    assert effective_permissions("member", {}) == MEMBER
    assert not {"bugs.delete", "labels.manage", "team.manage", "settings.manage",
                "api_key.manage", "integrations.manage", "changelogs.manage",
                "project.delete"} & effective_permissions("member", {})


def test_every_role_default_is_a_known_permission() -> None:
    for role in ROLES:
        assert ROLE_DEFAULTS[role] <= set(PERMISSIONS)


def test_overrides_grant_and_deny_on_top_of_the_role() -> None:
    got = effective_permissions("member", {"labels.manage": True, "bugs.edit": False})
    assert got == (MEMBER | {"labels.manage"}) - {"bugs.edit"}
    assert "project.delete" in effective_permissions("admin", {"project.delete": True})
    assert "team.manage" not in effective_permissions("admin", {"team.manage": False})


def test_overrides_that_repeat_the_default_change_nothing() -> None:
    assert effective_permissions("member", {"bugs.view": True, "bugs.delete": False}) == MEMBER


def test_the_owners_permissions_cannot_be_reduced() -> None:
    assert effective_permissions("owner", {"project.delete": False, "bugs.view": False}) \
        == frozenset(PERMISSIONS)


def test_unknown_permission_names_are_never_granted() -> None:
    assert effective_permissions("member", {"bugs.fly": True}) == MEMBER


@pytest.mark.parametrize("role", ROLES)
def test_access_requires_exactly_the_effective_permissions(role: str) -> None:
    perms = effective_permissions(role, {})
    access = Access(project=Project(id="p", slug="p", name="P", api_key_hash="h",
                                    api_key_last4="abcd"),
                    user_id="u", role=role, permissions=perms)
    for permission in PERMISSIONS:
        assert access.can(permission) == (permission in perms)
        if permission in perms:
            access.require(permission)
        else:
            with pytest.raises(errors.Forbidden, match=permission):
                access.require(permission)
