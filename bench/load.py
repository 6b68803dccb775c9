"""HTTP benchmark: the planner under gunicorn as production runs it, driven by wrk.

Run from the project root: `python bench/load.py` (or `make bench`). For PostgreSQL and for
SQLite it

1. creates an empty database (PostgreSQL: `nanofat_bench` on the server of DATABASE_URL, by
   default postgres://postgres@127.0.0.1:5432; SQLite: a file in a temporary folder), migrates
   it, loads the reference data and seeds a clinic (bench/seed.py: 500 patients, 2,000 plans of
   5-40 injections, logged-in sessions), then vacuums and analyzes it;
2. starts gunicorn with gunicorn.conf.py and nanofat.settings, DEBUG off, whitenoise serving
   the collected static files, on 127.0.0.1 and a free port, with NANOFAT_BENCH=1, which adds
   one URL, /bench/bare: a view that does no work, the stack's own limit; both app servers run
   side by side, the one not being measured idle;
3. drives the bare view, then each endpoint, with wrk at 1, 8 and 32 connections for
   BENCH_SECONDS (default 3) seconds each (PDFs: at least 6), the PostgreSQL and SQLite runs of
   each figure in turns, so the two were measured seconds apart (this machine's speed drifts
   by a third within minutes). Then the builder page alone and at once while two clients
   download PDFs;
4. measures the figures the targets compare again in ROUNDS (default 3) paired rounds: in each,
   every endpoint of a ratio target at 8 and 32 connections and the bare view just after them,
   on both databases in turns, and the builder at 1 connection with 5 and then 40 injections.
   Each target's verdict is the median of its rounds' figures, each taken from runs seconds
   apart, so neither one slow minute nor the drift between the first bare run and the last
   endpoint run decides it;
5. stops gunicorn (its whole process group) and drops the database.

It prints requests/s, p50 and p99 latency per endpoint and connection count, each throughput as
a fraction of the bare view's in the same run, PostgreSQL against SQLite, the builder's share
under PDF load, the peak RSS of each gunicorn worker, and every target of issue 7 with its
verdict. It exits 1 if any request failed (anything but a 2xx, a socket error, a timeout).

Options: --only postgresql|sqlite, --seconds N, --rounds N (BENCH_ROUNDS), --endpoints
builder40,search (the bare view always runs), --logs DIR (keep gunicorn's logs),
--skip-collectstatic. The environment's GUNICORN_* variables reach gunicorn.conf.py unchanged,
so `GUNICORN_WORKERS=3 python bench/load.py` measures that setup.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import runpy  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from urllib.parse import urlsplit, urlunsplit  # noqa: E402

# gunicorn.conf.py's access log: 'ADDRESS "METHOD PATH" STATUS ...' (the request line also matches)
ACCESS_LINE = re.compile(r'^\S+ "[A-Z]+ ([^ ?"]+)[^"]*" (\d{3}) ')
PYTHON = sys.executable
GUNICORN = str(Path(PYTHON).parent / "gunicorn")
SCENARIO_SCRIPT = HERE / "wrk" / "scenario.lua"
CONNECTIONS = (1, 8, 32)
PDF_CLIENTS = 2
PDF_SECONDS = 6
CONTENTION_CONNECTIONS = 8
# The paired rounds: the endpoints of a ratio target, at the connection counts where the bare
# view and they peak on 2 workers of 2 threads (1 connection never saturates them).
ROUND_CONNECTIONS = (8, 32)
DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"
BENCH_DATABASE = os.environ.get("BENCH_DATABASE_NAME", "nanofat_bench")

# Targets of issue 7, as fractions of the bare view's peak throughput in the same round.
RATIO_TARGETS = {"builder40": 0.05, "volume": 0.08, "validate": 0.15, "search": 0.08}
GROWTH_LIMIT = 0.50  # builder service time at 1 connection, 5 -> 40 injections
POSTGRES_VS_SQLITE = 0.85
CONTENTION_SHARE = 0.50
RSS_LIMIT_MB = 150

LABELS = {
    "bare": "bare Django view (baseline)",
    "builder40": "plan builder, 40 injections",
    "builder5": "plan builder, 5 injections",
    "volume": "htmx volume change (save)",
    "validate": "live validation (no save)",
    "search": "patient search (htmx)",
    "pdf": "consent PDF",
}


class BenchError(RuntimeError):
    """Something the benchmark needs is missing or broke; the message says what."""


# --- measurements ---------------------------------------------------------------------------


@dataclass
class Run:
    endpoint: str
    connections: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    failures: int
    non_2xx: int = 0
    sent: int = 0
    first_failure: str = ""
    cpu_ms: float = 0.0  # server CPU (workers, renderer, database) over every request sent
    db_cpu_ms: float = 0.0  # of which PostgreSQL's backends

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_request(self) -> float:
        return self.cpu_ms / self.sent if self.sent else 0.0


@dataclass
class BackendResult:
    name: str
    runs: dict[tuple[str, int], Run] = field(default_factory=dict)
    contention_solo: Run | None = None
    contention: Run | None = None
    contention_pdf: Run | None = None
    rss_mb: dict[int, float] = field(default_factory=dict)
    pss_mb: dict[int, float] = field(default_factory=dict)
    helper_rss_mb: dict[int, float] = field(default_factory=dict)
    pdf_missing: bool = False
    rounds: list[dict[tuple[str, int], Run]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    non_2xx_seen: int = 0
    notes: list[str] = field(default_factory=list)

    def count(self, run: Run, what: str) -> None:
        """Adds a run's failures to the total, with a note saying where they happened."""
        self.non_2xx_seen += run.non_2xx
        if run.failures:
            self.failures += run.failures
            self.notes.append(
                f"{run.failures} failed: {what} at {run.connections} connections"
                f" ({run.first_failure})"
            )

    def add(self, run: Run) -> None:
        self.runs[(run.endpoint, run.connections)] = run

    def peak(self, endpoint: str) -> Run | None:
        return peak_of(self.runs, endpoint)


