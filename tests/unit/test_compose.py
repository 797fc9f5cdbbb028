"""docker-compose.yml, its image and its scripts, checked without Docker.

Every command the Docker deployment runs (in the compose file, the Dockerfile and the shell
scripts under deploy/docker/, and the ones its header tells people to type) must parse with the
real ``cifta`` argument parser; every file it refers to must exist in the repository; every
dependency and volume must be defined; nothing may be published beyond the host's loopback.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import io
import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERIGNORE = ROOT / ".dockerignore"
SCRIPTS_DIR = ROOT / "deploy" / "docker"
SCRIPTS = sorted(SCRIPTS_DIR.glob("*.sh"))

SHELL_KEYWORDS = {"if", "then", "else", "elif", "do", "while", "until", "!", "exec", "time", "{"}
OPERATORS = {";", "&&", "||", "|", "&", "(", ")", ";;"}
REDIRECTIONS = re.compile(r"^[0-9]*(<<-?|>>|>&|<&|&>|>\||<|>)")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


# -- reading the files -----------------------------------------------------------------------------


def load_compose(path: Path = COMPOSE) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), f"{path}: no services"
    return data


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = load_compose()["services"]
    return found


def dockerfiles(compose: dict[str, Any]) -> set[Path]:
    found = set()
    for svc in compose["services"].values():
        build = svc.get("build")
        if build is None:
            continue
        if isinstance(build, str):
            build = {"context": build}
        context = ROOT / build.get("context", ".")
        found.add(context / build.get("dockerfile", "Dockerfile"))
    return found


class Dockerfile:
    """The few instructions of a Dockerfile these tests need."""

    def __init__(self, path: Path) -> None:
        self.path = path
        text = re.sub(r"\\\n", " ", path.read_text())
        self.instructions: list[tuple[str, str]] = []
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                word, _, rest = line.partition(" ")
                self.instructions.append((word.upper(), rest.strip()))

    def last(self, name: str) -> str | None:
        values = [rest for word, rest in self.instructions if word == name]
        return values[-1] if values else None

    def exec_form(self, name: str) -> list[str]:
        value = self.last(name)
        if value is None:
            return []
        if value.startswith("["):
            parsed = json.loads(value)
            assert isinstance(parsed, list)
            return [str(v) for v in parsed]
        return ["/bin/sh", "-c", value]

    @property
    def workdir(self) -> str:
        return self.last("WORKDIR") or "/"

    @property
    def app_dir(self) -> str:
        """Where the repository is copied in the image (``COPY . <dest>``)."""
        for word, rest in self.instructions:
            if word == "COPY":
                parts = [p for p in rest.split() if not p.startswith("--")]
                if len(parts) == 2 and parts[0] == ".":
                    dest = parts[1]
                    return dest if dest.startswith("/") else os.path.join(self.workdir, dest)
        raise AssertionError(f"{self.path} does not copy the repository (COPY . <dir>)")


def the_dockerfile() -> Dockerfile:
    files = dockerfiles(load_compose())
    assert len(files) == 1, f"expected the services to share one Dockerfile, got {files}"
    path = files.pop()
    assert path.is_file(), f"docker-compose.yml builds from {path}, which does not exist"
    return Dockerfile(path)


# -- shell -----------------------------------------------------------------------------------------


def substitute_variables(text: str) -> str:
    """Placeholders for shell variables: a default if one is given, MEX for $STATE, x otherwise.

    A script's own arguments (``"$@"``) are dropped: they are checked where a service passes them.
    """
    text = re.sub(r'"\$@"|\$@', "", text)
    previous = None
    while previous != text:  # defaults may themselves hold variables
        previous = text
        text = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?[-=]([^{}]*)\}", r"\1", text)
    text = re.sub(r"\$\{STATE\}|\$STATE\b", "MEX", text)
    text = re.sub(r"\$\{[^{}]*\}", "x", text)
    return re.sub(r"\$([A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-])", "x", text)


def strip_heredocs(text: str) -> str:
    """The script without the bodies of its here-documents (they are not shell commands)."""
    out, end = [], None
    for line in text.splitlines():
        if end is not None:
            if line.strip() == end:
                end = None
            continue
        out.append(line)
        match = re.search(r"<<-?\s*['\"]?([A-Za-z_][A-Za-z0-9_]*)['\"]?", line)
        if match:
            end = match.group(1)
    return "\n".join(out)


def simple_commands(text: str) -> Iterator[list[str]]:
    """Each simple command of a shell text, as argv: operators, keywords, redirections removed.

    Command substitutions ``$(...)`` are yielded as commands of their own.
    """
    text = re.sub(r"\\\n", " ", strip_heredocs(text))
    for inner in re.findall(r"\$\(([^()]*)\)", text):
        yield from simple_commands(inner)
    for line in text.splitlines():
        lexer = shlex.shlex(substitute_variables(line), posix=True, punctuation_chars=";&|()<>")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        try:
            tokens = list(lexer)
        except ValueError as exc:
            raise AssertionError(f"cannot split shell line {line!r}: {exc}") from None
        argv: list[str] = []
        skip_next = False
        for token in [*tokens, ";"]:
            if skip_next:
                skip_next = False
                continue
            if token in OPERATORS:
                while argv and (argv[0] in SHELL_KEYWORDS or ASSIGNMENT.match(argv[0])):
                    argv.pop(0)
                if argv:
                    yield argv
                argv = []
            elif REDIRECTIONS.match(token):
                skip_next = not REDIRECTIONS.sub("", token)  # `> file`: drop the file too
                if argv and argv[-1].isdigit():  # `2> file`
                    argv.pop()
            else:
                argv.append(token)


def cifta_invocations(text: str) -> list[list[str]]:
    return [argv for argv in simple_commands(text) if Path(argv[0]).name == "cifta"]


def parse_cifta(argv: list[str], where: str) -> argparse.Namespace:
    """Parse ``cifta ...`` with the real parser; fail the test with argparse's message if not."""
    assert Path(argv[0]).name == "cifta", argv
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            return build_parser().parse_args(argv[1:])
    except SystemExit:
        raise AssertionError(
            f"{where}: `{shlex.join(argv)}` is not a valid cifta command:\n{stderr.getvalue()}"
        ) from None


