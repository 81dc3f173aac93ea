"""The stack's files, checked offline by the real tools (tests/ops/tools.py finds or installs
them): compose.yaml by Docker Compose v2 itself, the gunicorn configuration by gunicorn, the
Dockerfile by hadolint; then the relations between them that no tool checks (shutdown budgets,
one beat, blue/green symmetry, the env example against the settings, every Prometheus target
against the service that must answer it)."""

import copy
import json
import logging
import os
import re
import runpy
import shlex
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tests.ops import tools
from tests.ops.promcheck import prometheus_config, scrape_targets

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
APP_ENV_EXAMPLE = ROOT / "deploy" / "env" / "app.env.example"
COMPOSE_ENV_EXAMPLE = ROOT / "deploy" / "env" / "compose.env.example"

# What deploy/env/compose.env provides in production: compose.yaml requires these (${VAR:?}).
REQUIRED_VARS = {
    "POSTGRES_PASSWORD": "test-postgres-password",
    "SECRET_KEY": "test-secret-key",
    "FIELD_ENCRYPTION_KEY": "test-fernet-key",
    "METRICS_TOKEN": "test-metrics-token",
}
COLOURS = ("blue", "green")
WEB = tuple(f"web-{colour}" for colour in COLOURS)
WORKERS = tuple(f"worker-{colour}" for colour in COLOURS)
# The exporters and the port each listens on (their default; Prometheus scrapes them there).
EXPORTERS = {"celery-exporter": 9808, "postgres-exporter": 9187, "node-exporter": 9100}
MONITORING = ("prometheus", "alertmanager", "grafana", *EXPORTERS)
# What the autoscaler scales (`--scale web-green=4`): Prometheus must find every replica.
SCALED = (*WEB, *WORKERS)


def run(args: list[str], *, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)


def compose_env(**overrides: str | None) -> dict:
    """The test's environment for Compose: nothing inherited that steers it, the required
    variables set (placeholders), `None` to leave one out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    for name in (*REQUIRED_VARS, "POSTGRES_USER", "POSTGRES_DB", "APP_HOSTS", "APP_IMAGE"):
        env.pop(name, None)
    env.update(REQUIRED_VARS)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def compose_run(path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [*tools.compose(), "-f", str(path), "--project-directory", str(ROOT), *args]
    return run(command, env=compose_env() if env is None else env)


def seconds(duration) -> float:
    """A Compose duration ("45s", "5m30s", "1h") or a number of seconds."""
    if isinstance(duration, int | float):
        return float(duration)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", str(duration))
    assert parts and "".join(n + u for n, u in parts) == str(duration), duration
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6}
    return sum(float(number) * scale[unit] for number, unit in parts)


def argv(command) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def option(command, name: str) -> str | None:
    args = argv(command)
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def mounts(service: dict) -> list[tuple[str, str, bool]]:
    """(source, target, read only) of each volume, from the short syntax of the file or the long
    one of Compose's output (bind sources made relative again: "./deploy/traefik")."""
    found = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, target, *mode = volume.split(":")
            found.append((source, target, "ro" in ",".join(mode).split(",")))
            continue
        source = volume.get("source", "")
        if volume.get("type") == "bind" and Path(source).is_relative_to(ROOT):
            source = "./" + Path(source).relative_to(ROOT).as_posix()
        found.append((source, volume["target"], bool(volume.get("read_only"))))
    return found


def ports(service: dict) -> list[tuple[str, str, str]]:
    """(host address or "", published, container port) of each published port."""
    found = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            found.append((port.get("host_ip", ""), str(port["published"]), str(port["target"])))
            continue
        parts = str(port).split(":")
        found.append(("", *parts) if len(parts) == 2 else tuple(parts))
    return found


def networks(service: dict) -> set[str]:
    """The networks of a service: a list in the file, a mapping in Compose's output."""
    return set(service.get("networks") or ["default"])


def listening_ports(service: dict) -> set[int]:
    """The container ports a service declares: `expose` and the targets of `ports`."""
    declared = {int(port) for port in service.get("expose") or []}
    return declared | {int(target) for _, _, target in ports(service)}


