"""deploy/k8s: both overlays render offline, every object is valid for the Kubernetes versions we support,
and the promises of deploy/README.md hold in what would be applied."""

from __future__ import annotations

import pytest
from kubernetes_validate import ValidationError, validate

from tests.unit.deploy.deployment import (
    K8S,
    OVERLAYS,
    Manifest,
    config_map_data,
    console_scripts,
    containers,
    crucible_env_names,
    env_of,
    named,
    of_kind,
    pod_labels,
    pod_spec,
    read_yaml,
    render,
    selects,
    workloads,
)

# The oldest Kubernetes the manifests are written for (user namespaces on by default, for the dev
# overlay's sandbox) and the newest whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.33.0", "1.37.0")
GRPC_SERVICES = {"spec": 50051, "run": 50052, "snapshot": 50053, "agent": 50054}
SERVICES = set(GRPC_SERVICES)
AUTOSCALED = {"run", "agent"}
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
# The only deviations from the restricted profile anywhere, and only where the pod is in its own user
# namespace: what bubblewrap (the agent's test sandbox, run by a non-root user) needs to create its
# namespaces and mount a fresh /proc when no gVisor is there to provide them.
SANDBOX_EXCEPTIONS = {
    "pod seccompProfile Unconfined",
    "pod appArmorProfile Unconfined",
    "container agent procMount Unmasked",
}


def component(workload: Manifest) -> str:
    return pod_labels(workload)["app.kubernetes.io/component"]


def restricted_violations(workload: Manifest) -> set[str]:
    """How a pod template departs from the restricted Pod Security Standard (the checks that apply here)."""
    spec = pod_spec(workload)
    pod_context = spec.get("securityContext", {})
    found = set()
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            found.add(f"pod {field}")
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            found.add(f"volume {volume['name']} {sorted(kinds)}")
    pod_seccomp = pod_context.get("seccompProfile", {}).get("type")
    if pod_seccomp not in ("RuntimeDefault", "Localhost"):
        found.add(f"pod seccompProfile {pod_seccomp}")
    apparmor = pod_context.get("appArmorProfile", {}).get("type")
    if apparmor not in (None, "RuntimeDefault", "Localhost"):
        found.add(f"pod appArmorProfile {apparmor}")
    for container in containers(workload):
        name, context = container["name"], container.get("securityContext", {})
        if context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is not True:
            found.add(f"container {name} runAsNonRoot")
        if context.get("runAsUser", pod_context.get("runAsUser")) == 0:
            found.add(f"container {name} runAsUser 0")
        if context.get("allowPrivilegeEscalation") is not False:
            found.add(f"container {name} allowPrivilegeEscalation")
        if context.get("privileged"):
            found.add(f"container {name} privileged")
        capabilities = context.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []) or set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            found.add(f"container {name} capabilities")
        if context.get("procMount", "Default") != "Default":
            found.add(f"container {name} procMount {context['procMount']}")
        seccomp = context.get("seccompProfile", {}).get("type")
        if seccomp not in (None, "RuntimeDefault", "Localhost"):
            found.add(f"container {name} seccompProfile {seccomp}")
    return found


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


