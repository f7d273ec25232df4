"""Configuration comes from the environment: embedded default, Redis/PostgreSQL, production."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'db': s.DATABASES['default']['ENGINE'], 'layer': s.CHANNEL_LAYERS['default']['BACKEND'], "
    "'eager': s.CELERY_TASK_ALWAYS_EAGER, 'broker': s.CELERY_BROKER_URL, 'debug': s.DEBUG, "
    "'inprocess_beat': s.TRIAGE['INPROCESS_BEAT']}))"
)


def run(env_overrides: dict, *args: str, tmp_path=None) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ENV", "SECRET_KEY", "TRIAGE_INPROCESS_BEAT"}
    }
    env.update({"DJANGO_SETTINGS_MODULE": "triage.settings", **env_overrides})
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_embedded_default_needs_no_services(tmp_path):
    result = run({"TRIAGE_VAR_DIR": str(tmp_path)}, "-c", PROBE)
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["db"].endswith("sqlite3")
    assert config["layer"].endswith("InMemoryChannelLayer")
    assert config["eager"] is True
    assert config["inprocess_beat"] is True  # no beat process: the ASGI process runs the schedule
    assert (tmp_path).exists()


def test_redis_url_switches_on_channels_redis_and_a_celery_broker():
    result = run(
        {"REDIS_URL": "redis://127.0.0.1:6379/3", "DATABASE_URL": "postgres://u@127.0.0.1/db"}, "-c", PROBE
    )
    config = json.loads(result.stdout)
    assert config["layer"] == "channels_redis.core.RedisChannelLayer"
    assert config["broker"] == "redis://127.0.0.1:6379/3" and config["eager"] is False
    assert config["inprocess_beat"] is False  # celery beat runs the schedule
    assert config["db"] == "django.db.backends.postgresql"


def test_production_refuses_to_start_without_a_secret_key():
    result = run({"DJANGO_ENV": "production", "ALLOWED_HOSTS": "x.example.org"}, "-c", PROBE)
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_check_deploy_passes_under_production_settings(tmp_path):
    env = {
        "DJANGO_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "triage.example.org",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
    }
    result = run(env, "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(run(env, "-c", PROBE).stdout)["debug"] is False