def image_tag(image: str) -> str:
    """The tag of an image reference ("" for none): "quay.io/x/y:v1.2.3@sha256:..." -> v1.2.3."""
    name = image.partition("@")[0].rpartition("/")[2]
    return name.partition(":")[2]


@pytest.fixture(scope="module", params=["yaml", "compose"])
def stack(request) -> dict:
    """compose.yaml as data, twice: as written (PyYAML, anchors and merge keys resolved) and as
    Compose resolves it (`config --format json`, every profile, placeholders interpolated)."""
    if request.param == "yaml":
        try:
            import yaml
        except ImportError:
            tools.unavailable("PyYAML is not installed")
        return yaml.safe_load(COMPOSE_FILE.read_text())
    # Two releases side by side, as in the middle of a blue/green deploy.
    env = compose_env(BLUE_TAG="1.0.0", GREEN_TAG="1.0.1")
    args = ("--profile", "monitoring", "config", "--format", "json")
    result = compose_run(COMPOSE_FILE, *args, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def services(stack) -> dict:
    return stack["services"]


# ------------------------------------------------------------------ Compose itself


@pytest.mark.parametrize("profiles", [(), ("--profile", "monitoring")], ids=["core", "monitoring"])
def test_compose_config_is_valid(profiles):
    result = compose_run(COMPOSE_FILE, *profiles, "config", "-q")
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_rejects_a_bad_depends_on_condition(tmp_path):
    text = COMPOSE_FILE.read_text()
    assert "condition: service_healthy" in text
    broken = tmp_path / "compose.yaml"
    broken.write_text(text.replace("condition: service_healthy", "condition: service_happy", 1))
    result = compose_run(broken, "config", "-q")
    assert result.returncode != 0
    assert "condition" in result.stderr, result.stderr


def test_compose_rejects_an_unknown_key(tmp_path):
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE_FILE.read_text().replace("stop_grace_period:", "stop_grace:", 1))
    result = compose_run(broken, "config", "-q")
    assert result.returncode != 0 and "stop_grace" in result.stderr, result.stderr


@pytest.mark.parametrize("missing", sorted(REQUIRED_VARS))
def test_compose_refuses_to_run_without_a_required_secret(missing):
    result = compose_run(COMPOSE_FILE, "config", "-q", env=compose_env(**{missing: None}))
    assert result.returncode != 0
    assert missing in result.stderr, result.stderr


def test_the_required_variables_are_in_the_compose_env_example():
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", COMPOSE_ENV_EXAMPLE.read_text(), re.M))
    code = re.sub(r"^\s*#.*$", "", COMPOSE_FILE.read_text(), flags=re.M)
    required = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*):\?", code))
    assert required == set(REQUIRED_VARS)
    assert required <= listed


def test_the_core_stack_runs_without_the_monitoring_profile(services):
    for name in MONITORING:
        assert services[name].get("profiles") == ["monitoring"], name
    for name, service in services.items():
        if name in MONITORING:
            continue
        assert "profiles" not in service, name
        assert not set(service.get("depends_on") or {}) & set(MONITORING), name


# ------------------------------------------------------------------ the stack's shape


def test_compose_spec_without_version_key(stack):
    assert "version" not in stack
    expected = {"traefik", "postgres", "redis", "beat", *WEB, *WORKERS, *MONITORING}
    assert expected <= set(stack["services"])


def test_exactly_one_beat_and_it_never_scales(services):
    beats = [
        name
        for name, service in services.items()
        if "beat" in argv(service.get("command") or [])[:5]
    ]
    assert beats == ["beat"]
    beat = services["beat"]
    assert argv(beat["command"])[:4] == ["celery", "-A", "ops", "beat"]
    assert beat["deploy"]["replicas"] == 1
    assert "scale" not in beat
    # No worker runs an embedded beat (-B) either.
    for name in WORKERS:
        assert "-B" not in argv(services[name]["command"]) and "--beat" not in argv(
            services[name]["command"]
        )


