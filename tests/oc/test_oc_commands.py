"""`gateway oc login` and `gateway oc check` as real processes against the simulator.

The test plays the browser against the login's authorize URL, as a user would; then the
check (and so the gateway's client) runs from what the login stored, with no
GATEWAY_OC_REFRESH_TOKEN. Tokens appear on no output except the Secret manifest.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
from asyncio.subprocess import PIPE, Process
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import kubernetes_validate
import pytest
import yaml

from gateway.oc.tokens import fingerprint
from gateway.simulator.auth import BOOTSTRAP_REFRESH_TOKEN
from schemas.oc_api import TokenRequest
from tests.processes import GATEWAY
from tests.simulation import Sim

from .conftest import CLIENT_KEY, SECRET_KEY

pytestmark = pytest.mark.slow

DEADLINE_S = 60.0
ELSEWHERE = "https://erp.example/oc/callback"


def cli_env(sim: Sim, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a user pointed at the simulator: no other GATEWAY_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return env | {
        "GATEWAY_OC_BASE_URL": sim.url,
        "GATEWAY_OC_CLIENT_KEY": CLIENT_KEY,
        "GATEWAY_OC_SECRET_KEY": SECRET_KEY,
        "GATEWAY_DATA_DIR": str(data_dir),
        **extra,
    }


@dataclass
class Finished:
    code: int
    stdout: str
    stderr: str


class LoginProcess:
    """A running `gateway oc login`."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.stderr_lines: list[str] = []

    @classmethod
    async def start(cls, env: Mapping[str, str], *args: str) -> LoginProcess:
        process = await asyncio.create_subprocess_exec(
            GATEWAY, "oc", "login", *args, env=dict(env), stdin=PIPE, stdout=PIPE, stderr=PIPE
        )
        return cls(process)

    async def authorize_url(self) -> str:
        """The authorize URL, once the login has printed it."""
        assert self.process.stderr is not None
        async with asyncio.timeout(DEADLINE_S):
            while True:
                line = (await self.process.stderr.readline()).decode()
                if not line:
                    raise AssertionError("login exited early:\n" + "".join(self.stderr_lines))
                self.stderr_lines.append(line)
                if "/oauth/authorize?" in line:
                    return line.strip()

    async def paste(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text.encode() + b"\n")
        await self.process.stdin.drain()

    async def finish(self) -> Finished:
        async with asyncio.timeout(DEADLINE_S):
            out, err = await self.process.communicate()
        assert self.process.returncode is not None
        return Finished(
            self.process.returncode, out.decode(), "".join(self.stderr_lines) + err.decode()
        )


async def run_check(env: Mapping[str, str]) -> Finished:
    process = await asyncio.create_subprocess_exec(
        GATEWAY, "oc", "check", env=dict(env), stdout=PIPE, stderr=PIPE
    )
    async with asyncio.timeout(DEADLINE_S):
        out, err = await process.communicate()
    assert process.returncode is not None
    return Finished(process.returncode, out.decode(), err.decode())


async def follow(browser: httpx.AsyncClient, authorize_url: str) -> httpx.URL:
    response = await browser.get(authorize_url)
    assert response.status_code == 302, response.text
    return httpx.URL(response.headers["location"])


async def test_login_stores_the_token_and_the_check_runs_from_the_store(
    sim: Sim, tmp_path: Path
) -> None:
    env = cli_env(sim, tmp_path / "data")
    login = await LoginProcess.start(env)
    async with httpx.AsyncClient(timeout=DEADLINE_S) as browser:
        location = await follow(browser, await login.authorize_url())
        page = await browser.get(location)
    done = await login.finish()
    assert done.code == 0, done.stderr
    assert page.status_code == 200
    store = tmp_path / "data" / "oc-token.json"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    stored = json.loads(store.read_text())
    token = stored["refresh_token"]
    assert stored["seed"] == fingerprint(token)
    assert done.stdout == ""
    assert token not in done.stderr
    assert location.params["code"] not in done.stderr
    assert f"OC's refresh token is in {store}" in done.stderr

    checked = await run_check(env)
    assert checked.code == 0, checked.stdout + checked.stderr
    assert f"refresh token from the token store {store}" in checked.stdout
    assert "All 4 API families answered." in checked.stdout
    assert token not in checked.stdout + checked.stderr
    assert await sim.count("oauth_token", "ok_refresh_token") == 1


async def test_print_secret_prints_a_valid_secret_and_stores_nothing(
    sim: Sim, tmp_path: Path
) -> None:
    env = cli_env(sim, tmp_path / "data")
    login = await LoginProcess.start(
        env, "--print-secret", "--secret-name", "ocgw-oc-oauth", "--namespace", "integrations"
    )
    async with httpx.AsyncClient(timeout=DEADLINE_S) as browser:
        await browser.get(await follow(browser, await login.authorize_url()))
    done = await login.finish()
    assert done.code == 0, done.stderr
    manifest = yaml.safe_load(done.stdout)
    kubernetes_validate.validate(manifest, "1.27.0", strict=True)
    assert manifest["metadata"]["name"] == "ocgw-oc-oauth"
    assert manifest["metadata"]["namespace"] == "integrations"
    token = base64.b64decode(manifest["data"]["GATEWAY_OC_REFRESH_TOKEN"]).decode()
    assert token not in done.stderr
    assert not (tmp_path / "data").exists()
    async with httpx.AsyncClient(timeout=DEADLINE_S) as oc:
        refresh = TokenRequest.refresh(CLIENT_KEY, token)
        answer = await oc.post(sim.url + "/oauth/token", params=refresh.to_query())
    assert answer.status_code == 200  # the printed token is the grant's


