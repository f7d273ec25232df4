from django.urls import path

from triage.consumers.patient import PatientConsumer

websocket_urlpatterns = [
    path("ws/patient/<str:token>/", PatientConsumer.as_asgi()),
]