def test_web_and_workers_have_health_checks_and_drain_budgets(services):
    for name in (*WEB, *WORKERS):
        check = services[name].get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), name
        assert "stop_grace_period" in services[name], name


def gunicorn_settings(monkeypatch, env: dict[str, str]) -> dict:
    for name in list(os.environ):
        if name.startswith(("GUNICORN_", "WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR")):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(GUNICORN_CONF))


def test_web_stop_grace_period_exceeds_gunicorn_graceful_timeout(services, monkeypatch):
    for name in WEB:
        service = services[name]
        assert argv(service["command"]) == [
            "gunicorn",
            "-c",
            "deploy/gunicorn.conf.py",
            "ops.wsgi:application",
        ]
        env = environment(service)
        # Pinned in `environment:` (which wins over env_file), so app.env cannot raise it.
        assert "GUNICORN_GRACEFUL_TIMEOUT" in env, name
        graceful = gunicorn_settings(monkeypatch, env)["graceful_timeout"]
        assert seconds(service["stop_grace_period"]) > graceful, name


def test_worker_stop_grace_period_covers_the_task_time_limit(services):
    for name in WORKERS:
        command = services[name]["command"]
        assert argv(command)[:4] == ["celery", "-A", "ops", "worker"], name
        queues = (option(command, "-Q") or "").split(",")
        assert "celery" in queues, name
        hard = option(command, "--time-limit")
        soft = option(command, "--soft-time-limit")
        assert hard is not None, f"{name}: without --time-limit no grace period is enough"
        assert soft is None or float(soft) < float(hard), name
        assert seconds(services[name]["stop_grace_period"]) >= float(hard), name


def test_the_colours_are_the_same_service_but_for_the_image(services):
    def normalised(name: str) -> str:
        service = copy.deepcopy(services[name])
        service.pop("image")
        return json.dumps(service, sort_keys=True).replace("green", "blue")

    assert normalised("web-blue") == normalised("web-green")
    assert normalised("worker-blue") == normalised("worker-green")
    assert services["web-blue"]["image"] != services["web-green"]["image"]


def test_each_colour_knows_its_colour_and_the_beat_has_none(services):
    for colour in COLOURS:
        for name in (f"web-{colour}", f"worker-{colour}"):
            env = environment(services[name])
            assert env["APP_COLOUR"] == colour, name
            assert env["DATABASE_URL"].startswith("postgres://"), name  # the anchor still merges
    assert "APP_COLOUR" not in environment(services["beat"])
    assert environment(services["web-green"])["GUNICORN_GRACEFUL_TIMEOUT"] == "30"


def test_app_services_wait_for_healthy_postgres_and_redis(services):
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"], name
    assert "pg_isready" in " ".join(argv(services["postgres"]["healthcheck"]["test"]))
    for name in (*WEB, *WORKERS, "beat"):
        depends = services[name]["depends_on"]
        for dependency in ("postgres", "redis"):
            assert depends[dependency]["condition"] == "service_healthy", (name, dependency)


def test_app_services_read_the_optional_env_file_and_a_metrics_tmpfs(services):
    # Compose's output merges env files into `environment`: the file itself says it.
    assert re.search(
        r"env_file:\n\s+- path: deploy/env/app\.env\n\s+required: false", COMPOSE_FILE.read_text()
    )
    for name in (*WEB, *WORKERS, "beat"):
        service = services[name]
        if "env_file" in service:
            assert {"path": "deploy/env/app.env", "required": False} in service["env_file"]
        directory = environment(service)["PROMETHEUS_MULTIPROC_DIR"]
        assert any(str(mount).split(":")[0] == directory for mount in service["tmpfs"]), name
        limits = service["deploy"]["resources"]["limits"]
        assert limits.get("memory") and limits.get("cpus"), name


