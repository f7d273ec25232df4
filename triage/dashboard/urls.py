from django.urls import path

from . import views

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/api/sessions", views.api_sessions, name="dashboard_api_sessions"),
    path("dashboard/api/sessions/<uuid:session_id>", views.api_session, name="dashboard_api_session"),
    path("dashboard/alerts/<int:alert_id>/acknowledge", views.acknowledge, name="dashboard_acknowledge"),
    path("dashboard/sessions/<uuid:session_id>/take-over", views.take_over, name="dashboard_take_over"),
    path(
        "dashboard/sessions/<uuid:session_id>/urgency",
        views.override_urgency,
        name="dashboard_override_urgency",
    ),
    path("dashboard/sessions/<uuid:session_id>/hand-back", views.hand_back, name="dashboard_hand_back"),
    path("dashboard/sessions/<uuid:session_id>/close", views.close_call, name="dashboard_close_call"),
    path("dashboard/telemetry/", views.telemetry_page, name="dashboard_telemetry"),
    path("dashboard/telemetry/data", views.telemetry_data, name="dashboard_telemetry_data"),
    path("review/", views.review_list, name="review_list"),
    path("review/<uuid:session_id>/", views.review_detail, name="review_detail"),
]