# ----------------------------------------------------------------------------- schemas


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_rendered_object_is_valid_against_the_kubernetes_schemas(overlay: str, version: str) -> None:
    errors = []
    for manifest in render(overlay):
        try:
            validate(manifest, version, strict=True)
        except ValidationError as exc:
            errors.append(f"{manifest['kind']}/{manifest['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert errors == []


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_secret_template_is_a_valid_secret(version: str) -> None:
    validate(read_yaml(K8S / "base" / "secret.template.yaml"), version, strict=True)


def test_the_overlays_render_what_each_promises() -> None:
    dev, production = ({(o["kind"], o["metadata"]["name"]) for o in render(overlay)} for overlay in OVERLAYS)

    # Dev: Postgres, the emulator and a generated Secret (named after its content) in the cluster.
    assert {("Deployment", "emulator"), ("StatefulSet", "postgres")} <= dev
    assert [name for kind, name in dev if kind == "Secret" and name.startswith("crucible-secrets-")]
    assert not {name for kind, name in dev if kind == "HorizontalPodAutoscaler"}
    # Production: a managed Postgres and real providers; its Secret is made out of band, never from git.
    assert not {name for _, name in production if name in ("emulator", "postgres")}
    assert not {name for kind, name in production if kind == "Secret"}
    assert {("HorizontalPodAutoscaler", "run"), ("HorizontalPodAutoscaler", "agent")} <= production


# ----------------------------------------------------------------------------- workloads


def test_every_container_has_probes_requests_and_limits(overlay: str) -> None:
    for workload in workloads(render(overlay)):
        for container in containers(workload):
            where = f"{overlay} {workload['metadata']['name']}/{container['name']}"
            assert "readinessProbe" in container, where
            assert "livenessProbe" in container, where
            resources = container.get("resources", {})
            assert set(resources.get("requests", {})) >= {"cpu", "memory"}, where
            assert set(resources.get("limits", {})) >= {"cpu", "memory"}, where


def test_the_grpc_services_are_probed_natively_on_their_port(overlay: str) -> None:
    for workload in of_kind(render(overlay), "Deployment"):
        if component(workload) not in SERVICES:
            continue
        (container,) = containers(workload)
        port = GRPC_SERVICES[component(workload)]
        assert [p["containerPort"] for p in container["ports"]] == [port]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"] == {"port": port}, f"{workload['metadata']['name']} {probe}"
        assert env_of(container)[f"CRUCIBLE_{component(workload).upper()}_ADDR"]["value"] == f"0.0.0.0:{port}"


def test_every_pod_is_non_root_and_restricted_except_the_sandbox_of_the_dev_agent(overlay: str) -> None:
    for workload in workloads(render(overlay)):
        violations = restricted_violations(workload)
        if overlay == "dev" and component(workload) == "agent":
            assert violations == SANDBOX_EXCEPTIONS
            # Only behind a user namespace of its own: what the lifted filters allow stays in the pod.
            assert pod_spec(workload)["hostUsers"] is False
        else:
            assert violations == set(), workload["metadata"]["name"]
        for container in containers(workload):
            assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_namespace_enforces_what_its_pods_meet(overlay: str) -> None:
    labels = named(render(overlay), "Namespace", "crucible")["metadata"]["labels"]

    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"
    assert labels["pod-security.kubernetes.io/enforce"] == ("privileged" if overlay == "dev" else "restricted")


def test_the_agent_sandbox_gets_gvisor_in_production_and_a_user_namespace_in_dev() -> None:
    production = pod_spec(named(render("production"), "Deployment", "agent"))
    dev = pod_spec(named(render("dev"), "Deployment", "agent"))

    assert production["runtimeClassName"] == "gvisor"
    assert "hostUsers" not in production
    assert dev["hostUsers"] is False
    assert "runtimeClassName" not in dev
    for overlay in OVERLAYS:
        others = [w for w in workloads(render(overlay)) if component(w) != "agent"]
        assert all("runtimeClassName" not in pod_spec(w) and "hostUsers" not in pod_spec(w) for w in others)


def test_any_agent_replica_finds_every_sprint_workspace_on_the_shared_volume(overlay: str) -> None:
    objects = render(overlay)
    agent = named(objects, "Deployment", "agent")
    (container,) = containers(agent)
    volumes = {v["name"]: v for v in pod_spec(agent)["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}

    workspaces_dir = env_of(container)["CRUCIBLE_ARTIFACTS_DIR"]["value"]
    claim = volumes[mounts[workspaces_dir]]["persistentVolumeClaim"]["claimName"]
    modes = named(objects, "PersistentVolumeClaim", claim)["spec"]["accessModes"]
    # Production runs several agent replicas on several nodes; dev runs one.
    assert modes == (["ReadWriteMany"] if overlay == "production" else ["ReadWriteOnce"])
    if overlay == "dev":
        assert named(objects, "Deployment", "agent")["spec"]["replicas"] == 1


def test_every_command_is_an_installed_executable(overlay: str) -> None:
    for workload in workloads(render(overlay)):
        for container in containers(workload):
            if container["image"].startswith("postgres:"):
                continue
            assert container["args"][0] in console_scripts(), container["args"]
            assert "command" not in container, "the image's entrypoint (tini) must stay PID 1"


def test_every_image_is_the_overlays_crucible_image(overlay: str) -> None:
    expected = {"dev": "crucible:local", "production": "registry.example.com/crucible:0.1.0"}[overlay]
    images = {c["image"] for w in workloads(render(overlay)) for c in containers(w)}

    assert images - {"postgres:18"} == {expected}


def test_every_crucible_variable_is_one_a_process_reads(overlay: str) -> None:
    objects = render(overlay)
    for workload in workloads(objects):
        for container in containers(workload):
            names = set(env_of(container)) | set(config_map_data(objects, container))
            unknown = {n for n in names if n.startswith("CRUCIBLE_")} - crucible_env_names()
            assert unknown == set(), f"{workload['metadata']['name']}: {unknown}"


def test_the_dev_agent_reaches_the_emulator_for_both_providers() -> None:
    objects = render("dev")
    (agent,) = containers(named(objects, "Deployment", "agent"))
    emulator = named(objects, "Service", "emulator")
    port = emulator["spec"]["ports"][0]["port"]
    env = config_map_data(objects, agent)

    assert env["CRUCIBLE_OPENAI_BASE_URL"] == f"http://emulator:{port}/openai/v1"
    assert env["CRUCIBLE_ANTHROPIC_BASE_URL"] == f"http://emulator:{port}/anthropic"


def test_every_reference_to_a_config_map_or_secret_resolves(overlay: str) -> None:
    objects = render(overlay)
    template = read_yaml(K8S / "base" / "secret.template.yaml")
    secrets = {
        s["metadata"]["name"]: set(s.get("data", {})) | set(s.get("stringData", {})) for s in of_kind(objects, "Secret")
    }
    if overlay == "production":
        secrets[template["metadata"]["name"]] = set(template["stringData"])
    config_maps = {c["metadata"]["name"]: set(c.get("data", {})) for c in of_kind(objects, "ConfigMap")}
    for workload in workloads(objects):
        for container in containers(workload):
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in config_maps
            for entry in container.get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref is None or ref.get("optional"):
                    continue
                assert ref["key"] in secrets.get(ref["name"], set()), f"{workload['metadata']['name']}: {ref}"


# ----------------------------------------------------------------------------- availability and scale


def test_every_deployment_has_a_disruption_budget(overlay: str) -> None:
    objects = render(overlay)
    budgets = of_kind(objects, "PodDisruptionBudget")
    for workload in of_kind(objects, "Deployment"):
        if component(workload) == "emulator":
            continue
        matching = [b for b in budgets if selects(b["spec"]["selector"], pod_labels(workload))]
        assert len(matching) == 1, workload["metadata"]["name"]
        assert matching[0]["spec"] == {"maxUnavailable": 1, "selector": matching[0]["spec"]["selector"]}


def test_run_and_agent_scale_by_autoscaler_in_production() -> None:
    objects = render("production")
    autoscalers = of_kind(objects, "HorizontalPodAutoscaler")

    assert {h["spec"]["scaleTargetRef"]["name"] for h in autoscalers} == AUTOSCALED
    for hpa in autoscalers:
        target = named(objects, "Deployment", hpa["spec"]["scaleTargetRef"]["name"])
        # A replica count in the Deployment would be reset by every apply, fighting the autoscaler.
        assert "replicas" not in target["spec"]
        assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    for workload in of_kind(objects, "Deployment"):
        if component(workload) not in AUTOSCALED:
            assert workload["spec"]["replicas"] >= 2


def test_every_service_selects_a_workload_and_its_named_port(overlay: str) -> None:
    objects = render(overlay)
    for service in of_kind(objects, "Service"):
        (workload,) = [
            w for w in workloads(objects) if selects({"matchLabels": service["spec"]["selector"]}, pod_labels(w))
        ]
        port_names = {p["name"] for c in containers(workload) for p in c.get("ports", [])}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names


# ----------------------------------------------------------------------------- network


def _selected(policy: Manifest, objects: list[Manifest]) -> set[str]:
    return {component(w) for w in workloads(objects) if selects(policy["spec"]["podSelector"], pod_labels(w))}


def _peer_components(peers: list[Manifest], objects: list[Manifest]) -> set[str]:
    found = set()
    for peer in peers:
        if set(peer) != {"podSelector"}:
            found.add("<outside the namespace>")
            continue
        found |= {component(w) for w in workloads(objects) if selects(peer["podSelector"], pod_labels(w))}
    return found


def test_everything_not_allowed_is_denied(overlay: str) -> None:
    deny = named(render(overlay), "NetworkPolicy", "default-deny")["spec"]

    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_only_the_gateway_is_reachable_from_outside_the_namespace(overlay: str) -> None:
    objects = render(overlay)
    for policy in of_kind(objects, "NetworkPolicy"):
        for rule in policy["spec"].get("ingress", []):
            peers = rule.get("from")
            if peers is None or "<outside the namespace>" in _peer_components(peers, objects):
                assert _selected(policy, objects) == {"gateway"}, policy["metadata"]["name"]


def test_the_services_accept_only_the_gateway_and_each_other(overlay: str) -> None:
    objects = render(overlay)
    allowed: dict[str, set[str]] = {}
    for policy in of_kind(objects, "NetworkPolicy"):
        for rule in policy["spec"].get("ingress", []):
            peers = _peer_components(rule["from"], objects) if "from" in rule else {"<outside the namespace>"}
            for target in _selected(policy, objects):
                allowed.setdefault(target, set()).update(peers)

    for service in SERVICES:
        assert allowed[service] == SERVICES | {"gateway"}
    if overlay == "dev":
        assert allowed["emulator"] == {"agent"}
        assert allowed["database"] == SERVICES


def test_only_the_agent_may_reach_the_internet_and_only_over_https(overlay: str) -> None:
    objects = render(overlay)
    for policy in of_kind(objects, "NetworkPolicy"):
        for rule in policy["spec"].get("egress", []):
            blocks = [peer["ipBlock"] for peer in rule.get("to", []) if "ipBlock" in peer]
            if not blocks:
                continue
            ports = {p["port"] for p in rule["ports"]}
            if ports == {5432}:
                # Postgres, outside the cluster in production: the services' only way out.
                assert _selected(policy, objects) == SERVICES
                continue
            assert ports == {443}
            assert _selected(policy, objects) == {"agent"}
            # Not the cluster's, the nodes' or the cloud metadata service's addresses.
            assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(blocks[0]["except"])