def test_only_traefik_is_public_and_metrics_stay_internal(services):
    traefik = services["traefik"]
    assert ("./deploy/traefik", "/etc/traefik", True) in mounts(traefik)
    assert ("", "80", "80") in ports(traefik)
    assert [p for p in ports(traefik) if p[2] == "8080"] == [("127.0.0.1", "8080", "8080")]
    assert [p for p in ports(traefik) if p[2] == "8081"] == [("127.0.0.1", "8081", "8081")]
    # Every published port is one of Traefik's entry points.
    static = yaml.safe_load((ROOT / "deploy/traefik/traefik.yml").read_text())
    entry_ports = {ep["address"].rsplit(":", 1)[1] for ep in static["entryPoints"].values()}
    assert {target for _, _, target in ports(traefik)} <= entry_ports
    for name, service in services.items():
        if name == "traefik":
            continue
        for host, published, _ in ports(service):
            assert host == "127.0.0.1", (name, published)
    # The web containers publish nothing and carry no Traefik labels: the routers live in
    # deploy/traefik/, and /metrics is scraped on the internal network only.
    for name in WEB:
        assert not ports(services[name]) and not services[name].get("labels"), name


def test_traefik_outlives_its_own_grace_time(services):
    static = ROOT / "deploy" / "traefik" / "traefik.yml"
    if not static.is_file():
        pytest.skip("deploy/traefik/traefik.yml is not written yet")
    yaml = pytest.importorskip("yaml")
    web = yaml.safe_load(static.read_text())["entryPoints"]["web"]
    grace = web.get("transport", {}).get("lifeCycle", {}).get("graceTimeOut", "10s")
    assert seconds(services["traefik"]["stop_grace_period"]) > seconds(grace)


def traefik_idle_timeouts() -> dict[str, float]:
    """How long Traefik keeps an idle connection to the app for reuse: the static
    serversTransport's idleConnTimeout (Traefik's default 90 s when unset) and that of every
    serversTransport of the dynamic configuration."""
    static = yaml.safe_load((ROOT / "deploy" / "traefik" / "traefik.yml").read_text())
    timeouts = (static.get("serversTransport") or {}).get("forwardingTimeouts") or {}
    found = {"traefik.yml": seconds(timeouts.get("idleConnTimeout", "90s"))}
    for path in sorted((ROOT / "deploy" / "traefik" / "dynamic").glob("*.yml")):
        transports = ((yaml.safe_load(path.read_text()) or {}).get("http") or {}).get(
            "serversTransports"
        ) or {}
        for name, transport in transports.items():
            timeouts = (transport or {}).get("forwardingTimeouts") or {}
            found[f"{path.name}: {name}"] = seconds(timeouts.get("idleConnTimeout", "90s"))
    return found


def test_gunicorn_never_closes_a_connection_traefik_may_still_reuse(monkeypatch):
    """The 502 race: Traefik sends a request on an idle upstream connection at the moment
    gunicorn closes it for being idle `keepalive` seconds. Either gunicorn keeps no idle
    connection at all (keepalive 0: every response says `Connection: close`, so Traefik never
    reuses one), or it keeps them longer than any Traefik idle timeout, so Traefik closes first.
    Checked for the default and for the value deploy/env/app.env.example sets."""
    idle = traefik_idle_timeouts()
    values = {"gunicorn.conf.py default": gunicorn_settings(monkeypatch, {})["keepalive"]}
    example = re.search(r"^GUNICORN_KEEPALIVE=(\d+)", APP_ENV_EXAMPLE.read_text(), re.M)
    if example:
        conf = gunicorn_settings(monkeypatch, {"GUNICORN_KEEPALIVE": example[1]})
        values["app.env.example"] = conf["keepalive"]

    def races(keepalive: float) -> bool:
        return 0 < keepalive <= max(idle.values())

    for source, keepalive in values.items():
        assert not races(keepalive), (source, keepalive, idle)
    assert races(2) and races(max(idle.values())) and not races(0)  # the check can refuse


def test_monitoring_mounts_its_directories_read_only(services):
    assert ("./deploy/prometheus", "/etc/prometheus", True) in mounts(services["prometheus"])
    assert ("./deploy/alertmanager", "/etc/alertmanager", True) in mounts(services["alertmanager"])
    grafana = [m for m in mounts(services["grafana"]) if m[0].startswith("./deploy/grafana/")]
    assert grafana and all(read_only for _, _, read_only in grafana)


