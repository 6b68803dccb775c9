"""Two app servers, one PostgreSQL: nothing a request relies on lives in a server's memory.

The module starts two gunicorn instances (gunicorn.conf.py, one worker each) on two free ports
against one dedicated database, as two machines behind a load balancer would run, and shows
that a login made through one is honoured by the other, that an edit made through one is seen
through the other, that a change of role counts at once on both, and that two concurrent edits
of the same plan version, one through each server, resolve by the plan's optimistic version:
exactly one is saved, the other gets 409.

The servers use the production settings (database sessions, database cache, the psycopg pool)
with one change, tests/stateless_settings.py: static files without the collectstatic manifest,
because the suite does not run collectstatic. The database (`nanofat_stateless_<pid>`, on the
server DATABASE_URL names) is created, migrated and seeded here and dropped afterwards; the
test database pytest-django holds inside a transaction would be invisible to other processes.

SQLite is a single file on one machine, not a shared server: on SQLite the module is skipped.
"""

import http.cookiejar
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import suppress
from pathlib import Path

import pytest

from tests.process_support import children

PROJECT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("DATABASE_URL", "")
PASSWORD = "stateless-servers-password-2026"

pytestmark = pytest.mark.skipif(
    not DATABASE_URL.startswith(("postgres://", "postgresql://")),
    reason="needs PostgreSQL (DATABASE_URL=postgres://...): several app servers share one "
    "database server; SQLite is a file on one machine",
)

SEED = """
import json
from decimal import Decimal
from django.contrib.auth.models import Group
from planner.models import Clinic, Patient, PlannedInjection, RuleSet, TreatmentPlan
from planner.models import TreatmentZone, User
clinic = Clinic.objects.create(name="Stateless Clinic")
surgeon = User.objects.create_user("stateless-surgeon", password=PASSWORD, clinic=clinic)
surgeon.groups.add(Group.objects.get(name="surgeon"))
patient = Patient.objects.create(
    clinic=clinic, chart_number="S-0001", name="Stella Stateless", date_of_birth="1970-01-01"
)
plan = TreatmentPlan.objects.create(
    patient=patient, surgeon=surgeon, planned_for="2030-01-01", rule_set=RuleSet.current()
)
injection = PlannedInjection.objects.create(
    plan=plan, zone=TreatmentZone.objects.get(code="CHEEK_L"), volume_ml=Decimal("0.20"),
    instrument="needle", gauge=27, depth="dermis", technique="retrograde",
)
print(json.dumps({"plan": plan.pk, "injection": injection.pk, "version": plan.version}))
"""


