"""The deployment files are valid and complete: Kubernetes manifests against the Kubernetes
schemas, compose.yaml against the Compose specification, and every setting the services read
either deployed or deliberately left at its default."""

from __future__ import annotations

import ast
import copy
import json
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions, major_minor

ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = ROOT / "deploy" / "k8s"
COMPOSE_FILE = ROOT / "compose.yaml"

# A fixed Kubernetes version whose schemas kubernetes-validate ships, so that a new release of
# the validator never changes what these tests accept.
K8S_VERSION = "1.33.0"

# Not Kubernetes API objects: checked by test_kustomization_lists_every_manifest instead.
KUSTOMIZE_KINDS = {"Kustomization", "Component"}

# service name in compose.yaml and deploy/k8s → the settings module it reads.
SERVICES = {
    "auth": ROOT / "auth_service" / "config.py",
    "todo": ROOT / "todo_service" / "config.py",
    "gateway": ROOT / "gateway" / "config.py",
}
REQUIRED_CONFIGS = {"auth"}

VARIABLE = re.compile(r"\b(?:AUTH|TODO|GATEWAY)_[A-Z0-9_]+\b")

# Settings a deployment deliberately leaves at their default, per service. Anything a service
# reads that is not listed here must be set in compose.yaml and in deploy/k8s.
# (*_HOST and *_PORT are NOT here: the defaults bind to loopback, useless in a container.)
KEEP_DEFAULT: dict[str, set[str]] = {
    "auth": {
        # Token and session lifetimes: the contract's defaults are the product's policy.
        "AUTH_ACCESS_TOKEN_TTL",
        "AUTH_REFRESH_TOKEN_TTL",
        "AUTH_SESSION_MAX_AGE",
        "AUTH_REFRESH_REUSE_GRACE",
        # Key-ring schedule: 30-day rotation, 5-minute JWKS cache, 1-minute schedule check.
        "AUTH_KEY_ROTATION_INTERVAL",
        "AUTH_JWKS_MAX_AGE",
        "AUTH_KEY_CHECK_INTERVAL",
        # Brute-force limit per account (the contract's 10 failures per 15 minutes).
        "AUTH_LOGIN_FAILURE_LIMIT",
        # Argon2id tuning keeps the OWASP parameters; changing them rehashes at next login.
        "AUTH_ARGON2_MEMORY_KIB",
        "AUTH_ARGON2_TIME_COST",
        "AUTH_ARGON2_PARALLELISM",
        # How many logins may wait for a hashing thread before 503 `overloaded`.
        "AUTH_HASH_QUEUE",
        # Key prefix in Redis: only needed when several deployments share one Redis.
        "AUTH_REDIS_PREFIX",
        # The first-party client's id (`todo-app`) and the audit log's 90-day retention.
        "AUTH_FIRST_PARTY_CLIENT_ID",
        "AUTH_AUDIT_RETENTION",
    },
    "todo": {
        # JWKS cache: refreshed within 30 s–1 h as the auth service's Cache-Control says, and
        # at most one refetch per 30 s on an unknown kid. Defaults match AUTH_JWKS_MAX_AGE.
        "TODO_JWKS_COOLDOWN",
        "TODO_JWKS_MIN_REFRESH",
        "TODO_JWKS_MAX_REFRESH",
        # Derived from TODO_JWKS_URL (the same host) and TODO_ISSUER; no staleness limit.
        "TODO_REVOCATION_URL",
        "TODO_EVENTS_URL",
        "TODO_TOKEN_URL",
        "TODO_PUBLIC_URL",
        "TODO_REVOCATION_MAX_STALENESS",
    },
    "gateway": {
        # Upstream timeouts (2 s connect, 15 s read) suit both deployments.
        "GATEWAY_CONNECT_TIMEOUT_MS",
        "GATEWAY_READ_TIMEOUT_MS",
        # Key prefix in Redis: only needed when several deployments share one Redis.
        "GATEWAY_REDIS_PREFIX",
        # The deployed edge is nginx, which counts per replica in its own memory: the Python
        # gateway's Redis counters are not used there (README, Edge).
        "GATEWAY_REDIS_URL",
    },
}

Document = dict[str, Any]


# --- loading --------------------------------------------------------------------------------


def yaml_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in {".yaml", ".yml"})


