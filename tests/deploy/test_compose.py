"""The production deployment files: docker-compose.yml and deploy/.

No Docker engine runs here, so the compose file is checked with Debian's
`docker-compose config` (the v1 Python one, 1.29.x), which validates it against the
compose schema and resolves anchors and variables; the resolved YAML is then checked for
the services, the topic init and the proxy routes. The Grafana dashboard and its
provisioning are plain files, checked without any tool.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"
NGINX_CONF = DEPLOY / "proxy" / "nginx.conf"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "motcua.json"

APP_SERVICES = ("intake", "routing", "sla", "notify")
ALL_SERVICES = (*APP_SERVICES, "kafka", "kafka-init", "postgres", "proxy", "prometheus", "grafana")

TOPICS = {
    "motcua.dossier.lifecycle": 6,
    "motcua.dossier.routing": 6,
    "motcua.dossier.sla": 6,
    "motcua.catalogue": 1,
    "motcua.calendar": 1,
    "motcua.keys": 1,
}
COMPACTED = {"motcua.keys"}
EXPECTED_TOPICS = {**TOPICS, **{f"{name}.dlq": 1 for name in TOPICS}}

ROUTES = {
    "/api/v1/dossiers": "intake",
    "/api/v1/queue": "intake",
    "/api/v1/public": "intake",
    "/api/v1/calendar": "intake",
    "/api/v1/catalogue": "routing",
    "/api/v1/rules": "routing",
    "/api/v1/sla": "sla",
    "/api/v1/reports": "notify",
    "/api/v1/notifications": "notify",
    "/dashboard": "notify",
    "/docs": "intake",
    "/openapi.json": "intake",
}

# -- running docker-compose ----------------------------------------------------------


def _docker_compose() -> str:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip(
            "docker-compose (Debian's v1 package) is not on PATH: "
            "install it with `apt-get install docker-compose` to validate docker-compose.yml"
        )
    return exe


def _run_config(*extra: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` with no MOTCUA_DEPLOY_* overrides and an empty env file."""
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOTCUA_", "COMPOSE_"))}
    return subprocess.run(
        [
            _docker_compose(),
            "--project-directory",
            str(ROOT),
            "--env-file",
            str(env_file),
            "-f",
            str(COMPOSE_FILE),
            "config",
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def _load_yaml(text: str) -> Any:
    """Parse YAML with PyYAML if this interpreter has it, else with docker-compose's own
    interpreter (docker-compose v1 is a Python program that depends on PyYAML)."""
    try:
        yaml = importlib.import_module("yaml")
    except ImportError:
        pass
    else:
        return yaml.safe_load(text)
    exe = shutil.which("docker-compose")
    first_line = Path(exe).read_text(errors="replace").splitlines()[0] if exe else ""
    if not first_line.startswith("#!"):
        pytest.skip("no YAML parser: neither PyYAML nor docker-compose's Python is available")
    interpreter = first_line[2:].strip().split()
    result = subprocess.run(
        [
            *interpreter,
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)",
        ],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"no YAML parser: docker-compose's Python could not parse: {result.stderr}")
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The compose file as docker-compose resolves it (anchors merged, defaults applied)."""
    result = _run_config(tmp_path=tmp_path_factory.mktemp("compose"))
    assert result.returncode == 0, result.stderr
    config = _load_yaml(result.stdout)
    assert isinstance(config, dict)
    return config


def test_compose_config_is_valid(tmp_path: Path) -> None:
    result = _run_config("-q", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr


def test_every_service_is_present(resolved: dict[str, Any]) -> None:
    assert set(ALL_SERVICES) <= set(resolved["services"])


def test_every_image_is_pinned(resolved: dict[str, Any]) -> None:
    for name, service in resolved["services"].items():
        image = service.get("image", "")
        if "build" in service:
            continue
        assert ":" in image, f"{name}: image {image!r} has no tag"
        assert not image.endswith(":latest"), f"{name}: image {image!r} is not pinned"
    assert resolved["services"]["kafka"]["image"] == "apache/kafka:3.9.1"
    assert resolved["services"]["kafka-init"]["image"] == "apache/kafka:3.9.1"


def test_app_services_share_one_image_and_run_their_service(resolved: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        service = resolved["services"][name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert Path(service["build"]["context"]).resolve() == ROOT
        assert service["command"] == [
            "motcua",
            "run",
            name,
            "--host",
            "0.0.0.0",
            "--port",
            "8080",
        ]
        env = service["environment"]
        assert env["MOTCUA_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["MOTCUA_KAFKA_IDEMPOTENCE"] == "true"
        assert env["MOTCUA_KAFKA_CREATE_TOPICS"] == "false"
        assert env["MOTCUA_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert env["MOTCUA_VAR_DIR"] == "/var/lib/motcua"
        depends = service["depends_on"]
        assert depends["kafka-init"]["condition"] == "service_completed_successfully"
        assert depends["postgres"]["condition"] == "service_healthy"
        assert "healthcheck" in service


def test_kafka_is_kraft_without_auto_create(resolved: dict[str, Any]) -> None:
    kafka = resolved["services"]["kafka"]
    env = {k: str(v) for k, v in kafka["environment"].items()}
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert env["CLUSTER_ID"]
    assert "healthcheck" in kafka
    assert resolved["services"]["postgres"]["image"].startswith("postgres:16")
    assert "healthcheck" in resolved["services"]["postgres"]


def test_topic_init_creates_every_topic(resolved: dict[str, Any]) -> None:
    init = resolved["services"]["kafka-init"]
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert str(init["environment"]["REPLICATION_FACTOR"]) == "1"
    script = "\n".join(init["command"]) if isinstance(init["command"], list) else init["command"]
    assert "kafka-topics.sh" in script
    assert "--create --if-not-exists" in script
    lines = re.findall(r"^\s*create\s+(\S+)\s+(\d+)(?:\s+(\w+))?\s*$", script, re.MULTILINE)
    assert {name: int(count) for name, count, _policy in lines} == EXPECTED_TOPICS
    assert {name for name, _count, policy in lines if policy == "compact"} == COMPACTED
    assert re.search(r'--config "cleanup\.policy=\$\$?\{3:-delete\}"', script)  # compact or not


def test_topic_init_agrees_with_the_contract() -> None:
    topics = pytest.importorskip("shared.topics")
    from_contract = {t.name: t.partitions for t in topics.ALL_TOPICS}
    from_contract |= {t.dead_letter: topics.DEAD_LETTER_PARTITIONS for t in topics.ALL_TOPICS}
    assert from_contract == EXPECTED_TOPICS
    assert {t.name for t in topics.ALL_TOPICS if t.compacted} == COMPACTED


# -- the reverse proxy --------------------------------------------------------------


def _nginx_routes() -> dict[str, str]:
    """Location prefix -> service, from the proxy's config."""
    text = NGINX_CONF.read_text(encoding="utf-8")
    upstreams = dict(re.findall(r"set \$(\w+)\s+http://(\w+):8080;", text))
    routes: dict[str, str] = {}
    for path, body in re.findall(r"location\s+(?:=\s+)?(\S+)\s*\{([^}]*)\}", text):
        target = re.search(r"proxy_pass\s+\$(\w+);", body)
        if target:
            routes[path] = upstreams[target.group(1)]
    return routes


def test_proxy_is_the_entry_point(resolved: dict[str, Any]) -> None:
    proxy = resolved["services"]["proxy"]
    ports = proxy["ports"]
    published = {
        (str(p["published"]), str(p["target"])) if isinstance(p, dict) else tuple(p.split(":")[-2:])
        for p in ports
    }
    assert ("8000", "80") in published
    mounts = [v if isinstance(v, str) else f"{v['source']}:{v['target']}" for v in proxy["volumes"]]
    assert any(str(NGINX_CONF) in m or "deploy/proxy/nginx.conf" in m for m in mounts)


def test_proxy_routes_every_path_prefix() -> None:
    routes = _nginx_routes()
    for prefix, service in ROUTES.items():
        assert routes.get(prefix) == service, f"{prefix} should go to {service}"


def test_proxy_does_not_buffer_the_board_stream() -> None:
    text = NGINX_CONF.read_text(encoding="utf-8")
    block = re.search(r"location\s+/api/v1/queue/board\s*\{([^}]*)\}", text)
    assert block is not None
    assert "proxy_buffering off;" in block.group(1)
    assert _nginx_routes()["/api/v1/queue/board"] == "intake"


# -- Prometheus and Grafana ---------------------------------------------------------


def test_prometheus_scrapes_the_four_services() -> None:
    config = _load_yaml((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for name in APP_SERVICES:
        job = jobs[name]
        assert job["metrics_path"] == "/metrics"
        (sd,) = job["dns_sd_configs"]
        assert sd["names"] == [name]
        assert sd["port"] == 8080


def _provisioned_datasource_uid() -> str:
    (path,) = (DEPLOY / "grafana" / "provisioning" / "datasources").glob("*.yml")
    config = _load_yaml(path.read_text())
    (datasource,) = config["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    return str(datasource["uid"])


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def test_grafana_dashboard_uses_the_provisioned_datasource() -> None:
    uid = _provisioned_datasource_uid()
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = [p for p in _panels(dashboard) if p["type"] not in ("row", "text")]
    assert panels
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid, panel["title"]
            assert target["expr"].strip(), panel["title"]
    ids = [p["id"] for p in _panels(dashboard)]
    assert len(ids) == len(set(ids))


def test_grafana_dashboard_covers_the_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = "\n".join(t["expr"] for p in _panels(dashboard) for t in p.get("targets", []))
    for metric in (
        "faststream_received_messages_total",
        "faststream_published_messages_total",
        "faststream_received_processed_messages_duration_seconds_bucket",
        "motcua_dossiers_received_total",
        "motcua_dossiers_routed_total",
        "motcua_dossiers_tracked_total",
        "motcua_notifications_total",
        "motcua_outbox_backlog",
        "motcua_outbox_oldest_age_seconds",
        "motcua_dead_letters_total",
        "motcua_sla_open_dossiers",
        "motcua_sla_overdue_dossiers",
        "motcua_on_time_rate",
    ):
        assert metric in exprs, metric
    # Counters are only ever shown as rates or increases.
    for counter in re.findall(r"\b(\w+_total)\b", exprs):
        for use in re.findall(rf"(\w+)\(\s*{counter}\b", exprs):
            assert use in ("rate", "increase"), f"{counter} used under {use}()"
    titles = {p["title"]: p for p in _panels(dashboard)}
    assert "not exported" in titles["Consumer lag"]["description"]


def test_grafana_dashboard_provider_points_at_the_mounted_dashboards(
    resolved: dict[str, Any],
) -> None:
    (path,) = (DEPLOY / "grafana" / "provisioning" / "dashboards").glob("*.yml")
    (provider,) = _load_yaml(path.read_text())["providers"]
    mounts = resolved["services"]["grafana"]["volumes"]
    targets = {(m["target"] if isinstance(m, dict) else m.split(":")[1]): m for m in mounts}
    assert provider["options"]["path"] in targets
