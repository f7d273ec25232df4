from django.urls import path

from triage.consumers.dashboard import DashboardConsumer
from triage.consumers.patient import PatientConsumer

websocket_urlpatterns = [
    path("ws/patient/<str:token>/", PatientConsumer.as_asgi()),
    path("ws/dashboard/", DashboardConsumer.as_asgi()),
]
