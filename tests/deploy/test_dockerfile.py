"""The Dockerfile, checked by reading it: this machine has no Docker engine to build it.

A small parser turns the Dockerfile into stages of (instruction, arguments); the tests
assert the properties the image promises (multi-stage, lock-file install, non-root,
read-only friendly, exec-form entrypoint) and cross-check them with pyproject.toml, the
Makefile and the chart's defaults.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from typing import Any

import pytest
import yaml

from .chart import CHART, REPO
from .dockerfile import DOCKERIGNORE, Instruction, Stage, parse_dockerfile, read_dockerfile


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    return read_dockerfile()


@pytest.fixture(scope="module")
def build(dockerfile: tuple[dict[str, str], list[Stage]]) -> Stage:
    return dockerfile[1][0]


@pytest.fixture(scope="module")
def runtime(dockerfile: tuple[dict[str, str], list[Stage]]) -> Stage:
    return dockerfile[1][-1]


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def chart_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return values


def test_parser_reads_continuations_and_exec_form() -> None:
    _, stages = parse_dockerfile(
        'ARG X=1\nFROM a AS b\n# note\nRUN one \\\n  # inside\n  two\nCMD ["x", "y"]\n'
    )
    assert [(s.base, s.name) for s in stages] == [("a", "b")]
    assert stages[0].all("RUN")[0].args == "one two"
    assert stages[0].last("CMD").exec_form() == ["x", "y"]
    assert Instruction("CMD", "x y").exec_form() is None


def test_multi_stage_from_one_python_311_slim_base(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    global_args, stages = dockerfile
    assert len(stages) >= 2
    assert stages[0].name, "the build stage is named so the runtime can copy from it"
    # Same base for both: the venv's interpreter path must exist in the runtime image.
    assert stages[0].base == stages[-1].base
    base = stages[-1].base
    if base.startswith("${"):
        base = global_args[base.strip("${}")]
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?(@sha256:[0-9a-f]{64})?", base), base


def test_build_stage_installs_the_lock_with_the_pinned_uv(build: Stage) -> None:
    makefile = (REPO / "Makefile").read_text()
    (uv_version,) = re.findall(r"^UV_VERSION := (\S+)$", makefile, flags=re.MULTILINE)
    uv_arg = [i.args for i in build.all("ARG") if i.args.startswith("UV_VERSION=")]
    assert uv_arg == [f"UV_VERSION={uv_version}"], "the image's uv must match the Makefile's"
    assert any('"uv==${UV_VERSION}"' in i.args for i in build.all("RUN"))

    syncs = [i.args for i in build.all("RUN") if "uv sync" in i.args]
    assert syncs, "the build stage installs with uv sync"
    for sync in syncs:
        for flag in ("--frozen", "--no-dev", "--no-editable"):
            assert flag in sync.split(), f"{flag} missing in: {sync}"
    # The lock is in the build context before the first sync.
    first_sync = build.instructions.index(next(i for i in build.all("RUN") if "uv sync" in i.args))
    copied_before = " ".join(i.args for i in build.instructions[:first_sync] if i.keyword == "COPY")
    assert "uv.lock" in copied_before.split()
    assert "pyproject.toml" in copied_before.split()
    assert build.env()["UV_COMPILE_BYTECODE"] == "1", "no .pyc writes on a read-only root"


def test_build_context_has_what_the_project_build_needs(
    build: Stage, pyproject: dict[str, Any]
) -> None:
    copied = {
        source.rstrip("/")
        for instruction in build.all("COPY")
        if "--from" not in instruction.args
        for source in instruction.args.split()[:-1]
        if not source.startswith("--")
    }
    needed = {"pyproject.toml", "uv.lock", pyproject["project"]["readme"]}
    needed |= set(pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"])
    assert needed <= copied, f"not copied into the build stage: {needed - copied}"
    for source in copied:
        assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"
        assert not dockerignored(source), f"COPY {source} is excluded by .dockerignore"


def dockerignored(path: str) -> bool:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return any(
        fnmatch.fnmatch(path, pattern.removeprefix("**/")) or path.startswith(f"{pattern}/")
        for pattern in patterns
    )


def test_dockerignore_keeps_environments_and_secrets_out() -> None:
    for path in (".venv", ".git", ".cache", ".data", "tests", "node_modules", "prod.env"):
        assert dockerignored(path), f"{path} would be sent to the Docker daemon"


def test_runtime_stage_holds_only_the_venv(build: Stage, runtime: Stage) -> None:
    from_build = [i.args for i in runtime.all("COPY") if "--from=" in i.args]
    assert from_build == [f"--from={build.name} /app/.venv /app/.venv"]
    assert not [i for i in runtime.all("COPY") if "--from=" not in i.args]
    assert not [i for i in runtime.all("RUN") if re.search(r"\b(uv|pip)\b", i.args)]
    assert runtime.env()["PATH"].startswith("/app/.venv/bin:")


def test_runtime_runs_as_a_numeric_non_root_user(runtime: Stage, chart_values: Any) -> None:
    user = runtime.last("USER").args
    assert runtime.instructions[-1].keyword in {"CMD", "ENTRYPOINT"} or all(
        i.keyword != "RUN"
        for i in runtime.instructions[runtime.instructions.index(runtime.last("USER")) :]
    )
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), "USER must be numeric so runAsNonRoot can check it"
    assert gid.isdigit()
    assert int(uid) > 0
    assert int(gid) > 0
    assert chart_values["podSecurityContext"]["runAsUser"] == int(uid)
    assert chart_values["securityContext"]["runAsUser"] == int(uid)
    assert chart_values["podSecurityContext"]["fsGroup"] == int(gid)


def test_runtime_environment_and_ports_match_the_chart(runtime: Stage, chart_values: Any) -> None:
    env = runtime.env()
    assert env["GATEWAY_HTTP_HOST"] == "0.0.0.0"
    assert env["GATEWAY_DATA_DIR"] == "/data"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert runtime.last("VOLUME").exec_form() == ["/data"]
    exposed = {int(port) for i in runtime.all("EXPOSE") for port in i.args.split()}
    ports = chart_values["containerPorts"]
    assert exposed == {ports["http"], ports["metrics"]} == {8080, 9090}
    assert int(env["GATEWAY_HTTP_PORT"]) == ports["http"]
    assert int(env["GATEWAY_METRICS_PORT"]) == ports["metrics"]


def test_pid_1_is_the_gateway_in_exec_form(runtime: Stage, pyproject: dict[str, Any]) -> None:
    entrypoint = runtime.last("ENTRYPOINT").exec_form()
    cmd = runtime.last("CMD").exec_form()
    assert entrypoint is not None, "shell-form ENTRYPOINT puts /bin/sh at PID 1"
    assert cmd is not None
    assert entrypoint + cmd == ["gateway", "serve"]
    assert "gateway" in pyproject["project"]["scripts"]
    assert runtime.last("STOPSIGNAL").args == "SIGTERM"