def test_state_lives_in_named_volumes(stack):
    services = stack["services"]
    for name, target in (("postgres", "/var/lib/postgresql/data"), ("redis", "/data")):
        (source,) = [s for s, t, _ in mounts(services[name]) if t == target]
        assert source in stack["volumes"], name


# ------------------------------------------------------------------ exporters and scrapes


def test_the_exporters_are_pinned_private_and_limited(services):
    prometheus = networks(services["prometheus"])
    for name, port in EXPORTERS.items():
        service = services[name]
        assert service.get("profiles") == ["monitoring"], name
        tag = image_tag(service["image"])
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: {service['image']} is not pinned"
        # Reached over the compose networks only: nothing on the host, not even loopback.
        assert not ports(service), name
        assert service.get("network_mode") is None, name
        assert port in listening_ports(service), name
        assert networks(service) & prometheus, f"{name} shares no network with prometheus"
        limits = service["deploy"]["resources"]["limits"]
        assert limits.get("memory") and limits.get("cpus"), name
        assert service["restart"] == "unless-stopped", name
        assert service["logging"]["driver"] == "json-file", name
        check = service.get("healthcheck") or {}
        assert check.get("test") or check.get("disable"), f"{name}: say why there is no check"


def test_the_postgres_exporter_password_is_interpolated_never_written():
    yaml = pytest.importorskip("yaml")
    written = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["postgres-exporter"]
    assert re.fullmatch(
        r"\$\{POSTGRES_PASSWORD:\?[^}]+\}", written["environment"]["DATA_SOURCE_PASS"]
    )
    # As Compose resolves it, with other user and database names than the defaults.
    env = compose_env(POSTGRES_USER="erp", POSTGRES_DB="erpdb")
    result = compose_run(
        COMPOSE_FILE, "--profile", "monitoring", "config", "--format", "json", env=env
    )
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    exporter, postgres = environment(services["postgres-exporter"]), services["postgres"]
    assert exporter["DATA_SOURCE_PASS"] == REQUIRED_VARS["POSTGRES_PASSWORD"]
    assert exporter["DATA_SOURCE_USER"] == environment(postgres)["POSTGRES_USER"] == "erp"
    assert re.fullmatch(r"postgres:5432/erpdb(\?.*)?", exporter["DATA_SOURCE_URI"])
    assert networks(services["postgres-exporter"]) & networks(postgres)
    depends = services["postgres-exporter"]["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"


def test_the_monitoring_profile_also_refuses_to_run_without_the_postgres_password():
    env = compose_env(POSTGRES_PASSWORD=None)
    result = compose_run(COMPOSE_FILE, "--profile", "monitoring", "config", "-q", env=env)
    assert result.returncode != 0 and "POSTGRES_PASSWORD" in result.stderr, result.stderr


def test_the_celery_exporter_listens_to_the_apps_broker(services):
    exporter = services["celery-exporter"]
    broker = option(exporter["command"], "--broker-url")
    for name in (*WEB, *WORKERS, "beat"):
        assert broker == environment(services[name])["CELERY_BROKER_URL"], name
    assert broker.startswith("redis://redis:")
    assert networks(exporter) & networks(services["redis"])
    assert int(option(exporter["command"], "--port") or 9808) == EXPORTERS["celery-exporter"]


def test_the_node_exporter_reads_the_host_read_only(services):
    node = services["node-exporter"]
    assert ("/", "/host", True) in mounts(node)
    assert option(node["command"], "--path.rootfs") == "/host"
    assert node.get("pid") in (None, "host")
    assert not node.get("privileged")


def scrape_problems(config: dict, services: dict) -> list[str]:
    """What keeps a target of prometheus.yml from being scraped as the stack runs: a service
    that is not there (with the monitoring profile), on no network Prometheus is on, at a port
    it does not listen on, or a scaled service named statically (one replica only)."""
    problems = []
    prometheus = services["prometheus"]
    for job, how, host, port in scrape_targets(config):
        where = f"job {job}: {host}:{port}"
        if host in ("localhost", "127.0.0.1"):
            service = prometheus  # itself
        elif host in services:
            service = services[host]
            if not networks(service) & networks(prometheus):
                problems.append(f"{where}: shares no network with prometheus")
        else:
            problems.append(f"{where}: no such service in compose.yaml")
            continue
        if port not in listening_ports(service):
            problems.append(f"{where}: {host} listens on {sorted(listening_ports(service))}")
        # Every web and worker service can be scaled (by the autoscaler or `--scale` by hand).
        if (host in SCALED or host.startswith(("web-", "worker-"))) and how != "dns":
            problems.append(f"{where}: a static target reaches one replica of a scaled service")
    return problems


def test_every_prometheus_target_is_a_service_it_can_reach(services):
    config = prometheus_config()
    assert scrape_problems(config, services) == []
    scraped = {host for _, _, host, _ in scrape_targets(config)}
    assert {*SCALED, *EXPORTERS, "traefik", "alertmanager"} <= scraped
    # Every service that serves a Celery worker's metrics (WORKER_METRICS_PORT: each worker
    # service of each colour, worker-<colour>-aux and -bulk included) is found by DNS.
    worker_metrics = {
        name
        for name, service in services.items()
        if environment(service).get("WORKER_METRICS_PORT")
    }
    assert {"worker-blue-aux", "worker-green-aux", "worker-blue-bulk"} <= worker_metrics
    for name in worker_metrics:
        port = int(environment(services[name])["WORKER_METRICS_PORT"])
        assert ("worker", "dns", name, port) in scrape_targets(config), name
    # Traefik's port is the one its metrics entry point listens on.
    static = ROOT / "deploy" / "traefik" / "traefik.yml"
    if static.is_file():
        yaml = pytest.importorskip("yaml")
        traefik = yaml.safe_load(static.read_text())
        entry = (traefik.get("metrics") or {}).get("prometheus", {}).get("entryPoint", "traefik")
        port = int(traefik["entryPoints"][entry]["address"].rpartition(":")[2])
        assert ("traefik", "static", "traefik", port) in scrape_targets(config)


def test_scrape_problems_are_caught(services):
    config = prometheus_config()
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}

    jobs["celery"]["static_configs"] = [{"targets": ["celery-exporter:9809"]}]
    jobs["postgres"]["static_configs"] = [{"targets": ["pg-exporter:9187"]}]
    jobs["web"].pop("dns_sd_configs")
    jobs["web"]["static_configs"] = [{"targets": ["web-green:8000"]}]
    jobs["worker"]["static_configs"] = [{"targets": ["worker-green-aux:9101"]}]
    problems = "\n".join(scrape_problems(config, services))
    assert "celery-exporter:9809: celery-exporter listens on [9808]" in problems
    assert "pg-exporter:9187: no such service" in problems
    assert "web-green:8000: a static target reaches one replica" in problems
    assert "worker-green-aux:9101: a static target reaches one replica" in problems

    isolated = copy.deepcopy(services)
    isolated["node-exporter"]["networks"] = ["elsewhere"]
    problems = "\n".join(scrape_problems(prometheus_config(), isolated))
    assert "node-exporter:9100: shares no network with prometheus" in problems