def peak_of(runs: dict[tuple[str, int], Run], endpoint: str) -> Run | None:
    """The endpoint's run with the highest throughput, over its connection counts."""
    found = [run for (name, _), run in runs.items() if name == endpoint]
    return max(found, key=lambda run: run.rps) if found else None


# --- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_checked(args: list[str], env: dict[str, str], what: str) -> str:
    result = subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != 0:
        raise BenchError(f"{what} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return result.stdout


def manage(env: dict[str, str], *args: str) -> str:
    return run_checked([PYTHON, "manage.py", *args], env, f"manage.py {' '.join(args)}")


def children(pid: int) -> list[int]:
    """Child processes of every thread of PID (a process started from a request thread of a
    gthread worker is listed under that thread, not under the main one)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(part) for part in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def is_render_service(pid: int) -> bool:
    """The app server's PDF render service (planner/render_service.py), a child of the master."""
    try:
        return b"planner.render_service" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def proc_kb(pid: int, key: str, name: str = "status") -> int:
    """A `key: N kB` line of /proc/PID/status (or smaps_rollup), 0 if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class Gunicorn:
    """gunicorn with gunicorn.conf.py in its own process group, so stopping it stops all."""

    def __init__(self, env: dict[str, str], port: int, log_path: Path):
        self.env = env
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.base_url = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                [GUNICORN, "--config", "gunicorn.conf.py", "nanofat.wsgi"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"gunicorn exited at start:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise BenchError(f"gunicorn did not answer /healthz within 60 s:\n{self.log_tail()}")

    def workers(self) -> list[int]:
        if not self.process:
            return []
        return [pid for pid in children(self.process.pid) if not is_render_service(pid)]

    def helpers(self) -> list[int]:
        """Every other process under gunicorn: the PDF render service the master started (and
        its render children), and whatever a worker started."""
        workers = set(self.workers())
        top = children(self.process.pid) if self.process else []
        found = []
        queue = [pid for pid in top if pid not in workers]
        queue += [pid for worker in workers for pid in children(worker)]
        while queue:
            pid = queue.pop()
            found.append(pid)
            queue.extend(children(pid))
        return found

    def cpu_ticks(self) -> int:
        """CPU time (clock ticks) used so far by the workers and everything they started."""
        total = 0
        for pid in [*self.workers(), *self.helpers()]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime + stime
        return total

    def wait_idle(self, timeout: float = 120) -> float:
        """Waits until the server has finished what wrk left behind: requests still queued or
        rendering when wrk stopped (a PDF backlog can take many seconds) would otherwise eat
        into the next measurement. Idle: under 20 ms of CPU in 0.3 s. Returns the wait."""
        started = time.monotonic()
        before = self.cpu_ticks()
        while time.monotonic() - started < timeout:
            time.sleep(0.3)
            now = self.cpu_ticks()
            if now - before <= 2:
                break
            before = now
        return time.monotonic() - started

    def statuses(self) -> dict[str, int]:
        """Responses by status in gunicorn's access log, the late ones (answered after wrk
        stopped waiting) included; /healthz probes left out."""
        counts: dict[str, int] = {}
        for line in self.log_tail(limit=None).splitlines():
            match = ACCESS_LINE.match(line)
            if match and match.group(1) != "/healthz":
                counts[match.group(2)] = counts.get(match.group(2), 0) + 1
        return counts

    def stop(self) -> None:
        if self.process is None:
            return
        group = self.process.pid  # start_new_session: the group id is the master's pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            self.process.wait(timeout=10)
        # Anything of the group still alive (a render process outliving its worker) goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        self.process = None

    def log_tail(self, limit: int | None = 4000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return text if limit is None else text[-limit:]


def proc_ticks(pid: int) -> int | None:
    """CPU time (user + system, clock ticks) a process has used, None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


class Sampler(threading.Thread):
    """Polls, while the load runs, the peak RSS (VmHWM) of every worker and the CPU time of
    every process serving requests: the workers, what they started (the PDF renderer) and,
    on PostgreSQL, the database's backends. A worker recycled by max_requests takes its
    figures with it, so they are read before it goes (every 0.25 s)."""

    def __init__(self, server: "Gunicorn", database):
        super().__init__(daemon=True)
        self.server = server
        self.database = database
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.rss_kb: dict[int, int] = {}
        self.pss_kb: dict[int, int] = {}
        self.helper_kb: dict[int, int] = {}
        self.ticks: dict[int, int] = {}  # last CPU reading of every process seen
        self.backends: list[int] = []

    def run(self) -> None:
        while not self.stopped.wait(0.25):
            self.sample()

    def sample(self) -> None:
        workers, helpers = self.server.workers(), self.server.helpers()
        with self.lock:
            for pid in workers:
                self.rss_kb[pid] = max(self.rss_kb.get(pid, 0), proc_kb(pid, "VmHWM"))
                pss = proc_kb(pid, "Pss", "smaps_rollup")
                self.pss_kb[pid] = max(self.pss_kb.get(pid, 0), pss)
            for pid in helpers:
                self.helper_kb[pid] = max(self.helper_kb.get(pid, 0), proc_kb(pid, "VmHWM"))
            for pid in [*workers, *helpers, *self.backends]:
                ticks = proc_ticks(pid)
                if ticks is not None:
                    self.ticks[pid] = ticks

    def cpu_snapshot(self) -> dict[int, int]:
        """CPU ticks per process now; processes gone keep their last reading."""
        self.backends = self.database.backend_pids()
        self.sample()
        with self.lock:
            return dict(self.ticks)

    def finish(self) -> None:
        self.sample()
        self.stopped.set()
        self.join(timeout=5)


