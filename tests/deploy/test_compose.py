"""The production deployment files: docker-compose.yml and deploy/.

No Docker engine runs here, so the compose file is checked with Debian's
`docker-compose config` (the v1 Python one, 1.29.x), which validates it against the
compose schema and resolves anchors and variables (the required secrets come from a
`.env` made by `deploy/secrets.sh`, as an operator makes it); the resolved YAML is then
checked for the services, the broker's listeners and TLS, the topic, user and ACL
provisioning, and the proxy routes. The Grafana dashboard and its provisioning are plain
files, checked without any tool.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import shutil
import socket
import ssl
import stat
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"
SECRETS_SCRIPT = DEPLOY / "secrets.sh"
PROVISION = DEPLOY / "kafka" / "provision.sh"
TLS_SCRIPT = DEPLOY / "kafka" / "tls.sh"
NGINX_CONF = DEPLOY / "proxy" / "nginx.conf"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "motcua.json"

APP_SERVICES = ("intake", "routing", "sla", "notify", "portal")
ALL_SERVICES = (*APP_SERVICES, "kafka", "kafka-init", "postgres", "proxy", "prometheus", "grafana")

TOPICS = {
    "motcua.dossier.lifecycle": 6,
    "motcua.dossier.contacts": 6,
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
    "/api/v1/portal": "portal",
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


def _secrets_env(tmp_path: Path) -> Path:
    """An env file made by `deploy/secrets.sh`, as an operator makes `.env`."""
    env_file = tmp_path / "secrets.env"
    subprocess.run(["sh", str(SECRETS_SCRIPT), str(env_file)], check=True, capture_output=True)
    return env_file


def _env_values(env_file: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)


def _run_config(
    *extra: str, tmp_path: Path, env_file: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` with no MOTCUA_DEPLOY_* overrides and ``env_file`` (by
    default one made by `deploy/secrets.sh`, holding nothing but the required secrets)."""
    env_file = env_file or _secrets_env(tmp_path)
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
def secrets_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The env file of the module's resolved compose file."""
    return _secrets_env(tmp_path_factory.mktemp("secrets"))


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory, secrets_env: Path) -> dict[str, Any]:
    """The compose file as docker-compose resolves it (anchors merged, defaults applied)."""
    result = _run_config(tmp_path=tmp_path_factory.mktemp("compose"), env_file=secrets_env)
    assert result.returncode == 0, result.stderr
    config = _load_yaml(result.stdout)
    assert isinstance(config, dict)
    return config


def test_compose_config_is_valid(tmp_path: Path) -> None:
    result = _run_config("-q", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "missing",
    [
        "MOTCUA_DEPLOY_KEYS_SIGNING_SECRET",
        "MOTCUA_DEPLOY_NOTIFY_OPT_OUT_SECRET",
        *(f"MOTCUA_DEPLOY_KAFKA_PASSWORD_{name.upper()}" for name in APP_SERVICES),
    ],
)
def test_compose_refuses_to_run_without_a_secret(tmp_path: Path, missing: str) -> None:
    env_file = _secrets_env(tmp_path)
    kept = [line for line in env_file.read_text().splitlines() if not line.startswith(missing)]
    env_file.write_text("\n".join(kept) + "\n")
    result = _run_config("-q", tmp_path=tmp_path, env_file=env_file)
    assert result.returncode != 0
    assert f"run deploy/secrets.sh first ({missing})" in result.stderr


def test_the_secrets_script_makes_each_secret_once(tmp_path: Path) -> None:
    env_file = _secrets_env(tmp_path)
    first = _env_values(env_file)
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert set(first) == {
        "MOTCUA_DEPLOY_KEYS_SIGNING_SECRET",
        "MOTCUA_DEPLOY_NOTIFY_OPT_OUT_SECRET",
        *(f"MOTCUA_DEPLOY_KAFKA_PASSWORD_{name.upper()}" for name in APP_SERVICES),
    }
    assert all(re.fullmatch(r"[0-9a-f]{64}", value) for value in first.values())
    assert len(set(first.values())) == len(first)
    assert _env_values(_secrets_env(tmp_path)) == first  # run again: every value kept


