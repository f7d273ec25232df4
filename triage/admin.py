"""Admin for operators and auditors: every triage table is read-only here.

Clinical changes (an alert's status, a session's urgency, status or state) happen only through
the dashboard's actions (triage/dashboard/services.py), which record who, when and why in a
ClinicianAction row and the session's audit chain. An edit form here would bypass both, so
there is none. Users and groups stay editable (Django's own admin).
"""

from __future__ import annotations

from django.contrib import admin

from .models import (
    AuditEvent,
    ClinicianAction,
    EscalationAlert,
    LatencySample,
    NotificationDelivery,
    OutboxMessage,
    SecurityEvent,
    StateTransition,
    TelemetryAggregate,
    TriageSession,
    Turn,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """No add, change or delete: rows are evidence."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class TurnInline(ReadOnlyInline):
    model = Turn
    fields = (
        "index",
        "speaker",
        "text",
        "started_at",
        "ended_at",
        "asr_avg_logprob",
        "reply_source",
        "interrupted",
    )
    readonly_fields = fields


class AlertInline(ReadOnlyInline):
    model = EscalationAlert
    fields = ("created_at", "level", "disposition", "rule_ids", "status", "acknowledged_by")
    readonly_fields = fields


@admin.register(TriageSession)
class TriageSessionAdmin(ReadOnlyAdmin):
    list_display = (
        "short_id",
        "status",
        "state",
        "urgency_level",
        "disposition",
        "subject",
        "created_at",
        "ended_at",
    )
    list_filter = ("status", "urgency_level", "subject", "created_at")
    search_fields = ("id", "disposition")
    readonly_fields = (
        "id",
        "token_hash",
        "token_expires_at",
        "created_at",
        "updated_at",
        "ruleset_version",
        "latest_partial",
        "consent_at",
        "protocol_version",
    )
    date_hierarchy = "created_at"
    inlines = [TurnInline, AlertInline]

    @admin.display(description="Session")
    def short_id(self, obj):
        return str(obj.id)[:8]


@admin.register(Turn)
class TurnAdmin(ReadOnlyAdmin):
    list_display = ("session", "index", "speaker", "short_text", "reply_source", "interrupted", "started_at")
    list_filter = ("speaker", "reply_source", "interrupted")
    search_fields = ("text", "session__id")

    @admin.display(description="Text")
    def short_text(self, obj):
        return obj.text[:80]


@admin.register(StateTransition)
class StateTransitionAdmin(ReadOnlyAdmin):
    list_display = ("session", "turn_id", "from_state", "to_state", "cause", "at")
    list_filter = ("to_state", "from_state")
    search_fields = ("session__id", "cause")


@admin.register(EscalationAlert)
class EscalationAlertAdmin(ReadOnlyAdmin):
    list_display = (
        "session",
        "level",
        "disposition",
        "status",
        "on_partial",
        "created_at",
        "acknowledged_by",
    )
    list_filter = ("status", "level", "on_partial", "created_at")
    search_fields = ("session__id", "disposition")
    readonly_fields = (
        "session",
        "level",
        "disposition",
        "rule_ids",
        "reasons",
        "on_partial",
        "created_at",
        "acknowledged_by",
        "acknowledged_at",
    )


@admin.register(ClinicianAction)
class ClinicianActionAdmin(ReadOnlyAdmin):
    list_display = ("session", "clinician", "kind", "at")
    list_filter = ("kind", "at")
    search_fields = ("session__id", "clinician__username", "reason")


class DurationFilter(admin.SimpleListFilter):
    """Latency bands, to find the slow tail of a stage quickly."""

    title = "duration"
    parameter_name = "duration"
    BANDS = {
        "lt200": ("< 200 ms", 0, 200),
        "200-500": ("200-500 ms", 200, 500),
        "500-1000": ("500 ms - 1 s", 500, 1000),
        "1000-2000": ("1-2 s", 1000, 2000),
        "gt2000": ("> 2 s", 2000, None),
    }

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _lo, _hi) in self.BANDS.items()]

    def queryset(self, request, queryset):
        band = self.BANDS.get(self.value() or "")
        if band is None:
            return queryset
        _label, lo, hi = band
        queryset = queryset.filter(duration_ms__gte=lo)
        return queryset.filter(duration_ms__lt=hi) if hi is not None else queryset


@admin.register(LatencySample)
class LatencySampleAdmin(ReadOnlyAdmin):
    list_display = ("session", "turn_id", "stage", "duration_ms", "budget_ms", "budget_missed", "recorded_at")
    list_filter = ("stage", "budget_missed", "recorded_at", DurationFilter, "session__urgency_level")
    search_fields = ("session__id", "stage")
    date_hierarchy = "recorded_at"


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("session", "seq", "kind", "actor", "created_at", "short_hash")
    list_filter = ("kind", "actor", "created_at")
    search_fields = ("session__id", "kind", "hash")
    date_hierarchy = "created_at"

    @admin.display(description="Hash")
    def short_hash(self, obj):
        return obj.hash[:12]

    def get_actions(self, request):
        return {}  # not even the bulk "delete selected"


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = ("topic", "key", "created_at", "dispatched_at", "processed_at", "attempts")
    list_filter = ("topic", "dispatched_at", "processed_at")
    search_fields = ("key",)


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("alert", "channel", "status", "attempts", "response_code", "created_at", "sent_at")
    list_filter = ("channel", "status", "created_at")
    search_fields = ("alert__session__id", "target")


@admin.register(TelemetryAggregate)
class TelemetryAggregateAdmin(ReadOnlyAdmin):
    list_display = (
        "bucket_start",
        "bucket_seconds",
        "metric",
        "n",
        "hits",
        "p50_ms",
        "p95_ms",
        "computed_at",
    )
    list_filter = ("metric", "bucket_seconds", "bucket_start")
    date_hierarchy = "bucket_start"


@admin.register(SecurityEvent)
class SecurityEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "kind", "username", "ip_address", "path")
    list_filter = ("kind", "at")
    search_fields = ("username", "ip_address")
    date_hierarchy = "at"
