"""Clinician side: live dashboard, alert actions, transcript review and telemetry views."""