def command_path(args: argparse.Namespace) -> tuple[str, ...]:
    path = [args.command]
    for attr in ("hub_command", "node_command", "keys_command", "directory_command"):
        if getattr(args, attr, None):
            path.append(getattr(args, attr))
    return tuple(path)


# -- what each service runs ------------------------------------------------------------------------


def service_argv(name: str, svc: dict[str, Any]) -> list[str]:
    """entrypoint + command, falling back to the image's ENTRYPOINT/CMD as Docker does."""

    def as_list(value: Any) -> list[str]:
        if value is None:
            return []
        return [str(v) for v in value] if isinstance(value, list) else shlex.split(str(value))

    dockerfile = the_dockerfile()
    entrypoint = as_list(svc.get("entrypoint")) if "entrypoint" in svc else None
    command = as_list(svc.get("command")) if "command" in svc else None
    if entrypoint is None:
        entrypoint = dockerfile.exec_form("ENTRYPOINT")
    if command is None:
        command = dockerfile.exec_form("CMD")
    argv = entrypoint + command
    assert argv, f"service {name} runs nothing: no command, entrypoint, CMD or ENTRYPOINT"
    return argv


def repo_path(container_path: str, cwd: str | None = None) -> Path | None:
    """The repository file a path inside the image refers to, if it is inside the repository."""
    dockerfile = the_dockerfile()
    app_dir = dockerfile.app_dir.rstrip("/")
    if not container_path.startswith("/"):
        container_path = os.path.normpath(os.path.join(cwd or dockerfile.workdir, container_path))
    if container_path == app_dir or container_path.startswith(app_dir + "/"):
        return ROOT / container_path[len(app_dir) :].lstrip("/")
    return None


def script_of(argv: list[str]) -> Path | None:
    """The repository script a command runs (`/opt/.../x.sh` or `sh /opt/.../x.sh`), if any."""
    if Path(argv[0]).name in {"sh", "bash", "dash"} and len(argv) > 1 and argv[1] != "-c":
        argv = argv[1:]
    return repo_path(argv[0])