def load_documents(path: Path) -> list[Document]:
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    for doc in documents:
        assert isinstance(doc, dict), f"{path}: a YAML document that is not a mapping"
    return documents


def k8s_documents() -> list[tuple[Path, Document]]:
    return [(path, doc) for path in yaml_files(K8S_DIR) for doc in load_documents(path)]


def api_objects() -> list[tuple[Path, Document]]:
    return [(path, doc) for path, doc in k8s_documents() if doc.get("kind") not in KUSTOMIZE_KINDS]


def doc_id(path: Path, doc: Document) -> str:
    name = doc.get("metadata", {}).get("name", "?")
    return f"{path.relative_to(K8S_DIR)}:{doc.get('kind')}/{name}"


def load_compose() -> Document:
    documents = load_documents(COMPOSE_FILE)
    assert len(documents) == 1
    return documents[0]


def compose_schema() -> Document:
    """The Compose specification's schema, as vendored (with its licence) by check-jsonschema."""
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: Document = json.loads((vendor / "compose-spec.json").read_text())
    return schema


def validate_k8s(doc: Document) -> None:
    """Raise unless `doc` is valid for K8S_VERSION; strict: unknown fields are errors too."""
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def validate_compose(doc: Document) -> None:
    schema = compose_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator_class(schema).validate(doc)


# --- Kubernetes -----------------------------------------------------------------------------


def test_the_pinned_kubernetes_version_is_shipped_by_the_validator() -> None:
    assert major_minor(K8S_VERSION) in {major_minor(v) for v in all_versions()}


def test_there_are_manifests() -> None:
    kinds = {doc["kind"] for _, doc in api_objects()}
    expected = {
        "Namespace",
        "ConfigMap",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "Job",
    }
    assert expected <= kinds


@pytest.mark.parametrize(
    "doc", [pytest.param(doc, id=doc_id(path, doc)) for path, doc in api_objects()]
)
def test_manifest_is_valid_kubernetes(doc: Document) -> None:
    try:
        validate_k8s(doc)
    except kubernetes_validate.ValidationError as error:
        where = ".".join(str(part) for part in error.path)
        pytest.fail(f"{where}: {error.message}")
    except kubernetes_validate.SchemaNotFoundError as error:
        pytest.fail(error.message)


def _auth_deployment() -> Document:
    for _, doc in api_objects():
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "auth":
            return copy.deepcopy(doc)
    raise AssertionError("no auth Deployment")


def _wrong_port_type(doc: Document) -> None:
    doc["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8001/tcp"


def _misspelt_field(doc: Document) -> None:
    container = doc["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")


def _missing_selector(doc: Document) -> None:
    del doc["spec"]["selector"]


@pytest.mark.parametrize("breakage", [_wrong_port_type, _misspelt_field, _missing_selector])
def test_the_validator_rejects_a_broken_manifest(breakage: Any) -> None:
    doc = _auth_deployment()
    validate_k8s(doc)
    breakage(doc)
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_k8s(doc)


def test_kustomization_lists_every_manifest() -> None:
    for kustomization in K8S_DIR.rglob("kustomization.yaml"):
        (spec,) = load_documents(kustomization)
        listed = {(kustomization.parent / item).resolve() for item in spec.get("resources", [])}
        for path in listed:
            assert path.exists(), f"{kustomization} lists missing {path}"
        manifests = {
            path.resolve()
            for path in yaml_files(kustomization.parent)
            if path.name != "kustomization.yaml"
        }
        assert manifests == listed, f"{kustomization}: listed and present manifests differ"


def _kustomize_command() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def test_the_kustomize_build_is_valid_kubernetes() -> None:
    command = _kustomize_command()
    if command is None:
        pytest.skip("neither kustomize nor kubectl is installed")
    built = subprocess.run(
        [*command, str(K8S_DIR / "base")], capture_output=True, text=True, timeout=60, check=False
    )
    assert built.returncode == 0, built.stderr
    documents = [doc for doc in yaml.safe_load_all(built.stdout) if doc]
    assert len(documents) == len(api_objects())
    for doc in documents:
        assert doc["metadata"].get("namespace", "authplatform") == "authplatform"
        validate_k8s(doc)


def _deployments() -> dict[str, Document]:
    return {doc["metadata"]["name"]: doc for _, doc in api_objects() if doc["kind"] == "Deployment"}


def test_deployments_are_hardened_probed_and_bounded() -> None:
    deployments = _deployments()
    assert set(deployments) == set(SERVICES)
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["enableServiceLinks"] is False, name  # else AUTH_PORT=tcp://… is injected
        tmp_volumes = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts.get("/tmp") in tmp_volumes, name
            assert container["livenessProbe"]["httpGet"]["path"] == "/health/live", name
            assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready", name
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind]), name