def cpu_ms(before: dict[int, int], after: dict[int, int], only: set[int] | None = None) -> float:
    tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
    return tick_ms * sum(
        ticks - before.get(pid, 0) for pid, ticks in after.items() if only is None or pid in only
    )


# --- databases ------------------------------------------------------------------------------


class Postgres:
    name = "PostgreSQL"

    def __init__(self):
        configured = os.environ.get("DATABASE_URL", "")
        server = configured if configured.startswith(("postgres://", "postgresql://")) else ""
        parts = urlsplit(server or DEFAULT_SERVER)
        self.admin_url = urlunsplit(parts._replace(path="/postgres"))
        self.url = urlunsplit(parts._replace(path=f"/{BENCH_DATABASE}"))

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(sql)

    def create(self) -> None:
        try:
            self._admin(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)')
            self._admin(f'CREATE DATABASE "{BENCH_DATABASE}"')
        except Exception as error:
            raise BenchError(
                f"cannot create {BENCH_DATABASE} on {self.admin_url}: {error}"
            ) from None

    def drop(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)')

    def settle(self) -> None:
        """Vacuums and analyzes the freshly seeded tables, as a clinic's database long in use
        is: otherwise autovacuum catches up on 45,000 new rows in the middle of the runs."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute("VACUUM (ANALYZE)")

    def backend_pids(self) -> list[int]:
        """The server processes of the app's connections (PostgreSQL's CPU is the app's too)."""
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            rows = connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (BENCH_DATABASE,)
            ).fetchall()
        return [pid for (pid,) in rows]

    def plan_versions(self, ids: list[int]) -> dict[int, int]:
        import psycopg

        with psycopg.connect(self.url) as connection:
            rows = connection.execute(
                "SELECT id, version FROM planner_treatmentplan WHERE id = ANY(%s)", (ids,)
            ).fetchall()
        return dict(rows)


