"""Configuration comes from the environment: embedded default, Redis/PostgreSQL, production."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

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
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings", **env_overrides})
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


# --- safe deployment defaults ------------------------------------------------------------------

ENV_EXAMPLE = ROOT / "deploy" / "env.example"
# deploy/env.example's secrets with the placeholders replaced (what an operator does).
REAL_SECRETS = {
    "SECRET_KEY": secrets.token_urlsafe(50),
    "EMAIL_HOST_PASSWORD": secrets.token_urlsafe(16),
    "TRIAGE_ESCALATION_WEBHOOK_SECRET": secrets.token_urlsafe(32),
    "METRICS_TOKEN": secrets.token_urlsafe(32),
}


def shipped_env(tmp_path, **overrides) -> dict[str, str]:
    """deploy/env.example as shipped, with the local services swapped in so nothing external
    is reached (a SQLite file; Redis at a port nothing listens on is never dialled here)."""
    env = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            env[key.strip()] = value.strip()
    env.update(
        {
            "TRIAGE_PRELOAD_MODELS": "0",
            "TRIAGE_VAR_DIR": str(tmp_path),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
            "STATIC_ROOT": str(tmp_path / "static"),
        }
    )
    env.update(overrides)
    return env


def test_unknown_django_env_is_an_error_not_debug():
    for value in ("prod", "Production", "staging"):
        result = run({"DJANGO_ENV": value}, "-c", PROBE)
        assert result.returncode != 0, value
        assert "DJANGO_ENV must be 'development' or 'production'" in result.stderr, value
    assert json.loads(run({"DJANGO_ENV": "development"}, "-c", PROBE).stdout)["debug"] is True


def test_shipped_env_example_passes_check_deploy(tmp_path):
    result = run(shipped_env(tmp_path), "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "security.W" not in result.stdout + result.stderr  # e.g. W009: key too short
    # ... yet it names what is still a placeholder.
    report = result.stdout + result.stderr  # check writes its messages to stderr
    assert "triage.I001" in report
    for name in ("SECRET_KEY", "EMAIL_HOST_PASSWORD", "TRIAGE_ESCALATION_WEBHOOK_SECRET", "METRICS_TOKEN"):
        assert name in report
    assert "DATABASE_URL (password)" in report


def test_production_refuses_placeholder_secrets_at_start_up(tmp_path):
    start_web = ("-c", "import config.asgi")  # what daphne does first
    refused = run(shipped_env(tmp_path), *start_web)
    assert refused.returncode != 0
    assert "Refusing to start in production with placeholder secrets" in refused.stderr
    assert "SECRET_KEY" in refused.stderr and "METRICS_TOKEN" in refused.stderr

    # One placeholder left is enough to refuse; the development key is refused too.
    one_left = {**REAL_SECRETS, "METRICS_TOKEN": "change-me"}
    refused = run(
        shipped_env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", **one_left), *start_web
    )
    assert (
        refused.returncode != 0
        and "placeholder secrets from deploy/env.example: METRICS_TOKEN." in refused.stderr
    )
    dev_key = "dev-insecure-key-do-not-use-in-production-0123456789abcdefghijklmnop"
    refused = run(
        shipped_env(
            tmp_path,
            DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
            **{**REAL_SECRETS, "SECRET_KEY": dev_key},
        ),
        *start_web,
    )
    assert (
        refused.returncode != 0
        and "placeholder secrets from deploy/env.example: SECRET_KEY." in refused.stderr
    )

    started = run(
        shipped_env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", **REAL_SECRETS), *start_web
    )
    assert started.returncode == 0, started.stderr


@pytest.mark.parametrize("process", ["worker", "beat"])
def test_production_celery_refuses_placeholder_secrets(tmp_path, process):
    result = run(
        shipped_env(tmp_path, REDIS_URL="redis://127.0.0.1:1/0"),
        "-m",
        "celery",
        "-A",
        "config",
        process,
        "--loglevel=WARNING",
        *(["--pool=solo"] if process == "worker" else [f"--schedule={tmp_path / 'beat-schedule'}"]),
    )
    assert result.returncode != 0
    assert "Refusing to start in production with placeholder secrets" in result.stdout + result.stderr


def test_health_probe_works_on_plain_http_in_production(tmp_path):
    """A probe inside the cluster talks to daphne directly: no TLS, no X-Forwarded-Proto."""
    probe = (
        "import json, django; django.setup(); from django.test import Client; c = Client(); "
        "h = c.get('/healthz', HTTP_HOST='triage.example.org'); "
        "p = c.get('/', HTTP_HOST='triage.example.org'); "
        "print(json.dumps([h.status_code, h.json()['status'], p.status_code, p.get('Location')]))"
    )
    env = shipped_env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", **REAL_SECRETS)
    result = run(env, "-c", probe)
    assert result.returncode == 0, result.stderr
    health_status, health, page_status, location = json.loads(result.stdout.strip().splitlines()[-1])
    assert (health_status, health) == (200, "ok")
    assert page_status == 301 and location == "https://triage.example.org/"  # the rest still redirects
