"""``hm-async`` as a new user meets it (issue 13 points 3-8 and 10): no tracebacks, errors in
the CLI's language, verbosity, global options anywhere, polls that lose nothing and bill
nothing twice, the emulator command, and a demo whose numbers agree. Every CLI behaviour
runs the installed entry point in a subprocess against an emulator in this process."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import sys
from pathlib import Path

import pytest
import trustme
from cli_runner import HM_ASYNC, clean_env, cli, emu_args, emu_env, one_error_line, start

from hm_async._cli_config import ExitCode
from hm_async.emulator import Emulator, EmulatorConfig

pytestmark = pytest.mark.anyio


def _vin_file(tmp_path: Path, emu: Emulator, name: str = "vins.txt") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(v.vin for v in emu.vehicles) + "\n")
    return path


# -- 13.3 no traceback, ever -----------------------------------------------------------------

async def test_bad_vins_in_clearance_request_are_one_line_usage_errors(tmp_path: Path) -> None:
    async with Emulator(EmulatorConfig(vehicles=1)) as emu:
        bad_line = tmp_path / "bad.csv"
        bad_line.write_text("WBAEMU00000000001,bmw\nWBA-NOT-A-VIN,bmw\n")
        extra = tmp_path / "extra.csv"
        extra.write_text("WBAEMU00000000001,bmw\nWBAEMU00000000002 extra words\n")
        args, env = emu_args(emu), emu_env(emu)
        runs = await asyncio.gather(
            cli(*args, "clearance", "request", "NOTAVIN", "bmw", env=env),
            cli(*args, "clearance", "request", "--from-file", str(bad_line), env=env),
            cli(*args, "clearance", "request", "--from-file", str(extra), env=env),
            cli(*args, "clearance", "request", "WBAEMU00000000009", "bmv", env=env),
        )
        before = emu.stats.count(route="clearance")
    arg, from_file, extra_words, typo = runs
    for run in runs:
        assert run.code == ExitCode.USAGE and one_error_line(run), run
    assert "VIN 'NOTAVIN' is not a VIN" in arg.err
    assert f"{bad_line} line 2: vin 'WBA-NOT-A-VIN' is not a VIN" in from_file.err
    assert f"{extra} line 2: expected VIN or VIN,BRAND, got 3 fields" in extra_words.err
    assert "did you mean 'bmw'" in typo.err
    assert before == 0  # refused before any request


async def test_non_utf8_and_binary_vin_files_name_the_problem(tmp_path: Path) -> None:
    latin = tmp_path / "latin1.txt"
    latin.write_bytes(b"WBAEMU00000000001\nWBAEMU0000000000\xe9\n")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(bytes(range(256)) * 4)
    async with Emulator(EmulatorConfig(vehicles=1)) as emu:
        args, env = emu_args(emu), emu_env(emu)
        runs = await asyncio.gather(
            cli(*args, "poll", str(latin), env=env),
            cli(*args, "poll", str(binary), env=env),
            cli(*args, "clearance", "request", "--from-file", str(latin), env=env),
            cli(*args, "poll", "-", stdin=b"\xff\xfe\x00W\x00", env=env),
        )
    for run in runs:
        assert run.code == ExitCode.USAGE and one_error_line(run), run
    assert f"{latin} line 2 is not UTF-8 text (byte 0xe9 at column 17)" in runs[0].err
    assert f"{binary} is not a text file" in runs[1].err
    assert "line 2 is not UTF-8" in runs[2].err and "stdin is not a text file" in runs[3].err


async def test_a_full_disk_mid_poll_is_one_line_with_its_own_exit_code(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.fail("this test needs /dev/full (Linux)")
    async with Emulator(EmulatorConfig(vehicles=40)) as emu:
        run = await cli(*emu_args(emu), "poll", str(_vin_file(tmp_path, emu)), "-o",
                        "/dev/full", "--no-progress", env=emu_env(emu))
    assert run.code == ExitCode.OUTPUT == 5 and one_error_line(run), run
    assert "cannot write /dev/full: no space left on device" in run.err


async def test_a_closed_pipe_stops_the_poll_with_one_line(tmp_path: Path) -> None:
    async with Emulator(EmulatorConfig(vehicles=300, latency=0.01)) as emu:
        # exactly what a user types: hm-async poll vins.txt | head -1
        script = '"$0" "$@" | head -1; exit "${PIPESTATUS[0]}"'
        proc = await asyncio.create_subprocess_exec(
            "bash", "-c", script, str(HM_ASYNC), *emu_args(emu), "poll",
            str(_vin_file(tmp_path, emu)), "--no-progress", stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=emu_env(emu))
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        polled = emu.stats.count(route="vehicle_data")
    text = err.decode()
    assert json.loads(out)["vin"]  # head got its one line
    assert proc.returncode == ExitCode.BROKEN_PIPE == 141, text
    assert text.count("\n") == 1 and "Traceback" not in text and "Exception ignored" not in text
    assert "cannot write stdout: the reader closed the pipe" in text
    assert polled < 300  # it stopped instead of polling the rest for nobody


# -- 13.4 -v and -vv -------------------------------------------------------------------------

async def test_verbose_shows_retries_and_token_refreshes_and_vv_each_request(
        tmp_path: Path) -> None:
    cfg = EmulatorConfig(vehicles=40, token_lifetime=1.0, latency=0.05)
    async with Emulator(cfg) as emu:
        vins = _vin_file(tmp_path, emu)
        args, env = emu_args(emu), emu_env(emu)
        runs = []
        for flags in ((), ("-v",), ("-vv",)):
            emu.script_faults("vehicle_data", [503, 503])
            runs.append(await cli(*args, *flags, "poll", str(vins), "--no-progress",
                                  "--concurrency", "2", "-o", str(tmp_path / "o.jsonl"),
                                  env=env))
    quiet, v, vv = runs
    for run in runs:
        assert run.code == 0, run
    assert "retry" not in quiet.err and "token issued" not in quiet.err
    assert re.search(r"DEBUG hm_async: retry method=GET .* reason=", v.err), v
    assert "token issued generation=1" in v.err and "token issued generation=2" in v.err, v
    assert "request method=" not in v.err
    assert re.search(r"request method=GET path=/v1/vehicle-data/autoapi-13/\w{17} status=200",
                     vv.err), vv
    assert "retry method=GET" in vv.err and emu.client_secret not in v.err + vv.err


# -- 13.5 global options after the command ------------------------------------------------------

async def test_global_options_work_after_the_command(tmp_path: Path) -> None:
    async with Emulator(EmulatorConfig(vehicles=2)) as emu:
        creds = tmp_path / "emu.json"
        creds.write_text(json.dumps({"url": emu.url, "client_id": emu.client_id,
                                     "client_secret": emu.client_secret}))
        vin = emu.vehicles[0].vin
        data, token, listed = await asyncio.gather(
            cli("data", vin, "--credentials", str(creds)),
            cli("token", f"--base-url={emu.url}", "--client-id", emu.client_id, "-v",
                env=emu_env(emu)),
            cli("clearance", "list", "--vin", vin, "--credentials", str(creds)),
        )
    assert data.code == 0 and data.json()["vin"] == vin, data  # type: ignore[index]
    assert token.code == 0 and "expires_in" in token.text and "token issued" in token.err, token
    assert listed.code == 0 and [c["vin"] for c in listed.json()] == [vin], listed  # type: ignore[union-attr]


# -- 13.6 polls lose nothing and bill nothing twice ---------------------------------------------

async def test_duplicates_are_polled_once_and_extra_words_are_that_lines_error(
        tmp_path: Path) -> None:
    async with Emulator(EmulatorConfig(vehicles=6)) as emu:
        vins = [v.vin for v in emu.vehicles]
        src = tmp_path / "vins.txt"
        src.write_text("\n".join([*vins[:5], vins[0], vins[1].lower(), f" {vins[2]} ",
                                  f"{vins[5]} extra words"]) + "\n")
        run = await cli(*emu_args(emu), "poll", str(src), "--no-progress", env=emu_env(emu))
        requests = emu.stats.count(route="vehicle_data")
    assert run.code == ExitCode.PARTIAL_FAILURE, run
    lines = run.lines()
    assert sorted(str(r["vin"]) for r in lines) == sorted(vins)
    bad = [r for r in lines if not r["ok"]]
    assert len(bad) == 1 and bad[0]["vin"] == vins[5]
    assert bad[0]["error"]["type"] == "InvalidVehicleError"  # type: ignore[index]
    assert "line 9: expected VIN or VIN,BRAND" in bad[0]["error"]["message"]  # type: ignore[index]
    assert requests == 5  # each good VIN once; the bad line cost nothing
    assert "3 duplicate line(s) skipped" in run.err


async def test_interrupted_poll_resumes_with_every_vin_exactly_once(tmp_path: Path) -> None:
    n = 3000
    cfg = EmulatorConfig(vehicles=n, latency=(0.01, 0.03), failure_fraction=0.0)
    async with Emulator(cfg) as emu:
        src = _vin_file(tmp_path, emu)
        out = tmp_path / "out.jsonl"
        args = [*emu_args(emu), "poll", str(src), "-o", str(out), "--no-progress",
                "--concurrency", "16"]
        proc = await start(*args, env=emu_env(emu))
        while emu.stats.count(route="vehicle_data") < 500:
            assert proc.returncode is None, "the poll ended before it could be interrupted"
            await asyncio.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        first_err = err.decode()
        assert proc.returncode == ExitCode.INTERRUPTED == 130, first_err
        first = [json.loads(line) for line in out.read_bytes().splitlines()]  # all complete
        assert 500 <= len(first) < n
        assert "Poll summary" in first_err and "Traceback" not in first_err
        assert f"interrupted: {n - len(first):,} VIN(s) not polled" in first_err
        assert "--resume" in first_err
        # Every request sent so far was answered and written: nothing is billed twice.
        assert emu.stats.count(route="vehicle_data") == len(first)

        second = await cli(*args, "--resume", env=emu_env(emu), timeout=90)
        assert second.code == 0, second
        assert f"{len(first):,} VIN(s) already in the output" in second.err
        requests = emu.stats.count(route="vehicle_data")
    written = [json.loads(line)["vin"] for line in out.read_bytes().splitlines()]
    assert len(written) == n and set(written) == {v.vin for v in emu.vehicles}
    assert requests == n


async def test_sigterm_mid_poll_flushes_and_reports_what_was_left(tmp_path: Path) -> None:
    async with Emulator(EmulatorConfig(vehicles=400, latency=0.05)) as emu:
        out = tmp_path / "out.jsonl"
        proc = await start(*emu_args(emu), "poll", str(_vin_file(tmp_path, emu)), "-o",
                           str(out), "--no-progress", "--concurrency", "4", env=emu_env(emu))
        while emu.stats.count(route="vehicle_data") < 20:
            await asyncio.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    text = err.decode()
    assert proc.returncode == 130, text
    lines = out.read_bytes().splitlines()
    assert all(json.loads(line)["vin"] for line in lines)
    assert f"interrupted: {400 - len(lines):,} VIN(s) not polled" in text


async def test_poll_help_documents_completion_order_and_resume() -> None:
    run = await cli("poll", "--help")
    assert run.code == 0
    text = " ".join(run.text.split())
    assert "in completion order (not input order)" in text and "--resume" in text


# -- 13.7 the emulator command -------------------------------------------------------------

async def _announce(*args: str) -> tuple[dict[str, object], asyncio.subprocess.Process]:
    proc = await start("emulator", "--port", "0", "--json", "--vehicles", "1", *args)
    assert proc.stdout is not None
    return json.loads(await asyncio.wait_for(proc.stdout.readline(), 30)), proc


async def _stop(proc: asyncio.subprocess.Process) -> int:
    proc.terminate()
    await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode is not None
    return proc.returncode


async def test_emulator_fixed_credentials_survive_a_restart(tmp_path: Path) -> None:
    first, proc = await _announce("--seed", "7")
    assert await _stop(proc) == 0
    second, proc = await _announce("--seed", "7", "--private-key-out",
                                   str(tmp_path / "key.json"))
    try:
        for key in ("client_id", "client_secret", "key_id", "private_key"):
            assert first[key] == second[key], key
        assert json.loads((tmp_path / "key.json").read_text())["id"] == second["key_id"]
        # The credentials a user exported before the restart still work.
        run = await cli("--base-url", str(second["url"]), "--client-id",
                        str(first["client_id"]), "token",
                        env=clean_env(HM_CLIENT_SECRET=str(first["client_secret"])))
        assert run.code == 0, run
    finally:
        await _stop(proc)
    chosen, proc = await _announce("--client-id", "my-app", "--client-secret", "s3cret")
    await _stop(proc)
    assert (chosen["client_id"], chosen["client_secret"]) == ("my-app", "s3cret")


async def test_emulator_tls_options_and_port_in_use(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    info, proc = await _announce("--tls-cert", str(cert_file), "--tls-key", str(key_file))
    try:
        assert str(info["url"]).startswith("https://127.0.0.1:")
        # verification stays on: a private CA the client was not given is refused, plainly
        untrusted = await cli("--base-url", str(info["url"]), "--client-id",
                              str(info["client_id"]), "token",
                              env=clean_env(HM_CLIENT_SECRET=str(info["client_secret"])))
    finally:
        await _stop(proc)
    assert untrusted.code == ExitCode.API and one_error_line(untrusted), untrusted
    assert "TLS certificate of 127.0.0.1:" in untrusted.err and "not trusted" in untrusted.err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = await cli("emulator", "--port", str(port))
    assert busy.code == ExitCode.USAGE and one_error_line(busy), busy
    assert f"port {port} on 127.0.0.1 is in use" in busy.err


async def test_emulator_help_shows_defaults_and_unambiguous_key_options() -> None:
    run = await cli("emulator", "--help")
    assert run.code == 0
    for text in ("[default: 8080]", "[default: 127.0.0.1]", "--private-key-out", "--tls-cert",
                 "--tls-key", "--client-id", "--seed"):
        assert text in run.text, text
    assert "--keyfile" not in run.text and "--key-file" not in run.text
    assert not re.search(r"<(bool|str|int|float|list\[[a-z]+\]|path)\b", run.text), run
    via_module = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hm_async.emulator", "--help", stdout=asyncio.subprocess.PIPE)
    out, _ = await via_module.communicate()
    assert via_module.returncode == 0 and b"--private-key-out" in out


# -- 13.8 errors in the CLI's language ------------------------------------------------------------

async def test_errors_name_options_and_network_problems_plainly() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    env = clean_env(HM_CLIENT_ID="x", HM_CLIENT_SECRET="y")
    url = f"http://127.0.0.1:{closed_port}"
    status, refused, data, bad_key = await asyncio.gather(
        cli("--base-url", url, "clearance", "list", "--status", "bogus", env=env),
        cli("--base-url", url, "token", env=env),
        cli("--base-url", url, "data", "WBAEMU00000000001", env=env),
        cli("--base-url", url, "token", env=clean_env(
            HM_CLIENT_ID="x", HM_PRIVATE_KEY="not a key", HM_KEY_ID="k")),
    )
    assert status.code == ExitCode.USAGE and one_error_line(status), status
    assert "--status 'bogus' is not a clearance status" in status.err
    for run in (refused, data):
        assert run.code == ExitCode.API and one_error_line(run), run
        assert f"cannot connect to 127.0.0.1:{closed_port}: connection refused" in run.err
        assert "ClientConnectorError" not in run.err and "ssl:default" not in run.err
    assert bad_key.code == ExitCode.AUTH and one_error_line(bad_key), bad_key
    assert "from_file()" not in bad_key.err and "PrivateKeyCredentials" not in bad_key.err
    assert "--private-key-file" in bad_key.err


async def test_help_has_no_type_noise_and_one_env_style() -> None:
    # one command of each kind of parameter: flags, counts, lists, ranges, optional
    # arguments (the emulator's help is checked below)
    commands = [(), ("poll",), ("clearance", "list"), ("clearance", "request"), ("demo",)]
    runs = await asyncio.gather(*(cli(*cmd, "--help") for cmd in commands))
    for cmd, run in zip(commands, runs, strict=True):
        assert run.code == 0, (cmd, run)
        assert not re.search(r"<(bool|str|int|float|list\[[a-z]+\]|path)\b", run.text), (cmd, run)
        assert "env var:" not in run.text, cmd
    assert "[env: HM_CLIENT_ID]" in runs[0].text and "[env: HM_ENVIRONMENT]" in runs[0].text


# -- 13.10 the demo tells one story --------------------------------------------------------------

async def test_demo_numbers_agree() -> None:
    run = await cli("demo", "--vehicles", "240", "--seed", "3", "--no-progress", timeout=90)
    assert run.code == 0, run
    text = " ".join(run.text.split())
    header = re.search(r"polling (\d+) VINs", text)
    footer = re.search(r"│ total +│ +(\d+) │ +(\d+) │ +(\d+) │", run.text)
    assert header and footer, run
    assert int(header.group(1)) == int(footer.group(1)) == 242
    assert int(footer.group(2)) + int(footer.group(3)) == 242
    calls = re.search(r"HTTP calls: ([\d,]+) = (.*?) retries", text)
    assert calls, run
    parts = [int(n.replace(",", "")) for n in re.findall(r"([\d,]+) [a-z]", calls.group(2) +
                                                           " retries")]
    assert int(calls.group(1).replace(",", "")) == sum(parts)
    answers = re.search(r"HTTP answers: (.*?) (?:401:|The emulator)", text)
    assert answers, run
    answered = sum(int(n.replace(",", "")) for n in re.findall(r"×([\d,]+)", answers.group(1)))
    assert answered == int(calls.group(1).replace(",", ""))
    if "401×" in answers.group(1):
        assert "consent the OEM removed answers 401" in text
    assert "1 token request" in text
    bmw = re.search(r"bmw ran at (\d+) req/s against the server's 25", text)
    assert bmw and int(bmw.group(1)) <= 27, run


# -- in-process details of the above ---------------------------------------------------------

def test_hoisting_moves_only_global_options_of_commands_that_take_them() -> None:
    from hm_async.cli import hoist_global_options

    assert hoist_global_options(["data", "VIN", "--credentials", "f.json", "-vv"]) == [
        "--credentials", "f.json", "-vv", "data", "VIN"]
    assert hoist_global_options(["-v", "poll", "x.txt", "--base-url=http://h", "-o", "o"]) == [
        "-v", "--base-url=http://h", "poll", "x.txt", "-o", "o"]
    # the emulator's own --client-id, and anything after "--", stay where they are
    assert hoist_global_options(["emulator", "--client-id", "a"]) == [
        "emulator", "--client-id", "a"]
    assert hoist_global_options(["poll", "--", "--base-url"]) == ["poll", "--", "--base-url"]


def test_resume_drops_a_line_cut_short_and_refuses_foreign_files(tmp_path: Path) -> None:
    from hm_async._cli_input import InputError, resume_point

    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"vin":"WBAEMU00000000001","ok":true}\n{"vin":"WBAEMU000000')
    assert resume_point(str(out)) == {"WBAEMU00000000001"}
    assert out.read_bytes() == b'{"vin":"WBAEMU00000000001","ok":true}\n'
    assert resume_point(str(tmp_path / "missing.jsonl")) == set()
    out.write_text("vin,brand\n")
    with pytest.raises(InputError, match="line 1 is not a result line"):
        resume_point(str(out))
