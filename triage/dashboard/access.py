"""Take the live dashboard away from open sockets whose login loses it.

A dashboard socket checks access when it connects and again on every message it receives
(``triage/consumers/dashboard.py``). In between, these signal handlers tell it: each socket
joins the channel group ``dashboard.user.<pk>``, and a logout, a change to the user (deactivated,
superuser removed, password changed, deleted) or to their groups or permissions (including the
permissions of a group they are in) sends ``dashboard.access_changed`` there after the commit.
The socket then authenticates again from its session, as an HTTP request would
(:func:`access_lost`), and closes with 4401 if access is gone. A logout names the session it
ends, so only that browser's sockets close; the user's other sessions re-check and stay open.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib import import_module
from types import SimpleNamespace
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib import auth
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models import Q
from django.db.models.signals import m2m_changed, post_save, pre_delete

from ..channel_groups import access_changed, user_group
from .permissions import can_view

logger = logging.getLogger(__name__)

# Why a socket lost access (sent to the browser in the error before the 4401 close).
SIGNED_OUT = "signed_out"  # logged out, session expired, password changed, deactivated or deleted
PERMISSION_REMOVED = "permission_removed"


class _SessionSnapshot(dict):
    """A session's stored data for ``auth.get_user``. Its flush and cycle_key are no-ops: a
    socket cannot send the browser a new cookie, so the next HTTP request does those."""

    def flush(self) -> None:
        pass

    def cycle_key(self) -> None:
        pass


def access_lost(session_key: str | None, user_pk: Any) -> str | None:
    """Why the login behind a dashboard socket no longer opens the dashboard; None if it still
    does. Reads the session store and the user afresh (nothing cached from the connect)."""
    if session_key:
        store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
        user = auth.get_user(SimpleNamespace(session=_SessionSnapshot(store.load())))
    else:  # a socket authenticated some other way: reload the user itself
        user = get_user_model()._default_manager.filter(pk=user_pk).first()
    if user is None or not user.is_authenticated or not user.is_active or user.pk != user_pk:
        return SIGNED_OUT
    if not can_view(user):
        return PERMISSION_REMOVED
    return None


def notify_users(user_pks: Iterable[Any], reason: str, session_key: str | None = None) -> None:
    """Tell the dashboard sockets of these users to re-check their access, once the change
    is committed (so the re-check reads it)."""
    pks = sorted({pk for pk in user_pks if pk is not None})
    if not pks:
        return

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        message = access_changed(reason, session_key)
        for pk in pks:
            try:
                async_to_sync(layer.group_send)(user_group(pk), message)
            except Exception:  # the socket's own re-checks still catch it
                logger.warning(
                    "could not tell user %s's dashboard sockets of an access change", pk, exc_info=True
                )

    transaction.on_commit(send)


# --- signal handlers ----------------------------------------------------------------------------


def _on_logout(sender, request, user, **kwargs) -> None:
    if user is None:
        return
    session = getattr(request, "session", None)
    notify_users([user.pk], SIGNED_OUT, session_key=getattr(session, "session_key", None))


def _on_user_saved(sender, instance, created, update_fields=None, **kwargs) -> None:
    # A login saves last_login only; that never takes access away.
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return
    notify_users([instance.pk], "account_changed")


def _on_user_deleted(sender, instance, **kwargs) -> None:
    notify_users([instance.pk], "account_deleted")


def _users_linked(through, instance) -> list[Any]:
    """Users linked to ``instance`` (a Group or Permission) through User.groups /
    User.user_permissions (the through model has one foreign key to each side)."""
    user_model = get_user_model()
    user_field = next(f for f in through._meta.fields if f.related_model is user_model)
    other_field = next(f for f in through._meta.fields if f.related_model is type(instance))
    return list(
        through.objects.filter(**{other_field.name: instance}).values_list(user_field.attname, flat=True)
    )


def _on_user_m2m(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """User.groups or User.user_permissions lost rows. Runs before the change inside its
    transaction: the members are still there to find, and the message goes after commit."""
    if action not in ("pre_remove", "pre_clear"):
        return
    if not reverse:  # user.groups.remove(...) / user.user_permissions.clear()
        users = [instance.pk]
    elif action == "pre_remove":  # group.user_set.remove(user, ...): pk_set holds the users
        users = list(pk_set or ())
    else:
        users = _users_linked(sender, instance)
    notify_users(users, PERMISSION_REMOVED)


def _members_of(groups: Q | Iterable[Any]) -> list[Any]:
    user_model = get_user_model()
    query = groups if isinstance(groups, Q) else Q(groups__in=list(groups))
    return list(user_model._default_manager.filter(query).values_list("pk", flat=True).distinct())


def _on_group_permissions(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """Group.permissions lost rows: every member of the groups concerned re-checks."""
    if action not in ("pre_remove", "pre_clear"):
        return
    if not reverse:  # group.permissions.remove(...)
        users = _members_of(Q(groups=instance))
    elif action == "pre_remove":  # permission.group_set.remove(group, ...)
        users = _members_of(pk_set or ())
    else:
        users = _members_of(Q(groups__permissions=instance))
    notify_users(users, PERMISSION_REMOVED)


def _on_group_deleted(sender, instance, **kwargs) -> None:
    # Deleting a group removes its memberships without m2m_changed.
    notify_users(_members_of(Q(groups=instance)), PERMISSION_REMOVED)


def _on_permission_deleted(sender, instance, **kwargs) -> None:
    notify_users(
        _members_of(Q(user_permissions=instance) | Q(groups__permissions=instance)), PERMISSION_REMOVED
    )


def connect_signals() -> None:
    """Called from TriageConfig.ready()."""
    user_model = get_user_model()
    user_logged_out.connect(_on_logout, dispatch_uid="triage.dashboard.access.logout")
    post_save.connect(_on_user_saved, sender=user_model, dispatch_uid="triage.dashboard.access.user_saved")
    pre_delete.connect(
        _on_user_deleted, sender=user_model, dispatch_uid="triage.dashboard.access.user_deleted"
    )
    m2m_changed.connect(
        _on_user_m2m, sender=user_model.groups.through, dispatch_uid="triage.dashboard.access.user_groups"
    )
    m2m_changed.connect(
        _on_user_m2m,
        sender=user_model.user_permissions.through,
        dispatch_uid="triage.dashboard.access.user_permissions",
    )
    m2m_changed.connect(
        _on_group_permissions,
        sender=Group.permissions.through,
        dispatch_uid="triage.dashboard.access.group_permissions",
    )
    pre_delete.connect(_on_group_deleted, sender=Group, dispatch_uid="triage.dashboard.access.group_deleted")
    pre_delete.connect(
        _on_permission_deleted, sender=Permission, dispatch_uid="triage.dashboard.access.permission_deleted"
    )