def test_every_deployment_has_a_service_an_autoscaler_and_a_disruption_budget() -> None:
    by_kind: dict[str, set[str]] = {}
    for _, doc in api_objects():
        by_kind.setdefault(doc["kind"], set()).add(doc["metadata"]["name"])
    for name in _deployments():
        for kind in ("Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
            assert name in by_kind.get(kind, set()), f"{name} has no {kind}"


def test_no_secret_values_in_the_manifests() -> None:
    """Secrets are referenced (secretKeyRef), created by the operator, never committed."""
    for path, doc in k8s_documents():
        assert doc.get("kind") != "Secret", f"{path} holds a Secret"
        if doc.get("kind") == "ConfigMap":
            for key in doc.get("data", {}):
                assert not re.search(r"KEY|PASSWORD|SECRET|DATABASE_URL|REDIS_URL", key), key


def test_only_the_gateway_is_reachable_from_outside() -> None:
    policies = [doc for _, doc in api_objects() if doc["kind"] == "NetworkPolicy"]
    deny = [p for p in policies if p["spec"]["podSelector"] == {} and "ingress" not in p["spec"]]
    assert any({"Ingress", "Egress"} <= set(p["spec"]["policyTypes"]) for p in deny)
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            if "from" not in rule:  # open to any source
                selector = policy["spec"]["podSelector"]
                assert selector == {"matchLabels": {"app.kubernetes.io/name": "gateway"}}
    public = [d for _, d in api_objects() if d["kind"] == "Service" and d["spec"].get("type")]
    exposed = {d["metadata"]["name"] for d in public if d["spec"]["type"] != "ClusterIP"}
    assert exposed == {"gateway"}


# --- Compose --------------------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    validate_compose(load_compose())


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("services", "auth", "depends_on", "postgres", "condition"), "service_sleeping"),
        (("services", "auth", "healthcheck", "intervall"), "10s"),
        (("services", "gateway", "ports"), "8000:8000"),
    ],
)
def test_the_compose_schema_rejects_a_broken_file(where: tuple[str, ...], value: str) -> None:
    doc = copy.deepcopy(load_compose())
    target = doc
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        validate_compose(doc)


