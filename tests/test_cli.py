"""The ``hm-async`` command, run through its installed entry point in subprocesses against
the emulator (started in the test's own event loop, so it keeps serving while the CLI runs),
plus in-process checks of the credential rules and the JSON Lines envelope."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

import pytest

from hm_async import ClientCredentials, PrivateKeyCredentials
from hm_async._cli_config import CliSettings, ExitCode, exit_code_for
from hm_async._cli_poll import ResultWriter, parse_vehicle_lines
from hm_async._credentials import CredentialsError
from hm_async._errors import PermissionDeniedError, TokenRefusedError
from hm_async._poll import PollResult
from hm_async.emulator import Emulator, EmulatorConfig

HM_ASYNC = Path(sys.executable).parent / "hm-async"
pytestmark = pytest.mark.anyio


class Run:
    def __init__(self, code: int, out: bytes, err: bytes) -> None:
        self.code, self.out, self.err = code, out, err.decode()

    @property
    def text(self) -> str:
        return self.out.decode()

    def json(self) -> object:
        return json.loads(self.out)

    def __repr__(self) -> str:  # shown by pytest when an assertion fails
        return f"Run(code={self.code}, out={self.out[:500]!r}, err={self.err[-1500:]!r})"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HM_")}
    env.update(COLUMNS="120", **extra)
    return env


async def cli(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None,
              timeout: float = 60) -> Run:
    proc = await asyncio.create_subprocess_exec(
        str(HM_ASYNC), *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env if env is not None else _env())
    out, err = await asyncio.wait_for(proc.communicate(stdin or b""), timeout)
    assert proc.returncode is not None
    return Run(proc.returncode, out, err)


def _emu_args(emu: Emulator) -> list[str]:
    return ["--base-url", emu.url, "--client-id", emu.client_id]


def _emu_env(emu: Emulator) -> dict[str, str]:
    return _env(HM_CLIENT_SECRET=emu.client_secret)


# -- in-process: credential rules, exit codes, input and output formats ----------------------

def test_credentials_precedence_and_sources(tmp_path: Path) -> None:
    env = {"HM_CLIENT_ID": "env-id", "HM_CLIENT_SECRET": "env-secret"}
    creds, base = CliSettings(environ=env).resolve()
    assert isinstance(creds, ClientCredentials) and creds.client_id == "env-id" and base is None
    creds, _ = CliSettings(client_id="flag-id", environ=env).resolve()
    assert creds.client_id == "flag-id"

    # The emulator's --json line works as a credentials file and carries the base URL.
    emu_line = tmp_path / "emu.json"
    emu_line.write_text(json.dumps({"url": "http://127.0.0.1:9", "client_id": "file-id",
                                    "client_secret": "file-secret", "private_key": "x",
                                    "key_id": "k"}))
    creds, base = CliSettings(credentials_file=str(emu_line), environ=env).resolve()
    assert creds.client_id == "file-id" and base == "http://127.0.0.1:9"
    assert "file-secret" not in repr(CliSettings(client_secret="file-secret"))


async def test_console_key_download_with_client_id_flag(tmp_path: Path) -> None:
    async with Emulator(EmulatorConfig(vehicles=1)) as emu:
        key_file = tmp_path / "key.json"
        key_file.write_text(json.dumps(emu.private_key_json()))
        # A secret in the environment does not mix with the key given on the command line.
        settings = CliSettings(client_id=emu.client_id, private_key_file=str(key_file),
                               environ={"HM_CLIENT_SECRET": "stray"})
        creds, _ = settings.resolve()
        assert isinstance(creds, PrivateKeyCredentials) and creds.key_id == emu.key_id
        via_file = CliSettings(credentials_file=str(key_file), client_id=emu.client_id,
                               environ={}).resolve()[0]
        assert isinstance(via_file, PrivateKeyCredentials)


@pytest.mark.parametrize(("settings", "match"), [
    (CliSettings(environ={}), "no client id"),
    (CliSettings(client_id="a", environ={}), "no secret"),
    (CliSettings(client_id="a", client_secret="s", private_key_file="k", environ={}),
     "keep one"),
    (CliSettings(credentials_file="/nonexistent/creds.json", environ={}), "cannot read"),
])
def test_credential_problems_name_the_fix(settings: CliSettings, match: str) -> None:
    with pytest.raises(CredentialsError, match=match) as info:
        settings.resolve()
    assert exit_code_for(info.value) == ExitCode.AUTH


def test_exit_codes_by_error_kind() -> None:
    refused = TokenRefusedError("no", status_code=400)
    assert exit_code_for(refused) == ExitCode.AUTH
    assert exit_code_for(PermissionDeniedError("no consent", status_code=403)) == ExitCode.API
    assert exit_code_for(ValueError("bad vin")) == ExitCode.USAGE


def test_vehicle_lines_plain_csv_and_comments() -> None:
    lines = ["# fleet", "", "wbaemu00000000001", "WDDEMU00000000001,mercedes-benz",
             "WVWEMU00000000001 ; volkswagen"]
    assert list(parse_vehicle_lines(lines, brand="bmw")) == [
        ("WBAEMU00000000001", "bmw"), ("WDDEMU00000000001", "mercedes-benz"),
        ("WVWEMU00000000001", "volkswagen")]
    csv_lines = ["plate,brand,vin", "X1,bmw,WBAEMU00000000001", "X2,,WBAEMU00000000002"]
    assert list(parse_vehicle_lines(csv_lines)) == [("WBAEMU00000000001", "bmw"),
                                                    "WBAEMU00000000002"]


def test_jsonl_embeds_the_raw_body_on_one_line() -> None:
    buf = __import__("io").BytesIO()
    writer = ResultWriter(buf)
    pretty = b'{\n  "vin": "WBAEMU00000000001",\n  "x": [1, 2]\n}'
    writer.write(PollResult(vin="WBAEMU00000000001", brand="bmw", raw=pretty,
                            data=None))  # data unused by the writer
    writer.write(PollResult(vin="WBAEMU00000000002", brand="bmw", error=PermissionDeniedError(
        "HTTP 403", status_code=403, request_id="r1")))
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2
    ok = json.loads(lines[0])
    # issue 16 point 2: each line carries the request id (None here: no decoded data)
    assert ok == {"vin": "WBAEMU00000000001", "brand": "bmw", "ok": True, "request_id": None,
                  "data": {"vin": "WBAEMU00000000001", "x": [1, 2]}}
    assert json.loads(lines[1])["error"] == {"type": "PermissionDeniedError", "status": 403,
                                             "message": "HTTP 403", "request_id": "r1"}


def test_missing_cli_extra_gives_a_one_line_hint(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from hm_async import cli

    monkeypatch.delitem(sys.modules, "hm_async._cli_app", raising=False)
    monkeypatch.setitem(sys.modules, "typer", None)
    assert cli.main(["--help"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'hm-async[cli]'" in err


# -- through the real entry point ----------------------------------------------------------

async def test_demo_shows_progress_summary_and_says_it_was_the_emulator(tmp_path: Path) -> None:
    out = tmp_path / "demo.jsonl"
    run = await cli("demo", "--vehicles", "240", "--seed", "1", "-o", str(out))
    assert run.code == 0, run
    assert "Demo poll summary" in run.text and "built-in emulator" in run.text
    # Issue 13.10: the header counts what the bar counts (the fleet plus two extra VINs).
    assert "polling 242 VINs" in run.text and "240 vehicles of the fleet" in run.text
    assert "VIN/s" in run.text
    assert "PermissionDenied" in run.text and "NotCleared×2" in run.text
    assert "retries" in run.err + run.text
    lines = [json.loads(line) for line in out.read_bytes().splitlines()]
    assert len(lines) == 242 and len({r["vin"] for r in lines}) == 242
    assert sum(r["ok"] for r in lines) >= 225


async def test_poll_file_to_jsonl_partial_failure_and_stdin() -> None:
    cfg = EmulatorConfig(vehicles=30, no_consent_fraction=0.05, fault_rate=0.1, seed=2)
    async with Emulator(cfg) as emu:
        no_consent = set(emu.special_vins["no_consent"])
        rows = ["vin,brand"] + [f"{v.vin},{v.brand}" for v in emu.vehicles] + ["NOTAVIN,bmw"]
        good = [v.vin for v in emu.vehicles if v.vin not in no_consent][:5]
        first, second = await asyncio.gather(
            cli(*_emu_args(emu), "poll", "--no-progress", stdin="\n".join(rows).encode(),
                env=_emu_env(emu)),
            cli(*_emu_args(emu), "poll", "-", "--concurrency", "2",
                stdin="\n".join(good).encode(), env=_emu_env(emu)),
        )
        assert first.code == ExitCode.PARTIAL_FAILURE, first
        results = {r["vin"]: r for r in map(json.loads, first.out.splitlines())}
        assert len(results) == 31
        for vin in no_consent:
            assert results[vin]["error"]["type"] == "PermissionDeniedError"
            assert results[vin]["error"]["status"] == 403
        assert results["NOTAVIN"]["error"]["type"] == "InvalidVehicleError"
        sample = emu.vehicles[-1]
        assert results[sample.vin]["ok"] and results[sample.vin]["data"]["vin"] == sample.vin
        assert "Poll summary" in first.err and "PermissionDenied" in first.err
        assert "HTTP calls" in first.err and "token request" in first.err
        # the age of the data HM handed on, over the answers (issue 16.3)
        answered = sum(r["ok"] for r in results.values())
        summary = " ".join(first.err.split())
        pattern = (rf"data age \(newest property per vehicle\): median \S+( \S+)? · p90 "
                   rf"\S+( \S+)? · oldest \S+( \S+)? \({answered} vehicles\)")
        assert re.search(pattern, summary), summary

        assert second.code == 0, second
        assert sorted(json.loads(x)["vin"] for x in second.out.splitlines()) == sorted(good)
        assert "polling" in second.err and f"{len(good)}/{len(good)}" in second.err


async def test_poll_writes_output_file_and_rejects_bad_rate_limit(tmp_path: Path) -> None:
    async with Emulator(EmulatorConfig(vehicles=8)) as emu:
        src = tmp_path / "vins.txt"
        src.write_text("\n".join(v.vin for v in emu.vehicles))
        dest = tmp_path / "out.jsonl"
        ok, bad = await asyncio.gather(
            cli(*_emu_args(emu), "poll", str(src), "-o", str(dest), "--rate-limit", "bmw=5",
                env=_emu_env(emu)),
            cli(*_emu_args(emu), "poll", str(src), "--rate-limit", "bmw", env=_emu_env(emu)),
        )
        assert ok.code == 0 and ok.out == b"", ok
        assert len(dest.read_bytes().splitlines()) == 8
        assert bad.code == ExitCode.USAGE and "BRAND=REQUESTS_PER_SECOND" in bad.err, bad


async def test_token_eligibility_data_and_clearance_commands() -> None:
    async with Emulator(EmulatorConfig(vehicles=4, approve_delay=0.2)) as emu:
        vin, brand = emu.vehicles[0].vin, emu.vehicles[0].brand
        new_vin = "VF112345678901234"  # a brand outside the fleet: the list below stays exact
        args, env = _emu_args(emu), _emu_env(emu)
        token, token_json, elig, data, listed, requested = await asyncio.gather(
            cli(*args, "token", env=env),
            cli(*args, "token", "--json", "--show-token", env=env),
            cli(*args, "eligibility", vin, brand, env=env),
            cli(*args, "data", vin.lower(), env=env),
            cli(*args, "clearance", "list", "--brand", brand, "--status", "approved", env=env),
            cli(*args, "clearance", "request", new_vin, "renault", "--tag", "team=north",
                env=env),
        )
        assert token.code == 0, token
        assert "fleet:clearance" in token.text and "expires_in" in token.text
        info = token_json.json()
        assert isinstance(info, dict) and info["expires_in"] > 200
        assert info["access_token"].count(".") == 2  # a JWT, only because it was asked for
        assert info["access_token"] not in token.text
        assert elig.code == 0 and elig.json()["vin"] == vin, elig  # type: ignore[index]
        assert data.code == 0, data
        assert data.out.count(b"\n") > 10  # pretty-printed
        assert data.json()["vin"] == vin  # type: ignore[index]
        assert listed.code == 0 and {c["vin"] for c in listed.json()} == {vin}, listed  # type: ignore[union-attr]
        assert requested.code == 0, requested
        assert requested.json() == [{"vin": new_vin, "status": "pending", "description": None,
                                     "tags": {"team": "north"}}]
        await asyncio.sleep(0.3)
        got = await cli(*args, "clearance", "get", new_vin, env=env)
        assert got.code == 0 and got.json()["status"] == "approved", got  # type: ignore[index]
        deleted = await cli(*args, "clearance", "delete", new_vin, env=env)
        assert deleted.code == 0 and deleted.json()["status"] == "revoking", deleted  # type: ignore[index]
        refused = await cli(*args, "clearance", "delete", new_vin, env=env)
        assert refused.code == ExitCode.API and "409" in refused.err, refused
        assert refused.err.count("\n") == 1 and "Traceback" not in refused.err


async def test_usage_and_auth_failures_have_distinct_codes(tmp_path: Path) -> None:
    async with Emulator(EmulatorConfig(vehicles=2)) as emu:
        vin = emu.vehicles[0].vin
        src = tmp_path / "vins.txt"
        src.write_text(vin + "\n")
        wrong = _env(HM_CLIENT_SECRET="wrong-" + emu.client_secret)
        bad_vin, no_cmd, wrong_secret, poll_refused, no_creds = await asyncio.gather(
            cli(*_emu_args(emu), "data", "NOT-A-VIN", env=_emu_env(emu)),
            cli("frobnicate"),
            cli(*_emu_args(emu), "token", env=wrong),
            cli(*_emu_args(emu), "poll", str(src), env=wrong),
            cli("--base-url", emu.url, "token"),
        )
    assert bad_vin.code == ExitCode.USAGE and "is not a VIN" in bad_vin.err, bad_vin
    assert no_cmd.code == ExitCode.USAGE, no_cmd
    for run in (wrong_secret, poll_refused, no_creds):
        assert run.code == ExitCode.AUTH, run
        assert "Traceback" not in run.err and emu.client_secret not in run.err
    assert "no client id" in no_creds.err
    assert poll_refused.out == b""  # refused before any VIN was tried


async def test_emulator_command_and_its_credentials_file(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        str(HM_ASYNC), "emulator", "--port", "0", "--json", "--vehicles", "3",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=_env())
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        announced = json.loads(line)
        creds = tmp_path / "emu.json"
        creds.write_bytes(line)
        run = await cli("--credentials", str(creds), "data", announced["vehicles"][0]["vin"])
        assert run.code == 0 and run.json()["vin"] == announced["vehicles"][0]["vin"], run  # type: ignore[index]
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
    assert proc.returncode == 0  # SIGTERM is a clean stop


async def test_help_everywhere_lists_examples_and_exit_codes() -> None:
    runs = await asyncio.gather(*(cli(*cmd, "--help") for cmd in (
        (), ("poll",), ("clearance",), ("token",), ("demo",))),
        cli("emulator", "--help"))
    top, poll_help, clearance_help, token_help, demo_help, emulator_help = runs
    assert all(r.code == 0 for r in runs), runs
    assert "Exit codes" in top.text and "3 authentication" in top.text
    assert "hm-async demo" in top.text
    assert "Examples" in poll_help.text and "--rate-limit" in poll_help.text
    assert "clearance request" in clearance_help.text
    assert "--show-token" in token_help.text and "--vehicles" in demo_help.text
    assert "--fault-rate" in emulator_help.text
    version = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hm_async", "--version", stdout=asyncio.subprocess.PIPE)
    out, _ = await version.communicate()
    assert version.returncode == 0 and out.startswith(b"hm-async ")