async def test_a_redirect_address_pasted_on_stdin_completes_the_login(
    sim: Sim, tmp_path: Path
) -> None:
    env = cli_env(sim, tmp_path / "data")
    login = await LoginProcess.start(env, "--redirect-uri", ELSEWHERE)
    async with httpx.AsyncClient(timeout=DEADLINE_S) as browser:
        location = await follow(browser, await login.authorize_url())
    assert str(location).startswith(ELSEWHERE)
    await login.paste("not the address")
    await login.paste(str(location))
    done = await login.finish()
    assert done.code == 0, done.stderr
    assert "paste the whole address" in done.stderr
    assert (tmp_path / "data" / "oc-token.json").exists()


async def test_a_forged_redirect_fails_the_login_and_stores_nothing(
    sim: Sim, tmp_path: Path
) -> None:
    env = cli_env(sim, tmp_path / "data")
    login = await LoginProcess.start(env)
    async with httpx.AsyncClient(timeout=DEADLINE_S) as browser:
        location = await follow(browser, await login.authorize_url())
        page = await browser.get(location.copy_set_param("state", "forged"))
    done = await login.finish()
    assert done.code == 1
    assert page.status_code == 400
    assert "gateway oc login failed: the redirect's state is not this login's" in done.stderr
    assert not (tmp_path / "data" / "oc-token.json").exists()
    assert await sim.count("oauth_token") == 0


async def test_no_browser_within_the_timeout_fails_the_login(sim: Sim, tmp_path: Path) -> None:
    login = await LoginProcess.start(cli_env(sim, tmp_path / "data"), "--timeout", "0.5")
    await login.authorize_url()
    done = await login.finish()
    assert done.code == 1
    assert "no redirect from OC within 0.5 s" in done.stderr


async def test_a_login_with_a_configured_refresh_token_warns_that_it_wins(
    sim: Sim, tmp_path: Path
) -> None:
    env = cli_env(sim, tmp_path / "data", GATEWAY_OC_REFRESH_TOKEN=BOOTSTRAP_REFRESH_TOKEN)
    login = await LoginProcess.start(env)
    async with httpx.AsyncClient(timeout=DEADLINE_S) as browser:
        await browser.get(await follow(browser, await login.authorize_url()))
    done = await login.finish()
    assert done.code == 0
    assert "Warning: GATEWAY_OC_REFRESH_TOKEN is set to another token" in done.stderr


async def test_the_check_exits_non_zero_and_names_the_failing_family(
    sim: Sim, tmp_path: Path
) -> None:
    env = cli_env(sim, tmp_path / "data", GATEWAY_OC_REFRESH_TOKEN=BOOTSTRAP_REFRESH_TOKEN)
    await sim.faults(endpoints=["return_stock"], success_false_rate=1.0)
    checked = await run_check(env)
    assert checked.code == 1
    lines = {line.split("  ")[0]: line for line in checked.stdout.splitlines()}
    assert " FAIL " in lines["return stock"]
    assert "5A0001 System busy, please try again later" in lines["return stock"]
    assert " OK " in lines["order query"]
    assert "1 of 4 API families failed." in checked.stdout


async def test_the_check_shows_a_bad_key_pair(sim: Sim, tmp_path: Path) -> None:
    env = cli_env(
        sim,
        tmp_path / "data",
        GATEWAY_OC_REFRESH_TOKEN=BOOTSTRAP_REFRESH_TOKEN,
        GATEWAY_OC_SECRET_KEY="rotated-at-oc-but-not-here",
    )
    checked = await run_check(env)
    assert checked.code == 1
    assert checked.stdout.count("vAuthorization signature verification failed") == 4
    assert "4 of 4 API families failed." in checked.stdout


@pytest.mark.parametrize("command", ["login", "check"])
async def test_without_an_oc_host_the_commands_say_what_to_set(
    sim: Sim, tmp_path: Path, command: str
) -> None:
    env = cli_env(sim, tmp_path / "data", GATEWAY_OC_BASE_URL="")
    process = await asyncio.create_subprocess_exec(
        GATEWAY, "oc", command, env=env, stdin=PIPE, stdout=PIPE, stderr=PIPE
    )
    async with asyncio.timeout(DEADLINE_S):
        out, err = await process.communicate()
    assert process.returncode == 2
    assert "GATEWAY_OC_BASE_URL" in err.decode()
    assert out == b""
