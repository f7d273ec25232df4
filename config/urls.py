"""The project URLconf: the patient page and API, health, logins, the admin, /metrics and the clinician pages."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from triage import views
from triage.dashboard.urls import urlpatterns as clinician_urlpatterns
from triage.metrics import metrics_view

urlpatterns = [
    path("", views.intake, name="intake"),
    path("api/sessions", views.create_session, name="create_session"),
    path("healthz", views.health, name="health"),
    path("readyz", views.ready, name="ready"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
    *clinician_urlpatterns,
]
