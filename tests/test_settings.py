"""Settings come from the environment and refuse to start on a bad or missing value.

Each case imports the real settings module in a fresh interpreter with a clean environment,
because settings are read once per process and this process already runs the test settings.
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
# A production-shaped database URL; `check --deploy` does not connect to it.
POSTGRES_URL = "postgres://nanofat:secret@db.clinic.example:5432/nanofat"


def run_python(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Runs the project's Python with only PATH and the variables given."""
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(  # noqa: S603 (fixed arguments, the project's own interpreter)
        [sys.executable, *args],
        cwd=PROJECT,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def settings_value(expression: str, **env: str) -> object:
    """The JSON value of ``expression`` evaluated in nanofat.settings under ``env``."""
    code = f"import json, nanofat.settings as s; print(json.dumps({expression}, default=str))"
    result = run_python("-c", code, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def production_env(**overrides: str) -> dict[str, str]:
    return {
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(64)[:50],
        "ALLOWED_HOSTS": "clinic.example",
        "DATABASE_URL": POSTGRES_URL,
        "DJANGO_SETTINGS_MODULE": "nanofat.settings",
    } | overrides


def test_it_refuses_to_start_with_debug_off_and_no_secret_key():
    result = run_python("-c", "import nanofat.settings")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr


def test_it_falls_back_to_a_development_key_only_with_debug_on():
    assert settings_value("s.SECRET_KEY.startswith('dev-only')", DEBUG="1") is True
    assert settings_value("s.ALLOWED_HOSTS", DEBUG="1") == ["127.0.0.1", "localhost"]


def test_it_reads_the_secret_key_from_a_file(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text("k" * 60 + "\n")
    assert settings_value("s.SECRET_KEY", DEBUG="0", SECRET_KEY_FILE=str(key_file)) == "k" * 60


@pytest.mark.parametrize(
    ("name", "value"),
    [("DEBUG", "maybe"), ("SECURE_HTTPS", "2"), ("SESSION_IDLE_MINUTES", "half an hour"),
     ("DB_POOL_MAX", "lots")],
)  # fmt: skip
def test_it_refuses_a_malformed_setting_naming_it(name, value):
    result = run_python("-c", "import nanofat.settings", **production_env(**{name: value}))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{name} must be" in result.stderr


def test_production_settings_pass_the_deployment_checks():
    result = run_python("manage.py", "check", "--deploy", "--fail-level", "WARNING",
                        **production_env())  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_deployment_checks_catch_a_weak_secret_key():
    # Proves the check above can fail: a short key is a security warning.
    env = production_env(SECRET_KEY="too-short")
    result = run_python("manage.py", "check", "--deploy", "--fail-level", "WARNING", **env)
    assert result.returncode != 0
    assert "security.W009" in result.stdout + result.stderr


def test_a_postgres_url_uses_psycopg_with_its_connection_pool():
    database = settings_value("s.DATABASES['default']", **production_env())
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["HOST"], database["PORT"], database["NAME"]) == (
        "db.clinic.example",
        5432,
        "nanofat",
    )
    assert database["OPTIONS"]["pool"] == {"min_size": 2, "max_size": 8, "timeout": 10}
    assert database["CONN_MAX_AGE"] == 0  # the pool holds connections, not Django
    assert "statement_timeout" in database["OPTIONS"]["options"]


def test_no_database_url_means_sqlite_in_the_project():
    database = settings_value("s.DATABASES['default']", DEBUG="1")
    assert database["ENGINE"] == "django.db.backends.sqlite3"
    assert database["NAME"] == str(PROJECT / "db.sqlite3")


def test_an_sqlite_commit_is_on_disk_before_the_answer(tmp_path):
    """WAL for readers beside a writer, and synchronous=FULL: a recorded signature survives a
    power cut (NORMAL would let the last commits roll back)."""
    code = (
        "import django, json; django.setup(); from django.db import connection;"
        "c = connection.cursor();"
        "print(json.dumps([c.execute(f'PRAGMA {p}').fetchone()[0] "
        "for p in ('journal_mode', 'synchronous')]))"
    )
    result = run_python(
        "-c",
        code,
        DJANGO_SETTINGS_MODULE="nanofat.settings",
        DEBUG="1",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["wal", 2]  # 2 is FULL


def test_allowed_hosts_and_trusted_origins_are_comma_separated_lists():
    env = production_env(
        ALLOWED_HOSTS="clinic.example, planner.clinic.example",
        CSRF_TRUSTED_ORIGINS="https://clinic.example",
    )
    assert settings_value("[s.ALLOWED_HOSTS, s.CSRF_TRUSTED_ORIGINS]", **env) == [
        ["clinic.example", "planner.clinic.example"],
        ["https://clinic.example"],
    ]
