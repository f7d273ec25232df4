from django.urls import path, re_path

from triage.consumers.clinician_audio import ListenConsumer, TalkConsumer
from triage.consumers.dashboard import DashboardConsumer
from triage.consumers.patient import PatientConsumer
from triage.consumers.unknown import UnknownPathConsumer

websocket_urlpatterns = [
    path("ws/patient/<str:token>/", PatientConsumer.as_asgi()),
    path("ws/dashboard/", DashboardConsumer.as_asgi()),
    path("ws/clinician/calls/<uuid:session_id>/listen/", ListenConsumer.as_asgi()),
    path("ws/clinician/calls/<uuid:session_id>/talk/", TalkConsumer.as_asgi()),
    # Last: every other path is closed with 4404, not left to raise in the router.
    re_path(r"", UnknownPathConsumer.as_asgi()),
]