def commands_of_service(name: str, svc: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """Every command a service runs: its own argv, and the commands of its script or `sh -c`."""
    argv = service_argv(name, svc)
    found = [(f"service {name}", argv)]
    if Path(argv[0]).name in {"sh", "bash", "dash"} and "-c" in argv:
        inline = argv[argv.index("-c") + 1]
        found += [(f"service {name} (sh -c)", a) for a in simple_commands(inline)]
    elif (script := script_of(argv)) is not None and script.is_file():
        found += [(f"{script.relative_to(ROOT)}", a) for a in simple_commands(script.read_text())]
    return found


def all_cifta_commands() -> list[tuple[str, list[str]]]:
    found = []
    for name, svc in services().items():
        found += [(w, a) for w, a in commands_of_service(name, svc) if Path(a[0]).name == "cifta"]
    for script in SCRIPTS:
        found += [(str(script.relative_to(ROOT)), a) for a in cifta_invocations(script.read_text())]
    return found


def published_ports(svc: dict[str, Any]) -> Iterator[str]:
    for port in svc.get("ports", []):
        if isinstance(port, dict):
            yield f"{port.get('host_ip', '0.0.0.0')}:{port.get('published', '')}"
        else:
            yield str(port)


def named_volume_mounts(svc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(volume name, target) of each named volume a service mounts (not bind mounts)."""
    for volume in svc.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type", "volume") == "volume" and volume.get("source"):
                yield volume["source"], volume["target"]
            continue
        source, sep, rest = str(volume).partition(":")
        if sep and not source.startswith(("/", ".", "~", "$")):
            yield source, rest.split(":")[0]


# -- the tests -------------------------------------------------------------------------------------


def test_compose_file_defines_the_hub_three_nodes_and_the_one_shot_steps() -> None:
    assert set(services()) == {
        "setup", "hub", "provision", "audit", "monitor", "node-mex", "node-usa", "node-col"
    }  # fmt: skip


@pytest.mark.parametrize("name", sorted(services()))
def test_every_service_runs_a_cifta_command_or_a_script_of_the_repository(name: str) -> None:
    argv = service_argv(name, services()[name])
    if Path(argv[0]).name == "cifta":
        parse_cifta(argv, f"service {name}")
        return
    script = script_of(argv)
    assert script is not None, f"service {name} runs {argv[0]!r}, neither cifta nor a repo script"
    assert script.is_file(), f"service {name} runs {argv[0]}, but {script} is not in the repository"


def test_every_compose_command_is_a_real_cifta_entry_point() -> None:
    commands = all_cifta_commands()
    assert commands, "no cifta command found in the Docker deployment"
    for where, argv in commands:
        parse_cifta(argv, where)


def test_every_cifta_command_in_the_scripts_is_a_real_entry_point() -> None:
    assert SCRIPTS, f"no scripts in {SCRIPTS_DIR}"
    for script in SCRIPTS:
        for argv in cifta_invocations(script.read_text()):
            parse_cifta(argv, str(script.relative_to(ROOT)))


def test_docker_path_runs_the_same_steps_as_the_demo() -> None:
    """hub init, node init, register, approve, render-config, provision, publish, node run."""
    steps = {command_path(parse_cifta(argv, where)) for where, argv in all_cifta_commands()}
    demo_steps = {
        ("hub", "init"),
        ("node", "init"),
        ("directory", "register"),
        ("directory", "approve"),
        ("directory", "publish"),
        ("hub", "render-config"),
        ("hub", "provision"),
        ("node", "run"),
    }
    assert demo_steps <= steps, f"missing: {sorted(demo_steps - steps)}"


def test_hub_listens_on_every_interface_inside_the_container_on_port_4222() -> None:
    renders = [
        parse_cifta(argv, where)
        for where, argv in all_cifta_commands()
        if argv[1:3] == ["hub", "render-config"]
    ]
    assert renders, "nothing renders nats.conf"
    for args in renders:
        assert (args.host, args.port) == ("0.0.0.0", 4222)


def test_every_file_the_commands_refer_to_exists_in_the_repository() -> None:
    checked = 0
    for where, argv in all_cifta_commands():
        args = parse_cifta(argv, where)
        if command_path(args) == ("hub", "init"):
            path = repo_path(args.registry)
            assert path is not None and path.is_file(), f"{where}: no registry {args.registry}"
            checked += 1
        for token in argv[1:]:
            if "://" in token or "/" not in token:
                continue
            path = repo_path(token)
            top = path.relative_to(ROOT).parts[:1] if path is not None else ()
            if path is not None and top and (ROOT / top[0]).exists():  # a path in the repository
                assert path.exists(), f"{where}: {token} is not in the repository"
                checked += 1
    assert checked, "the deployment never initialises the hub from a registry in the repository"


def test_every_script_and_dockerfile_referenced_exists() -> None:
    compose = load_compose()
    for dockerfile in dockerfiles(compose):
        assert dockerfile.is_file(), f"no Dockerfile {dockerfile}"
    referenced = set()
    for name, svc in compose["services"].items():
        for where, argv in commands_of_service(name, svc):
            for token in argv:
                if token.endswith(".sh"):
                    path = repo_path(token)
                    assert path is not None and path.is_file(), f"{where}: no script {token}"
                    referenced.add(path)
    assert referenced, "no service runs a script of deploy/docker"


def test_every_depends_on_names_a_defined_service() -> None:
    defined = set(services())
    for name, svc in services().items():
        depends = svc.get("depends_on", {})
        for other in depends if isinstance(depends, list) else depends.keys():
            assert other in defined, f"{name} depends on undefined service {other}"
            assert other != name, f"{name} depends on itself"
            if isinstance(depends, dict):
                condition = depends[other].get("condition", "service_started")
                assert condition in {
                    "service_started",
                    "service_healthy",
                    "service_completed_successfully",
                }, f"{name}: unknown condition {condition}"
                if condition == "service_healthy":
                    assert "healthcheck" in services()[other], f"{other} has no healthcheck"


def test_nodes_start_after_setup_provisioning_and_a_healthy_hub() -> None:
    svcs = services()
    assert svcs["hub"]["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    assert svcs["provision"]["depends_on"]["hub"]["condition"] == "service_healthy"
    for node in ("node-mex", "node-usa", "node-col"):
        depends = svcs[node]["depends_on"]
        assert depends["provision"]["condition"] == "service_completed_successfully"
        assert depends["hub"]["condition"] == "service_healthy"


def test_every_named_volume_used_is_declared() -> None:
    compose = load_compose()
    declared = set(compose.get("volumes") or {})
    for name, svc in compose["services"].items():
        for volume, _ in named_volume_mounts(svc):
            assert volume in declared, f"service {name} uses undeclared volume {volume}"


def test_every_volume_mount_point_is_created_in_the_image() -> None:
    """Otherwise Docker creates it owned by root, and the unprivileged user cannot write to it."""
    text = the_dockerfile().path.read_text()
    for svc in services().values():
        for _, target in named_volume_mounts(svc):
            assert re.search(re.escape(target) + r"(\s|$)", text), f"{target} not made in image"


def node_run_argv(name: str, svc: dict[str, Any]) -> list[str]:
    """What a node service runs: deploy/docker/node.sh ARGS is `cifta node run ARGS`."""
    argv = service_argv(name, svc)
    script = script_of(argv)
    if script is not None and script.name == "node.sh":
        assert 'exec cifta node run "$@"' in script.read_text()
        return ["cifta", "node", "run", *argv[1:]]
    return argv


def test_each_node_runs_on_its_own_volume_which_setup_also_mounts() -> None:
    svcs = services()
    setup_mounts = dict(named_volume_mounts(svcs["setup"]))
    for state in ("MEX", "USA", "COL"):
        name = f"node-{state.lower()}"
        args = parse_cifta(node_run_argv(name, svcs[name]), name)
        assert command_path(args) == ("node", "run")
        mounts = dict(named_volume_mounts(svcs[name]))
        assert list(mounts.values()) == [args.home], f"{name} must mount only its home"
        (volume,) = mounts
        assert setup_mounts.get(volume) == args.home, f"setup does not initialise {volume}"
        assert svcs[name]["environment"]["CIFTA_NODE_HUB_URL"] == "nats://hub:4222"


def test_no_port_is_published_beyond_the_hosts_loopback() -> None:
    for name, svc in services().items():
        for port in published_ports(svc):
            assert port.startswith("127.0.0.1:"), f"service {name} publishes {port} publicly"


def test_hub_healthcheck_is_a_valid_python_tcp_probe_of_the_client_port() -> None:
    test = services()["hub"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    compile(test[3], "healthcheck", "exec")
    assert "4222" in test[3]


def python_snippets(text: str) -> Iterator[str]:
    """`python -c '...'` programs, and here-documents fed to `python -`."""
    yield from re.findall(r"python3? -c '([^']*)'", text)
    yield from re.findall(r"python3? -c \"([^\"]*)\"", text)
    for tag, body in re.findall(
        r"python3? -[^\n]*<<-?\s*['\"]?(\w+)['\"]?[^\n]*\n(.*?)\n\s*\1\s*$", text, re.S | re.M
    ):
        yield body


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_python_in_the_scripts_compiles_and_imports_real_names(script: Path) -> None:
    for snippet in python_snippets(script.read_text()):
        for node in ast.parse(snippet, str(script)).body:
            if isinstance(node, ast.ImportFrom) and node.module:
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{script}: {node.module}.{alias.name}?"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_are_executable_posix_sh_that_stop_on_errors(script: Path) -> None:
    lines = script.read_text().splitlines()
    assert lines[0] == "#!/bin/sh", f"{script.name}: not a POSIX sh script"
    assert "set -eu" in (line.strip() for line in lines), f"{script.name}: no `set -eu`"
    assert os.access(script, os.X_OK), f"{script.name} is not executable"
    done = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{script.name}: {done.stderr}"


def test_documented_commands_name_defined_services_and_real_entry_points() -> None:
    documented = re.findall(
        r"^#\s*docker compose exec((?:\s+-e\s+[A-Z_]+|\s+-\w+)*)\s+(\S+)\s+(cifta\s.*)$",
        COMPOSE.read_text(),
        re.M,
    )
    assert documented, "the header does not show how to run a command inside a node"
    for _, service, command in documented:
        assert service in services(), f"the header names an undefined service {service}"
        (argv,) = cifta_invocations(command)
        args = parse_cifta(argv, f"header of {COMPOSE.name}")
        home = getattr(args, "home", None)
        if home and command_path(args)[0] != "hub":
            mounts = [t for _, t in named_volume_mounts(services()[service])]
            assert home in mounts, f"{service} does not mount {home}"


def dockerignore_excludes(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matching a directory covers it."""
    excluded = False
    for raw in DOCKERIGNORE.read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        regex = "".join(
            ".*" if part == "**" else re.escape(part).replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
            for part in re.split(r"(\*\*)", pattern)
        )
        regex = regex.replace(".*/", "(.*/)?")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        "var/demo/nodes/MEX/keys.json",
        "var/hub/nkeys/MEX/node.nk",
        "SEC.key.json",
        "somewhere/deep/SEC.key.json",
        "deploy/hub.nk",
        "a/b/state.creds",
        "services/__pycache__/x.cpython-311.pyc",
        ".pytest_cache/v/cache",
        ".mypy_cache/3.11/x.json",
        ".ruff_cache/x",
        ".hypothesis/examples/x",
        "cifta_exchange.egg-info/PKG-INFO",
        ".git/HEAD",
    ],
)
def test_dockerignore_keeps_environments_caches_and_key_material_out_of_the_image(
    path: str,
) -> None:
    assert dockerignore_excludes(path), f"{path} would be copied into the image"