class Sqlite:
    name = "SQLite"

    def __init__(self, folder: Path):
        self.path = folder / "bench.sqlite3"
        self.url = f"sqlite:///{self.path}"

    def create(self) -> None:
        self.path.unlink(missing_ok=True)

    def drop(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def settle(self) -> None:
        """Gives SQLite's query planner its statistics, as PostgreSQL's ``settle`` does."""
        with sqlite3.connect(self.path, timeout=10) as connection:
            connection.execute("ANALYZE")

    def backend_pids(self) -> list[int]:
        return []  # SQLite runs inside the workers, whose CPU is counted already

    def plan_versions(self, ids: list[int]) -> dict[int, int]:
        with sqlite3.connect(self.path, timeout=10) as connection:
            marks = ",".join("?" * len(ids))
            rows = connection.execute(
                f"SELECT id, version FROM planner_treatmentplan WHERE id IN ({marks})",  # noqa: S608
                ids,
            ).fetchall()
        return dict(rows)


def app_env(database_url: str, port: int, secret_key: str) -> dict[str, str]:
    """Production's environment: DEBUG off, a secret key, the allowed host; HTTPS off because
    the benchmark talks plain HTTP to 127.0.0.1 (no TLS proxy in front)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(
        DJANGO_SETTINGS_MODULE="nanofat.settings",
        DEBUG="0",
        SECRET_KEY=secret_key,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_HTTPS="0",
        DATABASE_URL=database_url,
        NANOFAT_BENCH="1",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def gunicorn_shape(env: dict[str, str]) -> str:
    saved = dict(os.environ)
    try:
        os.environ.update(env)
        conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return f"{conf['workers']} workers x {conf['threads']} threads ({conf['worker_class']})"


# --- wrk ------------------------------------------------------------------------------------


Lines = list[tuple[str, str, str]]


def wrk(
    base_url: str, endpoint: str, lines: Lines, connections: int, seconds: float, folder: Path
) -> Run:
    scenario = folder / f"{endpoint}-{connections}-{time.monotonic_ns()}.tsv"
    scenario.write_text("".join(f"{who}\t{key}\t{value}\n" for who, key, value in lines))
    process = start_wrk(base_url, scenario, connections, seconds)
    return finish_wrk(process, endpoint, connections, seconds)


def start_wrk(base_url: str, scenario: Path, connections: int, seconds: float):
    # One thread per connection: the Lua state of a thread is then one connection's state.
    command = [
        "wrk",
        f"-t{connections}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(SCENARIO_SCRIPT),
        base_url,
        "--",
        str(scenario),
    ]
    return subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish_wrk(process: subprocess.Popen, endpoint: str, connections: int, seconds: float) -> Run:
    try:
        out, err = process.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise BenchError(f"wrk did not finish ({endpoint}, {connections} connections)") from None
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if process.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({endpoint}):\n{out[-2000:]}\n{err[-2000:]}")
    data = json.loads(line.removeprefix("BENCH_RESULT "))
    failures = (
        data["non_2xx"]
        + data["connect_errors"]
        + data["read_errors"]
        + data["write_errors"]
        + data["timeouts"]
    )
    first = data["first_failure"]
    if data["requests"] == 0:
        failures += 1  # nothing answered within the run: a stall is a failure too
        first = first or f"no response within {seconds:g} s"
    if not first and failures:
        first = (
            f"socket errors: connect {data['connect_errors']}, read {data['read_errors']}, "
            f"write {data['write_errors']}, timeout {data['timeouts']}"
        )
    return Run(
        endpoint=endpoint,
        connections=connections,
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        failures=failures,
        non_2xx=data["non_2xx"],
        sent=data["sent"],
        first_failure=first,
    )


class Scenarios:
    """The wrk scenario lines of each endpoint, from what bench/seed.py created."""

    def __init__(self, data: dict):
        self.data = data
        self.csrf = data["csrf"]

    def _session(self, keys: list[str]) -> Lines:
        lines: Lines = [("*", "header", f"X-CSRFToken: {self.csrf}")]
        for index, key in enumerate(keys, start=1):
            lines.append((str(index), "header", f"Cookie: sessionid={key}; csrftoken={self.csrf}"))
        return lines

    def _htmx_post(self) -> Lines:
        return [
            ("*", "method", "POST"),
            ("*", "header", "HX-Request: true"),
            ("*", "header", "Content-Type: application/x-www-form-urlencoded"),
        ]

    def bare(self) -> Lines:
        return [("*", "path", "/bench/bare")]

    def builder40(self) -> Lines:
        lines = self._session(self.data["sessions"])
        for index, plan in enumerate(self.data["plans_40"], start=1):
            lines.append((str(index), "path", f"/plans/{plan['plan']}/"))
        return lines

    def builder5(self) -> Lines:
        return [
            *self._session(self.data["sessions"]),
            ("*", "path", f"/plans/{self.data['plan_5']}/"),
        ]

    def volume(self, versions: dict[int, int]) -> Lines:
        lines = self._session(self.data["sessions"]) + self._htmx_post()
        lines += [("*", "value", "0.25"), ("*", "value", "0.20")]
        for index, plan in enumerate(self.data["plans_40"], start=1):
            prefix = f"inj{plan['injection']}-"
            fields = {
                "zone": plan["zone"],
                "volume_ml": "{value}",
                "instrument": "needle",
                "gauge": "27",
                "depth": "dermis",
                "technique": "retrograde",
                "notes": "",
            }
            body = "&".join(f"{prefix}{name}={value}" for name, value in fields.items())
            who = str(index)
            lines += [
                (who, "path", f"/plans/{plan['plan']}/injections/{plan['injection']}/edit/"),
                (who, "body", body + "&version={version}"),
                (who, "version", str(versions[plan["plan"]])),
            ]
        return lines

    def validate(self) -> Lines:
        lines = self._session(self.data["sessions"]) + self._htmx_post()
        # 0.6 mL breaks the zone maximum: the response then carries a rule finding.
        lines += [("*", "value", value) for value in ("0.3", "0.6", "0.25")]
        fields = {
            "zone": "UPPER_LIP",
            "volume_ml": "{value}",
            "instrument": "needle",
            "gauge": "27",
            "depth": "dermis",
            "technique": "retrograde",
            "notes": "",
        }
        body = "&".join(f"new-{name}={value}" for name, value in fields.items())
        lines.append(("*", "body", body))
        for index, plan in enumerate(self.data["plans_40"], start=1):
            lines.append((str(index), "path", f"/plans/{plan['plan']}/injections/validate/"))
        return lines

    def search(self) -> Lines:
        # Typing in the search box: an htmx POST (no patient name ever goes into a URL).
        lines = self._session(self.data["sessions"]) + self._htmx_post()
        lines += [("*", "header", "HX-Target: patient-results"), ("*", "path", "/patients/")]
        lines += [("*", "value", query) for query in self.data["queries"]]
        lines.append(("*", "body", "q={value}"))
        return lines

    def pdf(self) -> Lines:
        return [
            *self._session(self.data["staff_sessions"]),
            ("*", "path", f"/plans/{self.data['pdf_plan']}/consent.pdf"),
        ]


# --- one database ---------------------------------------------------------------------------


@dataclass
class Stage:
    """One database's app server under measurement, from its seeding to its teardown."""

    database: object
    server: Gunicorn
    result: BackendResult
    folder: Path
    sampler: Sampler | None = None
    scenarios: Scenarios | None = None
    data: dict = field(default_factory=dict)
    endpoints: list[str] = field(default_factory=list)


def new_stage(database, folder: Path) -> Stage:
    port = free_port()
    env = app_env(database.url, port, secrets.token_urlsafe(50))
    server = Gunicorn(env, port, folder / f"gunicorn-{database.name}.log")
    return Stage(database, server, BackendResult(database.name), folder)


def open_stage(stage: Stage, with_contention: bool, wanted: set[str]) -> None:
    """Creates and seeds the database and starts its gunicorn; ``close_stage`` undoes it."""
    database, server, folder = stage.database, stage.server, stage.folder
    env = server.env
    database.create()
    step(f"{database.name}: migrate, reference data, cache table, seed, analyze")
    manage(env, "migrate", "--noinput")
    manage(env, "load_reference_data")
    manage(env, "createcachetable")
    seed_path = folder / f"seed-{database.name}.json"
    run_checked([PYTHON, str(HERE / "seed.py"), str(seed_path)], env, "bench/seed.py")
    database.settle()
    stage.data = json.loads(seed_path.read_text())
    stage.result.counts = stage.data["counts"]
    stage.scenarios = Scenarios(stage.data)
    step(f"{database.name}: gunicorn {gunicorn_shape(env)} on {server.base_url}")
    server.start()
    stage.sampler = Sampler(server, database)
    stage.sampler.start()
    stage.result.pdf_missing = not pdf_exists(server.base_url, stage.data)
    if stage.result.pdf_missing:
        stage.result.notes.append("consent PDF: no such URL yet (404); not measured")
    endpoints = [name for name in LABELS if name != "bare" and name in wanted]
    if not with_contention:
        # The second database answers one question, PostgreSQL against SQLite, and the PDF
        # and the 5-injection page do not depend on the database: not measured.
        endpoints = [name for name in endpoints if name not in ("pdf", "builder5")]
    if stage.result.pdf_missing and "pdf" in endpoints:
        endpoints.remove("pdf")
    stage.endpoints = endpoints


def warm_up(stage: Stage, endpoint: str) -> None:
    """A short run, not reported: no figure includes a cold worker or pool."""
    lines = scenario_lines(stage.scenarios, endpoint, stage.database, stage.data)
    warm = wrk(stage.server.base_url, endpoint, lines, 4, 1, stage.folder)
    if warm.requests == 0:
        # Nothing answered within the second (a first PDF starts its renderer): no stall to
        # count; a late error still shows in the access log.
        warm.failures -= 1
    stage.result.count(warm, f"{endpoint} warm-up")


def measured_run(stage: Stage, endpoint: str, connections: int, seconds: float) -> Run:
    """One wrk run on an idle server, with the server CPU it cost."""
    waited = stage.server.wait_idle()
    lines = scenario_lines(stage.scenarios, endpoint, stage.database, stage.data)
    before = stage.sampler.cpu_snapshot()
    run = wrk(stage.server.base_url, endpoint, lines, connections, seconds, stage.folder)
    # The requests still in flight when wrk stopped finish first: their CPU belongs to this
    # run, which counts them among those sent.
    stage.server.wait_idle()
    after = stage.sampler.cpu_snapshot()
    run.cpu_ms = cpu_ms(before, after)
    run.db_cpu_ms = cpu_ms(before, after, only=set(stage.sampler.backends))
    stage.result.count(run, endpoint)
    show(run, stage.result, note=f"waited {waited:.1f} s for idle" if waited > 2 else "")
    return run


def measure(databases: list, seconds: float, rounds: int, folder: Path, wanted: set[str]) -> dict:
    """Every database's figures, taken in turns: both app servers run side by side (the one
    not measured idles), and each run on PostgreSQL is followed at once by the same run on
    SQLite. The machine's speed drifts by a third within minutes, so the two figures compared
    are taken seconds apart, not minutes.

    For the table, the bare view runs first, once per connection count, and is not repeated
    beside each endpoint: at its rate both workers reach max_requests in every run, and the
    endpoint run after it would start with a replaced worker still lingering on its kept-alive
    connections (measured: p99 of the validation 0.5-1.2 s against 0.1-0.3 s). The paired
    rounds that follow (``paired_round``) run it after their endpoints, and each endpoint of the
    next round starts with a warm-up run."""
    stages: list[Stage] = []
    try:
        for database in databases:
            stages.append(new_stage(database, folder))
            open_stage(stages[-1], with_contention=database.name == "PostgreSQL", wanted=wanted)
        for connections in CONNECTIONS:
            for stage in stages:
                stage.result.add(measured_run(stage, "bare", connections, seconds))
        for endpoint in [name for name in LABELS if name != "bare"]:
            active = [stage for stage in stages if endpoint in stage.endpoints]
            for stage in active:
                warm_up(stage, endpoint)
            # A PDF takes about a second of CPU: a run of a few seconds would hold too few.
            length = max(seconds, PDF_SECONDS) if endpoint == "pdf" else seconds
            for connections in (1,) if endpoint == "builder5" else CONNECTIONS:
                for stage in active:
                    stage.result.add(measured_run(stage, endpoint, connections, length))
        for stage in stages:
            if {"builder40", "pdf"} <= set(stage.endpoints):  # PostgreSQL's, with a PDF
                contention(stage, seconds)
        for number in range(1, rounds + 1):
            step(f"paired round {number} of {rounds}")
            paired_round(stages, seconds)
        for stage in stages:
            settle_up(stage)
    finally:
        for stage in stages:
            close_stage(stage)
    return {stage.result.name: stage.result for stage in stages}


def paired_round(stages: list[Stage], seconds: float) -> None:
    """One round of the figures the targets compare, each beside what it is compared with:
    every ratio endpoint at ROUND_CONNECTIONS on each database in turns, the 5- and 40-injection
    builder at 1 connection one after the other, and the bare view last, so its recycled
    workers (max_requests) are replaced before the next round's warm-up, not during a run."""
    for stage in stages:
        stage.result.rounds.append({})

    def take(stage: Stage, endpoint: str, connections: int) -> None:
        run = measured_run(stage, endpoint, connections, seconds)
        stage.result.rounds[-1][(endpoint, connections)] = run

    for endpoint in RATIO_TARGETS:
        active = [stage for stage in stages if endpoint in stage.endpoints]
        for stage in active:
            warm_up(stage, endpoint)
        for connections in ROUND_CONNECTIONS:
            for stage in active:
                take(stage, endpoint, connections)
        if endpoint == "builder40":
            for stage in [stage for stage in active if "builder5" in stage.endpoints]:
                warm_up(stage, "builder5")
                take(stage, "builder5", 1)
                take(stage, "builder40", 1)
    for connections in ROUND_CONNECTIONS:
        for stage in stages:
            take(stage, "bare", connections)


def settle_up(stage: Stage) -> None:
    """Failures that came after their wrk run had stopped waiting, from the access log."""
    waited = stage.server.wait_idle()
    if waited > 5:
        stage.result.notes.append(f"the server needed {waited:.0f} s to finish the last backlog")
    statuses = stage.server.statuses()
    late = sum(n for status, n in statuses.items() if not status.startswith("2"))
    counted = stage.result.non_2xx_seen
    if late > counted:
        # Answered after wrk stopped waiting (a queued PDF timing out, for instance).
        stage.result.failures += late - counted
        stage.result.notes.append(
            f"{late - counted} non-2xx answers came after their wrk run ended: "
            + ", ".join(f"{n} x {status}" for status, n in sorted(statuses.items()))
        )


def close_stage(stage: Stage) -> None:
    try:
        if stage.sampler is not None:
            stage.sampler.finish()
            stage.result.rss_mb = {pid: kb / 1024 for pid, kb in stage.sampler.rss_kb.items()}
            stage.result.pss_mb = {pid: kb / 1024 for pid, kb in stage.sampler.pss_kb.items()}
            stage.result.helper_rss_mb = {
                pid: kb / 1024 for pid, kb in stage.sampler.helper_kb.items()
            }
    finally:
        stage.server.stop()
        stage.database.drop()


def scenario_lines(scenarios: Scenarios, endpoint: str, database, data: dict) -> Lines:
    if endpoint == "volume":
        return scenarios.volume(settled_versions(database, data))
    return getattr(scenarios, endpoint)()


def settled_versions(database, data: dict) -> dict[int, int]:
    """The plans' versions once the server has finished the requests wrk left in flight when
    it stopped (each would bump a version after we read it, and every later edit would then be
    a stale-version 409): read until two reads half a second apart agree."""
    ids = [plan["plan"] for plan in data["plans_40"]]
    versions = database.plan_versions(ids)
    for _ in range(40):
        time.sleep(0.5)
        again = database.plan_versions(ids)
        if again == versions:
            break
        versions = again
    return versions


def pdf_exists(base_url: str, data: dict) -> bool:
    request = urllib.request.Request(
        f"{base_url}/plans/{data['pdf_plan']}/consent.pdf",
        headers={"Cookie": f"sessionid={data['staff_sessions'][0]}; csrftoken={data['csrf']}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status == 200
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return False
        raise BenchError(f"consent PDF answered {error.code}") from None


def contention(stage: Stage, seconds: float) -> None:
    """The builder page at CONTENTION_CONNECTIONS alone, then at once while PDF_CLIENTS
    download PDFs non-stop."""
    result = stage.result
    # measured_run returns once the server is idle again: the PDF clients start on a quiet one.
    result.contention_solo = measured_run(stage, "builder40", CONTENTION_CONNECTIONS, seconds)
    pdf_file = stage.folder / "contention-pdf.tsv"
    pdf_file.write_text("".join(f"{w}\t{k}\t{v}\n" for w, k, v in stage.scenarios.pdf()))
    base_url = stage.server.base_url
    pdf_process = start_wrk(base_url, pdf_file, PDF_CLIENTS, seconds + 2)
    try:
        time.sleep(1)  # the PDF downloads are under way before the builder is measured
        run = wrk(
            base_url,
            "builder40",
            stage.scenarios.builder40(),
            CONTENTION_CONNECTIONS,
            seconds,
            stage.folder,
        )
    finally:
        pdf_run = finish_wrk(pdf_process, "pdf", PDF_CLIENTS, seconds + 2)
    result.contention, result.contention_pdf = run, pdf_run
    result.count(run, "builder40 during PDF downloads")
    result.count(pdf_run, "PDF downloads during the builder run")
    show(run, result, note=f"while {PDF_CLIENTS} clients download PDFs")
    show(pdf_run, result, note="the PDF clients meanwhile")


# --- output ---------------------------------------------------------------------------------


def step(message: str) -> None:
    print(f"== {message}", flush=True)


def show(run: Run, result: BackendResult, note: str = "") -> None:
    failed = f", {run.failures} FAILED ({run.first_failure})" if run.failures else ""
    extra = f" [{note}]" if note else ""
    cpu = ""
    if run.cpu_ms and run.sent:
        cpu = f"  cpu {run.cpu_per_request:6.2f} ms/req (db {run.db_cpu_ms / run.sent:5.2f})"
    print(
        f"   {result.name:<10} {run.endpoint:<10} c={run.connections:<3} "
        f"{run.rps:9.1f} req/s  p50 {run.p50_ms:8.2f} ms  p99 {run.p99_ms:8.2f} ms"
        f"{cpu}{failed}{extra}",
        flush=True,
    )


def table(result: BackendResult) -> list[str]:
    rows = [
        f"{result.name}: {result.counts.get('patients', 0)} patients, "
        f"{result.counts.get('plans', 0)} plans, {result.counts.get('injections', 0)} injections",
        f"{'endpoint':<30}{'conns':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'/ bare':>8}"
        f"{'cpu ms':>8}{'failed':>7}",
    ]
    for endpoint in LABELS:
        for connections in CONNECTIONS:
            run = result.runs.get((endpoint, connections))
            if run is None:
                continue
            bare = result.runs.get(("bare", connections))
            ratio = run.rps / bare.rps if bare and bare.rps else 0.0
            rows.append(
                f"{LABELS[endpoint]:<30}{connections:>6}{run.rps:>9.1f}{run.p50_ms:>9.2f}"
                f"{run.p99_ms:>9.2f}{ratio:>8.1%}{run.cpu_per_request:>8.2f}{run.failures:>7}"
            )
    return rows


def median_of(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def per_round(rounds: int, figure) -> list[float]:
    """``figure(round_index)`` for every round where it could be taken (None: not measured)."""
    values = [figure(index) for index in range(rounds)]
    return [value for value in values if value is not None]


def round_check(target: str, values: list[float], show, met) -> tuple[str, str, bool]:
    """A target's verdict from the median of its rounds, every round's figure shown."""
    median = median_of(values)
    rounds = ", ".join(show(value) for value in values)
    return (
        f"{target} (median of {len(values)} rounds)",
        f"{show(median)} (rounds: {rounds})",
        met(median),
    )


def throughput_ratio(top: Run | None, bottom: Run | None) -> float | None:
    return top.rps / bottom.rps if top and bottom and bottom.rps else None


def cpu_ratio(cheap: Run | None, dear: Run | None) -> float | None:
    """``cheap``'s server CPU per request over ``dear``'s: the throughput ratio the two would
    have if the server's CPU were all they had to share."""
    if cheap and dear and cheap.cpu_per_request and dear.cpu_per_request:
        return cheap.cpu_per_request / dear.cpu_per_request
    return None


def verdicts(results: dict[str, BackendResult]) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for every target of issue 7. The ratios come from the paired
    rounds, each round's figures taken seconds apart; the verdict is their median."""
    checks: list[tuple[str, str, bool]] = []
    main = results.get("PostgreSQL") or next(iter(results.values()))
    rounds = main.rounds
    percent, twice = "{:.1%}".format, "{:.2f}".format
    for endpoint, target in RATIO_TARGETS.items():
        values = per_round(
            len(rounds),
            lambda i, e=endpoint: throughput_ratio(
                peak_of(rounds[i], e), peak_of(rounds[i], "bare")
            ),
        )
        if values:
            checks.append(
                round_check(
                    f"{LABELS[endpoint]} >= {target:.0%} of bare ({main.name}, peak vs peak)",
                    values,
                    percent,
                    lambda ratio, t=target: ratio >= t,
                )
            )
    # The same targets on server CPU per request (workers, renderer, database) at 8
    # connections: what the throughput ratios come to when nothing else runs on the machine.
    for endpoint, target in RATIO_TARGETS.items():
        values = per_round(
            len(rounds),
            lambda i, e=endpoint: cpu_ratio(rounds[i].get(("bare", 8)), rounds[i].get((e, 8))),
        )
        if values:
            checks.append(
                round_check(
                    f"{LABELS[endpoint]} >= {target:.0%} of bare by server CPU per request",
                    values,
                    percent,
                    lambda ratio, t=target: ratio >= t,
                )
            )
    # The median, not 1 / throughput: one stall of a neighbour would move the mean.
    growths = per_round(len(rounds), lambda i: p50_growth(rounds[i]))
    if growths:
        checks.append(
            round_check(
                f"builder service time (p50) at 1 connection, 5 -> 40 injections, grows < "
                f"{GROWTH_LIMIT:.0%}",
                growths,
                "{:+.0%}".format,
                lambda growth: growth < GROWTH_LIMIT,
            )
        )
    if "PostgreSQL" in results and "SQLite" in results:
        pg, lite = results["PostgreSQL"].rounds, results["SQLite"].rounds
        paired = min(len(pg), len(lite))
        for endpoint in RATIO_TARGETS:
            by_rps = per_round(
                paired,
                lambda i, e=endpoint: throughput_ratio(peak_of(pg[i], e), peak_of(lite[i], e)),
            )
            by_cpu = per_round(
                paired, lambda i, e=endpoint: cpu_ratio(lite[i].get((e, 8)), pg[i].get((e, 8)))
            )
            for values, how in ((by_rps, ""), (by_cpu, " by server CPU per request")):
                if values:
                    checks.append(
                        round_check(
                            f"PostgreSQL >= {POSTGRES_VS_SQLITE} of SQLite{how}: "
                            f"{LABELS[endpoint]}",
                            values,
                            twice,
                            lambda ratio: ratio >= POSTGRES_VS_SQLITE,
                        )
                    )
    solo = main.contention_solo
    if main.contention and solo and solo.rps:
        share = main.contention.rps / solo.rps
        checks.append(
            (
                f"builder keeps >= {CONTENTION_SHARE:.0%} of its throughput "
                f"({CONTENTION_CONNECTIONS} connections) while {PDF_CLIENTS} clients download PDFs",
                f"{share:.0%} ({main.contention.rps:.0f} / {solo.rps:.0f} req/s; PDFs meanwhile "
                f"{main.contention_pdf.rps:.1f}/s)",
                share >= CONTENTION_SHARE,
            )
        )
    elif main.pdf_missing:
        checks.append(("builder under PDF load", "not measured: no consent PDF URL", False))
    for result in results.values():
        if result.rss_mb:
            worst = max(result.rss_mb.values())
            checks.append(
                (
                    f"peak RSS per gunicorn worker < {RSS_LIMIT_MB} MB ({result.name})",
                    f"{worst:.0f} MB max over {len(result.rss_mb)} workers (PSS "
                    f"{max(result.pss_mb.values(), default=0):.0f} MB)",
                    worst < RSS_LIMIT_MB,
                )
            )
    failures = sum(result.failures for result in results.values())
    checks.append(("zero failed requests", str(failures), failures == 0))
    return checks


def p50_growth(runs: dict[tuple[str, int], Run]) -> float | None:
    small, large = runs.get(("builder5", 1)), runs.get(("builder40", 1))
    if small and large and small.p50_ms and large.p50_ms:
        return large.p50_ms / small.p50_ms - 1
    return None


def report(results: dict[str, BackendResult], shape: str, seconds: float, rounds: int) -> None:
    print()
    print(f"gunicorn {shape}; wrk, one thread per connection, {seconds:g} s per run")
    for result in results.values():
        print()
        print("\n".join(table(result)))
        solo = result.contention_solo
        if result.contention and solo:
            share = result.contention.rps / solo.rps if solo.rps else 0
            print(
                f"{'builder 40, PDFs downloading':<30}{CONTENTION_CONNECTIONS:>6}"
                f"{result.contention.rps:>9.1f}{result.contention.p50_ms:>9.2f}"
                f"{result.contention.p99_ms:>9.2f}  {share:.0%} of its {solo.rps:.1f} req/s "
                "alone just before"
            )
        if result.helper_rss_mb:
            print(
                f"render service and helper processes: {len(result.helper_rss_mb)}, peak RSS "
                f"{max(result.helper_rss_mb.values()):.0f} MB"
            )
        for note in result.notes:
            print(f"note: {note}")
    if "PostgreSQL" in results and "SQLite" in results:
        print()
        print("PostgreSQL / SQLite, peak throughput")
        for endpoint in LABELS:
            pg, lite = results["PostgreSQL"].peak(endpoint), results["SQLite"].peak(endpoint)
            if pg and lite and lite.rps:
                print(f"  {LABELS[endpoint]:<30}{pg.rps / lite.rps:>6.2f}")
    print()
    print(
        f"Targets (issue 7); the ratios are medians of {rounds} paired rounds, each at "
        f"{' and '.join(map(str, ROUND_CONNECTIONS))} connections (CPU: at 8)"
    )
    for target, measured, met in verdicts(results):
        print(f"  [{'met ' if met else 'MISS'}] {target}: {measured}")


def static_is_fresh() -> bool:
    """collectstatic compresses every file (about 30 s here); when its manifest is newer than
    every source file, running it again would produce the same files."""
    manifest = ROOT / "staticfiles" / "staticfiles.json"
    if not manifest.exists():
        return False
    built = manifest.stat().st_mtime
    return all(path.stat().st_mtime < built for path in (ROOT / "static").rglob("*"))


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("postgresql", "sqlite"))
    parser.add_argument(
        "--endpoints",
        default=",".join(LABELS),
        help=f"comma-separated subset of {','.join(LABELS)} (the bare view always runs)",
    )
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", "3")))
    parser.add_argument(
        "--rounds",
        type=int,
        default=int(os.environ.get("BENCH_ROUNDS", "3")),
        help="paired rounds the verdicts take their medians over (at least 1)",
    )
    parser.add_argument(
        "--skip-collectstatic",
        action="store_true",
        help="reuse staticfiles/ as the last collectstatic left it (saves ~30 s when iterating)",
    )
    parser.add_argument("--logs", type=Path, help="copy the gunicorn logs into this folder")
    options = parser.parse_args()
    if options.rounds < 1:
        parser.error("--rounds must be at least 1: the verdicts are taken from the rounds")
    unknown = set(options.endpoints.split(",")) - set(LABELS)
    if unknown:
        parser.error(f"unknown endpoints: {', '.join(sorted(unknown))}")
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed: `make sysdeps` (Debian package wrk)")
    if not Path(GUNICORN).exists():
        raise BenchError(f"no gunicorn beside {PYTHON}: run `make venv`")
    # SIGTERM (from make or CI) unwinds through the finally blocks like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    results: dict[str, BackendResult] = {}
    with tempfile.TemporaryDirectory(prefix="nanofat-bench-") as tmp:
        folder = Path(tmp)
        shape = gunicorn_shape(app_env("sqlite://", 0, "x"))
        if options.skip_collectstatic or static_is_fresh():
            step("staticfiles/ is newer than every file under static/: collectstatic skipped")
        else:
            step("collectstatic (whitenoise serves the manifest, as in production)")
            static_env = app_env(f"sqlite:///{folder / 'static.sqlite3'}", 0, "x")
            manage(static_env, "collectstatic", "--noinput")
        databases = []
        if options.only in (None, "postgresql"):
            databases.append(Postgres())
        if options.only in (None, "sqlite"):
            databases.append(Sqlite(folder))
        results = measure(
            databases,
            options.seconds,
            options.rounds,
            folder,
            wanted=set(options.endpoints.split(",")),
        )
        report(results, shape, options.seconds, options.rounds)
        if options.logs:
            options.logs.mkdir(parents=True, exist_ok=True)
            for log in folder.glob("gunicorn-*.log"):
                shutil.copy(log, options.logs / log.name)
    print(f"\nwhole run: {time.monotonic() - started:.0f} s")
    failures = sum(result.failures for result in results.values())
    if failures:
        print(f"FAILED: {failures} request(s) did not succeed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"bench/load.py: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("bench/load.py: interrupted; every process it started was stopped", file=sys.stderr)
        sys.exit(130)
