"""Admin pages for the portal's foundations: the task queue and API tokens.

The queue: django-q2's own admin lets anyone with ``add_schedule`` name any importable
function for the worker to run, and anyone with a change permission on tasks re-queue one.
Here only superusers add, change, delete or re-queue, and even they only the portal's own
tasks (:mod:`portal.task_guard`). Everyone else with a view permission still sees the pages.

API tokens: only a digest is stored; the token is shown once, on the page that created
it. Staff see and revoke their own tokens; a superuser sees and revokes everyone's.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from axes import admin as axes_admin
from axes.models import AccessAttempt
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django_q import admin as q_admin
from django_q.models import Failure, OrmQ, Schedule, Success
from django_q.tasks import async_task
from knox.models import AuthToken

from portal.models import ApiToken
from portal.task_guard import schedule_validate, task_allowed, task_choices


class SuperuserWritesOnly:
    """Staff may look; only a superuser may add, change or delete."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return bool(request.user.is_superuser) and super().has_add_permission(request, *args)  # type: ignore[misc]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)


class ScheduleForm(forms.ModelForm):
    class Meta:
        model = Schedule
        fields = [f.name for f in Schedule._meta.fields if f.editable and not f.auto_created]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "func" in self.fields:
            self.fields["func"].help_text = "One of: " + ", ".join(task_choices())

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        schedule_validate(
            func=data.get("func") or "", hook=data.get("hook") or "", kwargs=data.get("kwargs") or ""
        )
        return data


class ScheduleAdmin(SuperuserWritesOnly, q_admin.ScheduleAdmin):
    form = ScheduleForm


@admin.action(
    description="Resubmit selected tasks to the queue (superusers; portal tasks only)",
    permissions=["resubmit"],
)
def resubmit_task(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    if not request.user.is_superuser:  # the action is hidden from others; this is the backstop
        modeladmin.message_user(request, "Only superusers may re-queue tasks.", messages.ERROR)
        return
    queued = refused = 0
    for task in queryset:
        if not task_allowed(task.func) or (task.hook and not task_allowed(task.hook)):
            refused += 1
            continue
        async_task(task.func, *(task.args or ()), group=task.group, hook=task.hook, **(task.kwargs or {}))
        if isinstance(task, Failure):
            task.delete()
        queued += 1
    modeladmin.message_user(request, f"Queued {queued} task(s) again.", messages.SUCCESS)
    if refused:
        modeladmin.message_user(
            request, f"{refused} task(s) refused: not one of the portal's own tasks.", messages.ERROR
        )


class ResubmitBySuperusers:
    actions = [resubmit_task]

    def has_resubmit_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)


class FailAdmin(ResubmitBySuperusers, q_admin.FailAdmin):
    pass


class TaskAdmin(ResubmitBySuperusers, q_admin.TaskAdmin):
    pass


class QueueAdmin(SuperuserWritesOnly, q_admin.QueueAdmin):
    pass


queue_admins: list[tuple[Any, type[admin.ModelAdmin]]] = [
    (Schedule, ScheduleAdmin),
    (Failure, FailAdmin),
    (Success, TaskAdmin),
    (OrmQ, QueueAdmin),
]
for model, model_admin in queue_admins:
    if admin.site.is_registered(model):
        admin.site.unregister(model)
        admin.site.register(model, model_admin)


# --- API tokens ---------------------------------------------------------------------------
class ApiTokenForm(forms.ModelForm):
    expires_in_days = forms.IntegerField(
        min_value=0,
        max_value=3650,
        help_text="0: never expires. A token is only shown once, right after it is created.",
    )

    class Meta:
        model = ApiToken
        fields = ["user"]

    def __init__(self, *args: Any, request_user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        users = get_user_model().objects.filter(is_active=True, is_staff=True)
        # A token acts as its user: staff make tokens for themselves only, or they could act
        # as a superuser through the API.
        if not request_user.is_superuser:
            users = users.filter(pk=request_user.pk)
        self.fields["user"].queryset = users  # type: ignore[attr-defined]
        self.fields["user"].initial = request_user.pk
        self.fields["expires_in_days"].initial = settings.API_TOKEN_TTL_DAYS


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["masked", "user", "created", "expiry"]
    list_select_related = ["user"]
    list_filter = ["user"]
    shown = ["masked", "user", "created", "expiry"]
    ordering = ["-created"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else queryset.filter(user=request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a token is made or revoked, never edited

    def has_delete_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        """Revoking: the owner or a superuser (the list only holds one's own tokens anyway)."""
        allowed = super().has_delete_permission(request, obj)
        return allowed and (request.user.is_superuser or obj is None or obj.user_id == request.user.pk)

    @admin.display(description="Token")
    def masked(self, obj: ApiToken) -> str:
        return obj.masked

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["user", "expires_in_days"] if obj is None else list(self.shown)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [] if obj is None else list(self.shown)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is not None:
            return super().get_form(request, obj, change=change, **kwargs)
        user = request.user

        class BoundForm(ApiTokenForm):
            def __init__(self, *args: Any, **kw: Any) -> None:
                super().__init__(*args, request_user=user, **kw)

        return BoundForm

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        days = form.cleaned_data["expires_in_days"]
        created, token = AuthToken.objects.create(
            user=obj.user, expiry=dt.timedelta(days=days) if days else None
        )
        for field in ("digest", "token_key", "created", "expiry"):
            setattr(obj, field, getattr(created, field))
        obj._state.adding = False
        request._api_token = token  # type: ignore[attr-defined] # shown once by response_add

    def response_add(
        self, request: HttpRequest, obj: ApiToken, post_url_continue: str | None = None
    ) -> HttpResponse:
        """The one page that shows the token; nothing that can read it again is kept."""
        context = {
            **self.admin_site.each_context(request),
            "title": "API token created",
            "opts": self.model._meta,
            "token": request._api_token,  # type: ignore[attr-defined]
            "object": obj,
        }
        return TemplateResponse(request, "admin/portal/apitoken/created.html", context)


if admin.site.is_registered(AuthToken):
    admin.site.unregister(AuthToken)  # knox's own page lists every user's tokens


# --- Login lockouts (django-axes) ------------------------------------------------------------
class AccessAttemptAdmin(axes_admin.AccessAttemptAdmin):
    @admin.action(description="Clean up expired attempts", permissions=["delete"])
    def cleanup_expired_attempts(self, request: HttpRequest, queryset: QuerySet) -> None:
        super().cleanup_expired_attempts(request, queryset)


if admin.site.is_registered(AccessAttempt):
    admin.site.unregister(AccessAttempt)
    admin.site.register(AccessAttempt, AccessAttemptAdmin)