def test_dockerignore_keeps_what_the_image_needs() -> None:
    needed = ["pyproject.toml", "deploy/registry.json", "services/cli/main.py", "schemas"]
    needed += [str(s.relative_to(ROOT)) for s in SCRIPTS]
    readme = re.search(r'^readme\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    if readme:
        needed.append(readme.group(1))  # setuptools fails to build without it
    for path in needed:
        assert (ROOT / path).exists(), path
        assert not dockerignore_excludes(path), f"{path} is needed in the image but ignored"


# -- the checks themselves must be able to fail ----------------------------------------------------


def test_a_misspelt_subcommand_is_caught() -> None:
    with pytest.raises(AssertionError, match="not a valid cifta command"):
        parse_cifta(["cifta", "hub", "startt"], "example")
    with pytest.raises(AssertionError, match="not a valid cifta command"):
        parse_cifta(["cifta", "hub", "render-config", "--port", "x"], "example")


def test_cifta_invocations_are_found_in_shell_constructs() -> None:
    script = """#!/bin/sh
set -eu
# cifta hub nothing (a comment)
if [ -f x ]; then cifta hub stop; fi
exec cifta node run --home "$NODES/$STATE" > /dev/null 2>&1
X="$(cifta hub url)"
cifta hub enrol \\
    --public "${DIR:-/srv}/public.json"
python - <<'PY'
cifta = 1
PY
"""
    assert cifta_invocations(script) == [
        ["cifta", "hub", "url"],
        ["cifta", "hub", "stop"],
        ["cifta", "node", "run", "--home", "x/MEX"],
        ["cifta", "hub", "enrol", "--public", "/srv/public.json"],
    ]


# -- issue 15: the audit service, a hub with nothing but its config, sealed keys, healthchecks --


LONG_RUNNING = ("hub", "audit", "monitor", "node-mex", "node-usa", "node-col")


def test_the_audit_service_runs_cifta_audit_run_after_provisioning() -> None:
    audit = services()["audit"]
    args = parse_cifta(service_argv("audit", audit), "audit")
    assert (args.command, args.audit_command) == ("audit", "run")
    assert args.url == "nats://hub:4222" and args.metrics == "0.0.0.0:9464"
    assert audit["depends_on"]["provision"]["condition"] == "service_completed_successfully"
    assert dict(named_volume_mounts(audit)) == {"hub-home": "/var/cifta/hub"}


def test_the_hub_container_gets_only_its_config_and_its_store() -> None:
    hub = services()["hub"]
    mounts = dict(named_volume_mounts(hub))
    assert mounts == {"hub-config": "/var/cifta/hub-config", "hub-data": "/var/cifta/hub/jetstream"}
    assert "hub-config:/var/cifta/hub-config:ro" in hub["volumes"]
    assert "secrets" not in hub
    # what setup writes into hub-config is nats.conf alone, and the hub runs that file
    setup = (SCRIPTS_DIR / "setup.sh").read_text()
    assert 'cp "$HUB_HOME/nats.conf" "$HUB_CONFIG/nats.conf"' in setup
    assert dict(named_volume_mounts(services()["setup"]))["hub-config"] == "/var/cifta/hub-config"
    hub_script = (SCRIPTS_DIR / "hub.sh").read_text()
    assert "/var/cifta/hub-config/nats.conf" in hub_script
    assert not cifta_invocations(hub_script)  # it never needs the hub home


def test_node_keys_are_sealed_under_a_passphrase_from_a_secret_not_from_the_repository() -> None:
    compose = load_compose()
    secret = compose["secrets"]["node_key_passphrase"]
    assert secret == {"environment": "CIFTA_NODE_KEY_PASSPHRASE"}
    for name in ("setup", "node-mex", "node-usa", "node-col"):
        assert services()[name]["secrets"] == ["node_key_passphrase"], name
    inits = [parse_cifta(a, w) for w, a in all_cifta_commands() if a[1:3] == ["node", "init"]]
    assert inits and all(a.passphrase_env == "CIFTA_NODE_KEY_PASSPHRASE" for a in inits)
    for script in ("setup.sh", "node.sh"):
        text = (SCRIPTS_DIR / script).read_text()
        assert "/run/secrets/node_key_passphrase" in text, script
        assert "export CIFTA_NODE_KEY_PASSPHRASE" in text, script


def runs(name: str) -> argparse.Namespace:
    svc = services()[name]
    argv = node_run_argv(name, svc) if name.startswith("node") else service_argv(name, svc)
    return parse_cifta(argv, name)


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_every_long_running_service_has_a_healthcheck_that_compiles(name: str) -> None:
    check = services()[name]["healthcheck"]
    assert check["test"][:3] == ["CMD", "python", "-c"]
    compile(check["test"][3], "healthcheck", "exec")
    if name != "hub":  # the others answer /readyz on the --metrics port they are given
        assert "127.0.0.1:9464/readyz" in check["test"][3]
        assert runs(name).metrics == "0.0.0.0:9464"


def test_provisioning_waits_for_jetstream_before_provisioning() -> None:
    text = (SCRIPTS_DIR / "provision.sh").read_text()
    assert text.index("account_info()") < text.index("cifta hub provision")
    assert "deadline" in text  # bounded: it gives up with a message


def test_the_hub_host_port_is_configurable_and_stays_on_loopback() -> None:
    assert list(published_ports(services()["hub"])) == ["127.0.0.1:${CIFTA_HUB_PORT:-4222}:4222"]