def test_no_key_is_written_twice() -> None:
    """YAML keeps the last of two equal keys without a word (docker-compose too): a second
    `services:` or a service defined twice would silently replace the first."""
    text = COMPOSE_FILE.read_text()
    top = re.findall(r"^([A-Za-z][\w-]*):", text, re.MULTILINE)
    services = re.findall(
        r"^  ([a-z][\w-]*):\s*$",
        text.split("\nservices:\n", 1)[1].split("\nvolumes:\n", 1)[0],
        re.MULTILINE,
    )
    assert len(top) == len(set(top)), top
    assert len(services) == len(set(services)), services


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
        assert env["MOTCUA_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert env["MOTCUA_KAFKA_IDEMPOTENCE"] == "true"
        assert env["MOTCUA_KAFKA_CREATE_TOPICS"] == "false"
        assert env["MOTCUA_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert env["MOTCUA_VAR_DIR"] == "/var/lib/motcua"
        depends = service["depends_on"]
        assert depends["kafka-init"]["condition"] == "service_completed_successfully"
        assert depends["postgres"]["condition"] == "service_healthy"
        assert "healthcheck" in service


def test_each_service_connects_as_its_own_user_over_tls(
    resolved: dict[str, Any], secrets_env: Path
) -> None:
    secrets = _env_values(secrets_env)
    for name in APP_SERVICES:
        service = resolved["services"][name]
        env = service["environment"]
        assert env["MOTCUA_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert env["MOTCUA_KAFKA_SASL_USERNAME"] == name
        assert (
            env["MOTCUA_KAFKA_SASL_PASSWORD"]
            == (secrets[f"MOTCUA_DEPLOY_KAFKA_PASSWORD_{name.upper()}"])
        )
        # one signing secret for all: intake signs, the others check
        assert env["MOTCUA_KEYS_SIGNING_SECRET"] == secrets["MOTCUA_DEPLOY_KEYS_SIGNING_SECRET"]
        assert env["MOTCUA_KAFKA_SSL_CAFILE"] == "/etc/motcua/kafka/ca.pem"
        mounts = [
            v if isinstance(v, str) else f"{v['source']}:{v['target']}" for v in service["volumes"]
        ]
        assert any(m.startswith("kafka-ca:/etc/motcua/kafka") and m.endswith(":ro") for m in mounts)
        assert not any("kafka-secrets" in m for m in mounts)  # never the broker's key
        # what the services will make of it: the settings load, and say SASL_SSL + SCRAM
        settings_module = pytest.importorskip("shared.settings")
        security = pytest.importorskip("shared.kafka_security")
        settings = settings_module.Settings(
            **{k.removeprefix("MOTCUA_").lower(): v for k, v in env.items()}
            | {"kafka_ssl_cafile": None}  # the CA exists in the container only
        )
        options = security.client_security(settings)
        assert options["security_protocol"] == "SASL_SSL"
        assert options["sasl_mechanism"] == "SCRAM-SHA-512"
        assert options["sasl_plain_username"] == name
        assert options["ssl_context"].check_hostname
        assert type(security.broker_security(settings)).__name__ == "SASLScram512"
    passwords = {
        resolved["services"][n]["environment"]["MOTCUA_KAFKA_SASL_PASSWORD"] for n in APP_SERVICES
    }
    assert len(passwords) == len(APP_SERVICES)


def _listeners(value: str) -> dict[str, str]:
    """``NAME://host:port,...`` -> name: host:port."""
    return dict(item.split("://", 1) for item in value.split(","))


def test_kafka_serves_clients_over_sasl_ssl_only(resolved: dict[str, Any]) -> None:
    kafka = resolved["services"]["kafka"]
    env = {k: str(v) for k, v in kafka["environment"].items()}
    protocols = dict(
        item.split(":", 1) for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    listeners = _listeners(env["KAFKA_LISTENERS"])
    advertised = _listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    # every listener other containers can reach is SASL_SSL; PLAINTEXT is loopback only
    for name, address in listeners.items():
        if protocols[name] != "SASL_SSL":
            assert address.startswith("127.0.0.1:"), f"{name} ({protocols[name]}) on {address}"
    reachable = {name for name, address in listeners.items() if not address.startswith("127.")}
    assert reachable == {"SASL_SSL"}
    assert advertised["SASL_SSL"] == "kafka:9092"
    assert all(a.startswith("127.0.0.1:") for n, a in advertised.items() if n != "SASL_SSL")
    assert protocols[env["KAFKA_INTER_BROKER_LISTENER_NAME"]] == "PLAINTEXT"
    assert listeners[env["KAFKA_INTER_BROKER_LISTENER_NAME"]].startswith("127.0.0.1:")
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith("1@127.0.0.1:")
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert "kafka_server_jaas.conf" in env["KAFKA_OPTS"]
    assert "ScramLoginModule required" in (DEPLOY / "kafka" / "kafka_server_jaas.conf").read_text()
    # ACLs on, nothing allowed by default, no super user that a client could be
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert env["KAFKA_SUPER_USERS"] == "User:ANONYMOUS"  # the loopback listeners' principal
    assert "ports" not in kafka
    # TLS: the keystore from kafka-tls's volume; the health check on the loopback listener
    assert env["KAFKA_SSL_KEYSTORE_FILENAME"] == "kafka.keystore.p12"
    mounts = [v if isinstance(v, str) else f"{v['source']}:{v['target']}" for v in kafka["volumes"]]
    assert any(m.startswith("kafka-secrets:/etc/kafka/secrets") for m in mounts)
    check = " ".join(kafka["healthcheck"]["test"])
    assert listeners["INTERNAL"] in check
    assert kafka["depends_on"]["kafka-tls"]["condition"] == "service_completed_successfully"


def test_tls_is_made_at_first_start_not_committed(resolved: dict[str, Any]) -> None:
    tls = resolved["services"]["kafka-tls"]
    assert tls["image"] == "apache/kafka:3.9.1"
    assert tls["entrypoint"] == ["/bin/sh", "/motcua/tls.sh"]
    targets = {(v["target"] if isinstance(v, dict) else v.split(":")[1]) for v in tls["volumes"]}
    assert {"/etc/kafka/secrets", "/motcua/kafka-ca", "/motcua/tls.sh"} <= targets
    committed = [
        p for p in DEPLOY.rglob("*") if p.suffix in {".p12", ".jks", ".pem", ".key", ".crt"}
    ]
    assert committed == []
    script = TLS_SCRIPT.read_text()
    assert "dns:kafka" in script  # the name the services check the certificate against
    assert 'rm -rf "$work"' in script  # the CA's private key does not outlive the run


@pytest.mark.skipif(shutil.which("keytool") is None, reason="keytool (a JRE) is not installed")
def test_tls_script_makes_a_certificate_the_services_accept(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SECRETS_DIR": str(tmp_path / "secrets"),
        "CA_DIR": str(tmp_path / "ca"),
        "OWNER": str(os.getuid()),
    }
    made = subprocess.run(
        ["sh", str(TLS_SCRIPT)], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert made.returncode == 0, made.stderr
    ca = tmp_path / "ca" / "ca.pem"
    assert stat.S_IMODE(ca.stat().st_mode) == 0o644
    for name in ("kafka.keystore.p12", "kafka_keystore_creds", "kafka_key_creds"):
        assert stat.S_IMODE((tmp_path / "secrets" / name).stat().st_mode) == 0o400
    password = (tmp_path / "secrets" / "kafka_keystore_creds").read_text()
    listing = subprocess.run(
        [
            "keytool",
            "-list",
            "-v",
            "-keystore",
            str(tmp_path / "secrets" / "kafka.keystore.p12"),
            "-storepass",
            password,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "DNSName: kafka" in listing
    assert "Certificate chain length: 2" in listing
    again = subprocess.run(
        ["sh", str(TLS_SCRIPT)], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert "kept" in again.stdout
    assert (tmp_path / "secrets" / "kafka_keystore_creds").read_text() == password
    if shutil.which("openssl") is None:
        return
    # a TLS server with the broker's key: the services' context accepts it as `kafka` only
    broker_pem = tmp_path / "broker.pem"
    subprocess.run(
        [
            *("openssl", "pkcs12", "-nodes", "-passin", f"pass:{password}"),
            *("-in", str(tmp_path / "secrets" / "kafka.keystore.p12"), "-out", str(broker_pem)),
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert _tls_handshake(broker_pem, ca, "kafka") == "ok"
    assert "Hostname mismatch" in _tls_handshake(broker_pem, ca, "kafka.example.org")


def _tls_handshake(server_pem: Path, ca: Path, name: str) -> str:
    """Connect to a TLS server holding ``server_pem`` as a service would, to ``name``."""
    security = pytest.importorskip("shared.kafka_security")
    settings = pytest.importorskip("shared.settings").Settings(
        kafka_security_protocol="SSL", kafka_ssl_cafile=ca, keys_signing_secret="k" * 32
    )
    client = security.client_security(settings)["ssl_context"]
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(server_pem)
    with socket.create_server(("127.0.0.1", 0)) as listening:
        port = listening.getsockname()[1]

        def serve() -> None:
            connection, _ = listening.accept()
            with (
                contextlib.suppress(ssl.SSLError, OSError),
                server.wrap_socket(connection, server_side=True) as tls,
            ):
                tls.sendall(b"ok")

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
                client.wrap_socket(raw, server_hostname=name) as tls,
            ):
                return str(tls.recv(2).decode())
        except ssl.SSLCertVerificationError as refused:
            return str(refused.verify_message)
        finally:
            thread.join(timeout=10)


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
    assert init["entrypoint"] == ["/bin/sh", "/motcua/provision.sh"]
    mounts = [v if isinstance(v, str) else f"{v['source']}:{v['target']}" for v in init["volumes"]]
    assert any("deploy/kafka/provision.sh:/motcua/provision.sh" in m for m in mounts)
    # it reaches the broker on its loopback-only listener, from inside its network
    assert init["network_mode"] == "service:kafka"
    kafka_env = resolved["services"]["kafka"]["environment"]
    assert init["environment"]["BOOTSTRAP"] == _listeners(kafka_env["KAFKA_LISTENERS"])["INTERNAL"]
    script = PROVISION.read_text()
    assert "kafka-topics.sh" in script
    assert "--create --if-not-exists" in script
    lines = re.findall(r"^\s*create\s+(\S+)\s+(\d+)(?:\s+(\w+))?\s*$", script, re.MULTILINE)
    assert {name: int(count) for name, count, _policy in lines} == EXPECTED_TOPICS
    assert {name for name, _count, policy in lines if policy == "compact"} == COMPACTED
    assert re.search(r'--config "cleanup\.policy=\$\{3:-delete\}"', script)  # compact or not


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


# -- Kafka users and ACLs --------------------------------------------------------------

_FAKE_TOOL = """#!/bin/sh
printf '%s' "$(basename "$0")" >> "$CALLS"
for arg in "$@"; do printf '\\037%s' "$arg" >> "$CALLS"; done
printf '\\n' >> "$CALLS"
case "$*" in *--describe*) echo "Topic: t	PartitionCount: 6	ReplicationFactor: 1" ;; esac
"""


def _provisioning_calls(tmp_path: Path) -> list[list[str]]:
    """Run deploy/kafka/provision.sh against stand-ins of Kafka's tools; every call made,
    as its argument list (the tool's name first)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("kafka-topics.sh", "kafka-configs.sh", "kafka-acls.sh"):
        (bin_dir / tool).write_text(_FAKE_TOOL)
        (bin_dir / tool).chmod(0o755)
    calls = tmp_path / "calls"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "KAFKA_BIN": str(bin_dir),
        "CALLS": str(calls),
        **{
            f"MOTCUA_KAFKA_PASSWORD_{n.upper()}": f"{n}-password-0123456789abcdef"
            for n in APP_SERVICES
        },
    }
    run = subprocess.run(
        ["sh", str(PROVISION)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr
    return [line.split("\x1f") for line in calls.read_text().splitlines()]


def _option(call: list[str], name: str) -> list[str]:
    return [call[i + 1] for i, arg in enumerate(call[:-1]) if arg == name]


def _what_the_code_does() -> dict[str, tuple[set[str], set[str], set[str]]]:
    """Per service, from its wiring: the topics it publishes, the topics it reads, its
    consumer groups."""
    settings = pytest.importorskip("shared.settings").Settings(
        database_url="sqlite+aiosqlite:///:memory:"
    )
    builds = {
        "intake": pytest.importorskip("services.intake.process").build,
        "routing": pytest.importorskip("services.routing.process").build,
        "sla": pytest.importorskip("services.sla.process").build,
        "notify": pytest.importorskip("services.notify.process").build,
        "portal": pytest.importorskip("services.portal.process").build,
    }
    wiring: dict[str, tuple[set[str], set[str], set[str]]] = {}
    for name, build in builds.items():
        runtime = build(settings).runtime
        subscribers = runtime.broker.subscribers
        wiring[name] = (
            set(runtime.publishers),
            {topic for s in subscribers for topic in s.topic_names},
            {s.group_id for s in subscribers},
        )
    return wiring


def test_each_service_has_a_scram_user(tmp_path: Path) -> None:
    users = {
        _option(call, "--entity-name")[0]: _option(call, "--add-config")[0]
        for call in _provisioning_calls(tmp_path)
        if call[0] == "kafka-configs.sh"
    }
    assert set(users) == set(APP_SERVICES)
    for name, config in users.items():
        assert (
            config == f"SCRAM-SHA-512=[iterations=8192,password={name}-password-0123456789abcdef]"
        )


def test_acls_allow_each_service_what_its_wiring_does_and_no_more(tmp_path: Path) -> None:
    writes: dict[str, set[str]] = {n: set() for n in APP_SERVICES}
    reads: dict[str, set[str]] = {n: set() for n in APP_SERVICES}
    groups: dict[str, set[tuple[str, str]]] = {n: set() for n in APP_SERVICES}
    for call in _provisioning_calls(tmp_path):
        if call[0] != "kafka-acls.sh":
            continue
        assert "--add" in call
        assert "--deny-principal" not in call
        (principal,) = _option(call, "--allow-principal")
        (operation,) = _option(call, "--operation")
        user = principal.removeprefix("User:")
        for group in _option(call, "--group"):
            assert operation == "Read"
            pattern = (_option(call, "--resource-pattern-type") or ["literal"])[0]
            groups[user].add((group, pattern))
        topics = _option(call, "--topic")
        assert operation in {"Read", "Write"}
        (writes if operation == "Write" else reads)[user].update(topics)

    wiring = _what_the_code_does()
    for name, (publishes, consumes, consumer_groups) in wiring.items():
        dead_letters = {f"{topic}.dlq" for topic in consumes}
        assert writes[name] == publishes | dead_letters, name
        assert consumes <= reads[name], name
        # beyond what it consumes, only its own topics (sla rebuild) and their dead letters
        assert reads[name] - consumes <= publishes | {f"{t}.dlq" for t in publishes}, name
        assert "*" not in writes[name] | reads[name]
        assert (f"motcua-{name}", "prefixed") in groups[name]
        assert all(group.startswith(f"motcua-{name}") for group in consumer_groups), name
        assert {g for g, _ in groups[name]} <= {f"motcua-{name}", "motcua-dlq-replay"}
    # one writer per topic: only intake writes the lifecycle and the keys
    for topic in TOPICS:
        writers = {name for name, topics in writes.items() if topic in topics}
        (owner,) = (name for name, (publishes, _, _) in wiring.items() if topic in publishes)
        assert writers == {owner}, topic
    assert {n for n, t in writes.items() if "motcua.keys" in t} == {"intake"}
    assert {n for n, t in writes.items() if "motcua.dossier.lifecycle" in t} == {"intake"}
    # the applicants' contacts: intake writes them, notify and the portal (whose record
    # names the applicant) alone read them
    assert {n for n, t in reads.items() if "motcua.dossier.contacts" in t} == {"notify", "portal"}