ROLE_CHANGE = """
from django.contrib.auth.models import Group
from planner.models import User
User.objects.get(username="stateless-surgeon").groups.set([Group.objects.get(name=ROLE)])
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def admin_sql(sql: str) -> None:
    import psycopg

    parts = urllib.parse.urlsplit(DATABASE_URL)
    with psycopg.connect(
        urllib.parse.urlunsplit(parts._replace(path="/postgres")), autocommit=True
    ) as connection:
        connection.execute(sql)


def run(args: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(  # noqa: S603 (the project's own interpreter and manage.py)
        [sys.executable, *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result.stdout


class Server:
    """One gunicorn, in its own process group so that stopping it stops its workers too."""

    def __init__(self, env: dict[str, str], log: Path):
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        with log.open("ab") as out:
            self.process = subprocess.Popen(  # noqa: S603
                [
                    str(Path(sys.executable).parent / "gunicorn"),
                    "--config",
                    "gunicorn.conf.py",
                    "nanofat.wsgi",
                ],
                cwd=PROJECT,
                env=env | {"GUNICORN_BIND": f"127.0.0.1:{self.port}"},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.log = log

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-4000:]
            with (
                suppress(OSError),
                urllib.request.urlopen(self.url + "/healthz", timeout=2) as response,  # noqa: S310
            ):
                if response.status == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"gunicorn on {self.url} did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two servers on one freshly migrated and seeded database: (server_a, server_b, ids)."""
    name = f"nanofat_stateless_{os.getpid()}"
    parts = urllib.parse.urlsplit(DATABASE_URL)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(PROJECT)),
        "DJANGO_SETTINGS_MODULE": "tests.stateless_settings",
        "DATABASE_URL": urllib.parse.urlunsplit(parts._replace(path=f"/{name}")),
        "DEBUG": "0",
        # Every app server must share the secret key: it signs sessions and CSRF cookies.
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_HTTPS": "0",  # plain HTTP to 127.0.0.1; a TLS proxy would sit in front
        "GUNICORN_WORKERS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    logs = tmp_path_factory.mktemp("stateless")
    admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin_sql(f'CREATE DATABASE "{name}"')
    servers: list[Server] = []
    try:
        run(["manage.py", "migrate", "--noinput"], env)
        run(["manage.py", "load_reference_data"], env)
        run(["manage.py", "createcachetable"], env)
        code = f"PASSWORD = {PASSWORD!r}\n{SEED}"
        out = run(["manage.py", "shell", "--verbosity", "0", "-c", code], env)
        ids = json.loads(out.strip().splitlines()[-1])
        servers = [Server(env, logs / "a.log"), Server(env, logs / "b.log")]
        for server in servers:
            server.wait_ready()
        yield servers[0], servers[1], ids
    finally:
        for server in servers:
            server.stop()
        admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Browser:
    """One user's cookie jar; like a browser behind a load balancer it sends its cookies to
    whichever server answers (cookies do not depend on the port)."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect()
        )

    def cookie(self, name: str) -> str:
        return next((c.value for c in self.jar if c.name == name), "")

    def request(self, server: Server, path: str, data: dict | None = None, **headers):
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        if body is not None:
            headers.setdefault("X-CSRFToken", self.cookie("csrftoken"))
        request = urllib.request.Request(server.url + path, data=body, headers=headers)  # noqa: S310 (http://127.0.0.1 only)
        try:
            response = self.opener.open(request, timeout=30)
        except urllib.error.HTTPError as error:
            response = error
        with response:
            return response.status, dict(response.headers), response.read().decode()

    def log_in(self, server: Server) -> None:
        status, _, page = self.request(server, "/accounts/login/")
        assert status == 200
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        status, _, _ = self.request(
            server,
            "/accounts/login/",
            {"csrfmiddlewaretoken": token, "username": "stateless-surgeon", "password": PASSWORD},
        )
        assert status == 302, "the login was refused"
        assert self.cookie("sessionid")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 302 is an answer to look at, not to follow


def edit_volume(browser: Browser, server: Server, ids: dict, volume: str, version: int):
    prefix = f"inj{ids['injection']}-"
    data = {
        f"{prefix}zone": "CHEEK_L",
        f"{prefix}volume_ml": volume,
        f"{prefix}instrument": "needle",
        f"{prefix}gauge": "27",
        f"{prefix}depth": "dermis",
        f"{prefix}technique": "retrograde",
        f"{prefix}notes": "",
        "version": str(version),
    }
    path = f"/plans/{ids['plan']}/injections/{ids['injection']}/edit/"
    return browser.request(server, path, data, **{"HX-Request": "true"})


def plan_page(browser: Browser, server: Server, ids: dict) -> tuple[int, str, int]:
    """(status, the injection's row, the plan version) as the builder page shows them."""
    status, _, page = browser.request(server, f"/plans/{ids['plan']}/")
    row = re.search(rf'<tr id="injection-{ids["injection"]}".*?</tr>', page, re.S)
    version = re.search(r'name="version" value="(\d+)"', page)
    return status, row.group(0) if row else "", int(version.group(1)) if version else 0


def current_version(browser: Browser, server: Server, ids: dict) -> int:
    return plan_page(browser, server, ids)[2]


def test_a_login_through_one_server_is_honoured_by_the_other(cluster):
    server_a, server_b, _ = cluster
    browser = Browser()
    browser.log_in(server_a)
    status, _, page = browser.request(server_b, "/patients/")
    assert status == 200
    assert "Stella Stateless" in page


def test_a_visitor_without_a_session_is_sent_to_login_by_either_server(cluster):
    server_a, server_b, _ = cluster
    for server in (server_a, server_b):
        status, headers, _ = Browser().request(server, "/patients/")
        assert status == 302
        assert headers["Location"].startswith("/accounts/login/")


def test_an_edit_through_one_server_is_visible_through_the_other(cluster):
    server_a, server_b, ids = cluster
    browser = Browser()
    browser.log_in(server_b)
    version = current_version(browser, server_b, ids)
    status, headers, _ = edit_volume(browser, server_a, ids, "0.35", version)
    assert status == 200
    assert json.loads(headers["HX-Trigger"])["plan-version"]["version"] == version + 1
    status, row, shown_version = plan_page(browser, server_b, ids)
    assert status == 200
    assert ">0.35<" in row
    assert shown_version == version + 1


def test_two_concurrent_stale_edits_through_two_servers_resolve_by_the_version(cluster):
    server_a, server_b, ids = cluster
    browser = Browser()
    browser.log_in(server_a)
    version = current_version(browser, server_a, ids)
    start = threading.Barrier(2)
    answers: dict[str, int] = {}

    def edit(server: Server, volume: str) -> None:
        start.wait()
        answers[volume] = edit_volume(browser, server, ids, volume, version)[0]

    threads = [
        threading.Thread(target=edit, args=(server_a, "0.41")),
        threading.Thread(target=edit, args=(server_b, "0.43")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(answers.values()) == [200, 409], answers
    winner = next(volume for volume, status in answers.items() if status == 200)
    for server in (server_a, server_b):
        _, row, shown_version = plan_page(browser, server, ids)
        assert f">{winner}<" in row
        assert shown_version == version + 1


def set_role(server: Server, role: str) -> None:
    """Gives the surgeon another role as the admin pages do (the ORM, from a third process)."""
    code = f"ROLE = {role!r}\n{ROLE_CHANGE}"
    run(["manage.py", "shell", "--verbosity", "0", "-c", code], server.env)


def test_a_change_of_role_counts_from_the_next_request_on_every_server(cluster):
    """Each server's session copy of the permissions is dropped once the role changes."""
    server_a, server_b, ids = cluster
    browser = Browser()
    browser.log_in(server_a)
    version = current_version(browser, server_b, ids)
    assert edit_volume(browser, server_b, ids, "0.30", version)[0] == 200
    try:
        set_role(server_a, "staff")
        for server in (server_a, server_b):
            assert edit_volume(browser, server, ids, "0.31", version + 1)[0] == 403
    finally:
        set_role(server_a, "surgeon")
    assert edit_volume(browser, server_b, ids, "0.32", version + 1)[0] == 200


def test_each_app_server_renders_its_pdfs_in_one_service_beside_its_workers(cluster):
    for server in cluster[:2]:
        commands = []
        for child in children(server.process.pid):
            with suppress(OSError):
                commands.append(Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0"))
        services = [command for command in commands if b"planner.render_service" in command]
        assert len(services) == 1, commands
        # The service is the master's, not a worker's: a worker recycled by max_requests
        # starts no renderer of its own.
        workers = [command for command in commands if b"planner.render_service" not in command]
        assert workers