@pytest.mark.django_db
def test_the_app_answers_the_scrapes_of_its_replicas(client, settings):
    result = compose_run(COMPOSE_FILE, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    web = json.loads(result.stdout)["services"]["web-blue"]
    settings.ALLOWED_HOSTS = environment(web)["ALLOWED_HOSTS"].split(",")
    assert client.get("/metrics", HTTP_HOST="web-blue:8000").status_code == 200
    # What a DNS-discovered target's scrape sends: the replica's address on the network.
    assert client.get("/metrics", HTTP_HOST="172.18.0.5:8000").status_code == 200
    # Only /metrics: every other path still refuses a host it does not serve.
    assert client.get("/health/live", HTTP_HOST="172.18.0.5:8000").status_code == 400


# ------------------------------------------------------------------ gunicorn


def test_gunicorn_check_config_passes():
    result = run(
        [*tools.gunicorn(), "--check-config", "-c", str(GUNICORN_CONF), "ops.wsgi:application"]
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_gunicorn_check_config_catches_a_bad_value(tmp_path):
    broken = tmp_path / "gunicorn.conf.py"
    text = GUNICORN_CONF.read_text()
    assert 'workers = _int("WEB_CONCURRENCY", 2)' in text
    broken.write_text(text.replace('workers = _int("WEB_CONCURRENCY", 2)', 'workers = "many"'))
    result = run([*tools.gunicorn(), "--check-config", "-c", str(broken), "ops.wsgi:application"])
    assert result.returncode != 0


def test_gunicorn_check_config_catches_an_app_that_does_not_load():
    result = run([*tools.gunicorn(), "--check-config", "-c", str(GUNICORN_CONF), "ops.wsgi:nope"])
    assert result.returncode != 0


def test_gunicorn_settings_from_the_environment(monkeypatch):
    conf = gunicorn_settings(monkeypatch, {})
    assert conf["worker_class"] == "gthread"
    assert (conf["workers"], conf["threads"], conf["bind"]) == (2, 8, ["0.0.0.0:8000"])
    assert conf["graceful_timeout"] == 30 and conf["worker_tmp_dir"] == "/dev/shm"
    assert conf["max_requests"] > 0 and conf["max_requests_jitter"] > 0
    assert conf["accesslog"] == "-"
    conf = gunicorn_settings(
        monkeypatch,
        {"WEB_CONCURRENCY": "5", "GUNICORN_THREADS": "8", "GUNICORN_BIND": "127.0.0.1:9000"},
    )
    assert (conf["workers"], conf["threads"], conf["bind"]) == (5, 8, ["127.0.0.1:9000"])


def test_child_exit_marks_the_worker_dead_only_in_multiprocess_mode(monkeypatch, tmp_path):
    from prometheus_client import multiprocess

    dead = []
    monkeypatch.setattr(multiprocess, "mark_process_dead", dead.append)
    conf = gunicorn_settings(monkeypatch, {})
    conf["child_exit"](None, SimpleNamespace(pid=41))
    assert dead == []
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    conf["child_exit"](None, SimpleNamespace(pid=42))
    assert dead == [42]


def test_on_starting_empties_the_multiprocess_directory(monkeypatch, tmp_path):
    (tmp_path / "counter_1.db").write_bytes(b"old")
    conf = gunicorn_settings(monkeypatch, {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    conf["on_starting"](None)
    assert list(tmp_path.iterdir()) == []


def test_access_log_lines_are_json(monkeypatch, caplog):
    from gunicorn.config import Config

    conf = gunicorn_settings(monkeypatch, {})
    cfg = Config()
    cfg.set("accesslog", "-")
    logger = conf["JsonAccessLogger"](cfg)
    logger.access_log.propagate = True  # so that caplog sees it
    response = SimpleNamespace(status="200 OK", sent=12, headers=[("X-Request-ID", "abc")])
    request = SimpleNamespace(headers=[("USER-AGENT", 'a "quoted" agent')])
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/health/live?x=1",
        "PATH_INFO": "/health/live",
        "QUERY_STRING": "x=1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.2",
        "HTTP_USER_AGENT": 'a "quoted" agent',
    }
    from datetime import timedelta

    with caplog.at_level(logging.INFO, logger="gunicorn.access"):
        logger.access(response, request, environ, timedelta(milliseconds=3))
    (line,) = [r.getMessage() for r in caplog.records if r.name == "gunicorn.access"]
    entry = json.loads(line)
    assert entry["status"] == 200 and entry["path"] == "/health/live"
    assert entry["request_id"] == "abc" and entry["user_agent"] == 'a "quoted" agent'
    assert entry["duration_ms"] == 3.0


# ------------------------------------------------------------------ Dockerfile


def test_hadolint_passes_on_the_dockerfile():
    result = run([*tools.hadolint(), "--no-color", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_shell_form_cmd(tmp_path):
    text = DOCKERFILE.read_text()
    exec_form = 'CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py", "ops.wsgi:application"]'
    assert exec_form in text
    broken = tmp_path / "Dockerfile"
    broken.write_text(text.replace(exec_form, "CMD gunicorn -c deploy/gunicorn.conf.py ops.wsgi"))
    result = run([*tools.hadolint(), "--no-color", str(broken)])
    assert result.returncode != 0 and "DL3025" in result.stdout, result.stdout


def test_dockerfile_shape():
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.M)
    assert [name for _, name in stages] == ["builder", "runtime"]
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.M)
    # Only documented ignores: DL3008 (unpinned apt packages), explained at the top.
    assert set(re.findall(r"hadolint ignore=(\S+)", text)) <= {"DL3008"}
    assert "DL3008" in text.split("FROM", 1)[0]
    code = re.sub(r"^\s*#.*\n", "", text, flags=re.M)
    builder, runtime = code.split("AS runtime", 1)
    for package in ("build-essential", "pkg-config", "libxmlsec1-dev"):
        assert re.search(rf"^\s+{re.escape(package)} \\$", builder, re.M), package
    # The wheels of lxml and xmlsec, checked to share one libxml2 newer than bookworm's 2.9
    # (compiled against bookworm's, the SII schemas reject our own signed DTEs).
    assert re.search(r"pip install --no-cache-dir \. ", builder) and "--no-binary" not in builder
    assert "LIBXML_VERSION" in builder and "get_libxml_version()" in builder
    assert "[dev]" not in text
    assert "collectstatic --noinput" in runtime
    assert re.search(r"^USER (?!root|0)\S+", runtime, re.M)
    assert re.search(r"^STOPSIGNAL SIGTERM$", runtime, re.M)
    assert re.search(r"PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus", runtime)
    assert re.search(r"^HEALTHCHECK .*\n\s+CMD \[\"python\".*urllib.*/health/live", runtime, re.M)
    assert text.rstrip().endswith(
        'CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py", "ops.wsgi:application"]'
    )


def test_dockerignore_keeps_secrets_and_local_state_out():
    lines = set((ROOT / ".dockerignore").read_text().splitlines())
    assert {".git", ".venv", "var", ".env", "deploy/env/*", "!deploy/env/*.example"} <= lines


# ------------------------------------------------------------------ environment


def variables_read(source: str) -> set[str]:
    pattern = r"""(?:environ\.get|os\.getenv|env_\w+|_int)\(\s*["']([A-Z][A-Z0-9_]*)["']"""
    names = set(re.findall(pattern, source))
    names |= set(re.findall(r"""os\.environ\[\s*["']([A-Z][A-Z0-9_]*)["']\s*\]""", source))
    return names


def test_app_env_example_lists_every_variable_the_settings_and_gunicorn_read():
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", APP_ENV_EXAMPLE.read_text(), re.M))
    settings_vars = variables_read((ROOT / "ops" / "settings.py").read_text())
    settings_vars |= variables_read((ROOT / "ops" / "secrets.py").read_text())
    assert {"DATABASE_URL", "SECRET_KEY", "SII_ENV", "ANTHROPIC_API_KEY"} <= settings_vars
    assert not settings_vars - listed, f"missing from {APP_ENV_EXAMPLE.name}"
    gunicorn_vars = variables_read(GUNICORN_CONF.read_text())
    assert {"WEB_CONCURRENCY", "GUNICORN_THREADS"} <= gunicorn_vars
    assert not gunicorn_vars - listed, f"missing from {APP_ENV_EXAMPLE.name}"


def test_env_examples_hold_placeholders_only():
    examples = sorted((ROOT / "deploy" / "env").glob("*.example"))
    assert {e.name for e in examples} >= {"app.env.example", "compose.env.example"}
    for example in examples:
        for line in example.read_text().splitlines():
            match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
            if not match:
                continue
            name, value = match.groups()
            if re.search(r"PASSWORD|SECRET|_KEY$", name) and value:
                assert "change-me" in value, f"{example.name}: {name} is not a placeholder"