def test_compose_publishes_only_the_gateway_and_checks_health() -> None:
    services = load_compose()["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"gateway"}
    for name in ("postgres", "redis", *SERVICES):
        assert "healthcheck" in services[name], name
    for name in SERVICES:
        test = services[name]["healthcheck"]["test"]
        assert "/health/ready" in " ".join(test), name
        assert "curl" not in " ".join(test), name
    migrations = {"auth": "auth-migrate", "todo": "todo-migrate"}
    for name, migrate in migrations.items():
        assert services[name]["depends_on"][migrate] == {
            "condition": "service_completed_successfully"
        }
    key = services["auth"]["environment"]["AUTH_KEY_ENCRYPTION_KEY"]
    assert key.startswith("${AUTH_KEY_ENCRYPTION_KEY:?"), "the key must be required, not defaulted"


def test_auth_and_todo_agree_on_issuer_and_audience() -> None:
    """A mismatch would make the todo service reject every token the auth service issues."""
    compose = load_compose()["services"]
    config_maps = {
        doc["metadata"]["name"]: doc["data"]
        for _, doc in api_objects()
        if doc["kind"] == "ConfigMap"
    }
    for auth, todo in (
        (compose["auth"]["environment"], compose["todo"]["environment"]),
        (config_maps["auth-config"], config_maps["todo-config"]),
    ):
        assert auth["AUTH_ISSUER"] == todo["TODO_ISSUER"]
        assert auth["AUTH_AUDIENCE"] == todo["TODO_AUDIENCE"]
        assert todo["TODO_JWKS_URL"] == "http://auth:8001/.well-known/jwks.json"


def test_the_image_runs_unprivileged_from_a_slim_final_stage() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert stages == ["python:3.11-slim", "python:3.11-slim"]
    final = dockerfile.rsplit("\nFROM ", 1)[1]
    assert re.search(r"^USER 10001(:10001)?$", final, flags=re.MULTILINE)
    assert 'ENTRYPOINT ["python", "-m"]' in final
    assert not re.search(r"apt-get|build-essential|gcc", final)
    for package in ("auth_service", "todo_service", "gateway", "kit"):
        assert re.search(rf"^COPY {package}/ ", final, flags=re.MULTILINE), package


# --- every setting deployed -----------------------------------------------------------------


def read_variables(config: Path) -> set[str]:
    """The variables named in the string literals of a settings module."""
    tree = ast.parse(config.read_text(), filename=str(config))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.update(VARIABLE.findall(node.value))
    return found


def compose_environment(service: str) -> set[str]:
    """The service's variables; for the gateway, those its configuration is rendered from
    (the one-shot `gateway-config`: nginx itself reads none)."""
    services = load_compose()["services"]
    found: set[str] = set()
    for name in (service, f"{service}-config"):
        environment = services.get(name, {}).get("environment", {})
        if isinstance(environment, Mapping):
            found.update(environment)
        else:
            found.update(item.split("=", 1)[0] for item in environment)
    return found


def _containers(pod: Document) -> Iterator[Document]:
    yield from pod.get("initContainers", [])
    yield from pod["containers"]


def k8s_environment(service: str) -> set[str]:
    """Variables the Deployment `service` sets: its env entries and its ConfigMaps' keys."""
    config_maps = {
        doc["metadata"]["name"]: set(doc.get("data", {}))
        for _, doc in api_objects()
        if doc["kind"] == "ConfigMap"
    }
    found: set[str] = set()
    for container in _containers(_deployments()[service]["spec"]["template"]["spec"]):
        found.update(entry["name"] for entry in container.get("env", []))
        for source in container.get("envFrom", []):
            assert "configMapRef" in source, "only ConfigMaps are loaded whole (envFrom)"
            found.update(config_maps[source["configMapRef"]["name"]])
    return found


def undeployed(service: str, variables: set[str]) -> dict[str, list[str]]:
    """Variables neither deployed for `service` nor kept at their default on purpose."""
    needed = variables - KEEP_DEFAULT[service]
    return {
        "compose.yaml": sorted(needed - compose_environment(service)),
        "deploy/k8s": sorted(needed - k8s_environment(service)),
    }


def _configs() -> list[Any]:
    return [pytest.param(service, id=service) for service in SERVICES]


@pytest.mark.parametrize("service", _configs())
def test_every_setting_is_deployed_or_deliberately_defaulted(service: str) -> None:
    config = SERVICES[service]
    if not config.exists():
        assert service not in REQUIRED_CONFIGS, f"{config} is missing"
        pytest.skip(f"{config.relative_to(ROOT)} does not exist yet")
    variables = read_variables(config)
    assert variables, f"no variables found in {config}"
    missing = undeployed(service, variables)
    assert missing == {"compose.yaml": [], "deploy/k8s": []}, missing


@pytest.mark.parametrize("service", _configs())
def test_the_keep_default_list_is_current(service: str) -> None:
    """An entry is read by the service, and not deployed after all (that would contradict it)."""
    config = SERVICES[service]
    if not config.exists():
        pytest.skip(f"{config.relative_to(ROOT)} does not exist yet")
    kept = KEEP_DEFAULT[service]
    assert kept <= read_variables(config), kept - read_variables(config)
    assert not kept & compose_environment(service), kept & compose_environment(service)
    assert not kept & k8s_environment(service), kept & k8s_environment(service)


def test_an_undeployed_setting_is_reported() -> None:
    missing = undeployed("auth", {"AUTH_HOST", "AUTH_NOT_DEPLOYED", "AUTH_ARGON2_TIME_COST"})
    assert missing == {"compose.yaml": ["AUTH_NOT_DEPLOYED"], "deploy/k8s": ["AUTH_NOT_DEPLOYED"]}


def test_settings_are_read_from_string_literals_only(tmp_path: Path) -> None:
    config = tmp_path / "config.py"
    config.write_text(
        'import os\nHOST = os.environ.get("AUTH_HOST")\n'
        'MSG = f"must exceed TODO_JWKS_MAX_AGE ({HOST})"\nAUTH_NOT_A_STRING = 1\n'
    )
    assert read_variables(config) == {"AUTH_HOST", "TODO_JWKS_MAX_AGE"}
