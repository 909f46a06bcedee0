"""`jamtui exec` against the lab's exec WebSocket, as a process on a real PTY; the lab's
endpoint also read by a raw WebSocket client (api-docs/allocations "Exec Allocation") and its
fs ls/stat through python-nomad (api-docs/client "List Files", "Stat File")."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import nomad
import pytest

from jamtui.sim.lab import Lab
from tests.conftest import FAST
from tests.helpers import wait_for


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(seed=1, tick=0.2, traffic=False, **FAST) as running:
        yield running


def running_alloc(lab: Lab) -> tuple[str, str]:
    w = lab.ctx.world

    def find() -> tuple[str, str] | None:
        for a in list(w.allocs.values()):
            if a.client_status == "running" and len(a.task_states) == 1:
                task = next(iter(a.task_states))
                if a.task_states[task].state == "running":
                    return a.id, task
        return None

    return wait_for(find, timeout=20)


def config(lab: Lab) -> Path:
    path = lab.workdir / "exec-test.toml"
    path.write_text(lab.config_toml())
    return path


def env(lab: Lab, token: str | None = None) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("NOMAD_", "CONSUL_"))}
    out |= lab.env()
    if token is not None:
        out["NOMAD_TOKEN"] = token
    return out


def read_until(fd: int, want: bytes, timeout: float = 20.0) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while want not in buf and time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return buf


def spawn_on_pty(argv: list[str], environ: dict[str, str]) -> tuple[int, int]:
    pid, fd = pty.fork()
    if pid == 0:  # the child: jamtui exec on the PTY's slave
        os.execve(sys.executable, [sys.executable, "-m", "jamtui", *argv], environ)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 90, 0, 0))
    return pid, fd


def finish(pid: int, fd: int, timeout: float = 20.0) -> tuple[int, bytes]:
    rest = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            with contextlib.suppress(OSError):
                rest += os.read(fd, 4096)
        if done:
            os.close(fd)
            return os.waitstatus_to_exitcode(status), rest
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    os.close(fd)
    raise AssertionError(f"jamtui exec did not end: {rest!r}")


def test_exec_on_a_pty_echoes_and_passes_the_exit_code_through(lab: Lab) -> None:
    alloc, _ = running_alloc(lab)
    pid, fd = spawn_on_pty(["exec", "--config", str(config(lab)), alloc[:8], "--",
                            "/bin/sh"], env(lab))
    read_until(fd, b"$ ")  # the task's shell prompts: it runs on a TTY
    os.write(fd, b"echo h''i; exit 3\r")
    code, rest = finish(pid, fd)
    assert b"hi" in rest.replace(b"h''i", b"")
    assert code == 3


def test_a_resize_reaches_the_task_as_tty_size(lab: Lab) -> None:
    alloc, task = running_alloc(lab)
    pid, fd = spawn_on_pty(["exec", "--config", str(config(lab)), "-t", task, alloc, "--",
                            "/bin/sh"], env(lab))
    read_until(fd, b"$ ")
    os.write(fd, b"stty size\r")
    assert b"30 90" in read_until(fd, b"30 90")
    # the terminal grows: the kernel sends SIGWINCH to jamtui, which sends tty_size
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 41, 123, 0, 0))
    time.sleep(0.3)
    os.write(fd, b"stty size\r")
    assert b"41 123" in read_until(fd, b"41 123")
    os.write(fd, b"exit 0\r")
    code, _ = finish(pid, fd)
    assert code == 0


def test_exec_without_a_tty_keeps_stdout_stderr_and_the_code(lab: Lab) -> None:
    alloc, _ = running_alloc(lab)
    done = subprocess.run(
        [sys.executable, "-m", "jamtui", "exec", "--config", str(config(lab)), alloc, "--",
         "sh", "-c", 'read x; echo "out $x $NOMAD_TASK_NAME"; echo err >&2; pwd; exit 5'],
        input=b"piped\n", capture_output=True, env=env(lab), timeout=60)
    assert done.returncode == 5, done.stderr
    out = done.stdout.decode()
    assert "out piped " in out and out.strip().endswith("/" + out.split()[2])  # cwd: task dir
    assert done.stderr.decode().strip() == "err"


def test_a_token_without_alloc_exec_is_refused_in_words(lab: Lab) -> None:
    alloc, _ = running_alloc(lab)
    done = subprocess.run(
        [sys.executable, "-m", "jamtui", "exec", "--config", str(config(lab)), alloc, "--",
         "true"], capture_output=True, env=env(lab, lab.secrets.nomad_read_token), timeout=60)
    assert done.returncode == 1
    assert "Permission denied" in done.stderr.decode()
    assert "Traceback" not in done.stderr.decode()


def test_an_unknown_allocation_is_said_in_words(lab: Lab) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "jamtui", "exec", "--config", str(config(lab)), "ffffffff",
         "--", "true"], capture_output=True, env=env(lab), timeout=60)
    assert done.returncode == 1
    assert "No allocation(s) with prefix or id 'ffffffff' found" in done.stderr.decode()


async def _raw_exec(url: str, token: str, frames: list[dict], handshake: bool
                    ) -> tuple[list[dict], int | None, str]:
    out: list[dict] = []
    async with aiohttp.ClientSession() as s, s.ws_connect(
            url, headers={} if handshake else {"X-Nomad-Token": token}) as ws:
        if handshake:
            await ws.send_json({"version": 1, "auth_token": token})
        for f in frames:
            await ws.send_json(f)
        while True:
            msg = await ws.receive(timeout=20)
            if msg.type != aiohttp.WSMsgType.TEXT:
                return out, ws.close_code, str(msg.extra or "")
            out.append(json.loads(msg.data))
            if out[-1].get("exited"):
                return out, None, ""


def test_the_documented_frames_with_ws_handshake(lab: Lab) -> None:
    """api-docs/allocations#exec-allocation: ws_handshake, stdin frames, exited result."""
    import asyncio

    alloc, task = running_alloc(lab)
    q = (f"task={task}&tty=false&ws_handshake=true&command="
         + json.dumps(["sh", "-c", "cat; exit 7"]))
    url = lab.urls["nomad"].replace("http", "ws", 1) + f"/v1/client/allocation/{alloc}/exec?{q}"
    frames, _, _ = asyncio.run(_raw_exec(url, lab.secrets.nomad_token, [
        {"stdin": {"data": base64.b64encode(b"abc").decode()}}, {"stdin": {"close": True}}],
        handshake=True))
    data = b"".join(base64.b64decode(f["stdout"]["data"]) for f in frames
                    if f.get("stdout", {}).get("data"))
    assert data == b"abc"
    assert frames[-1] == {"exited": True, "result": {"exit_code": 7}}
    # an unknown token in the handshake: a close frame with Nomad's words
    _, code, reason = asyncio.run(_raw_exec(url, "not-a-token", [], handshake=True))
    assert (code, reason) == (1008, "ACL token not found")
    bad = url.replace(f"task={task}", "task=nope")
    _, code, reason = asyncio.run(_raw_exec(bad, lab.secrets.nomad_token, [], handshake=True))
    assert (code, reason) == (1008, "unknown task name 'nope'")


def test_fs_ls_and_stat_through_python_nomad(lab: Lab) -> None:
    """api-docs/client#list-files and #stat-file: AllocFileInfo objects."""
    alloc, task = running_alloc(lab)
    host = lab.urls["nomad"].rsplit(":", 1)
    n = nomad.Nomad(host=host[0].split("//")[1], port=int(host[1]),
                    token=lab.secrets.nomad_token, timeout=10)
    root = n.client.ls.list_files(alloc)
    assert {f["Name"] for f in root} == {"alloc", task}
    assert all(set(f) >= {"Name", "IsDir", "Size", "FileMode", "ModTime"} for f in root)
    logs = n.client.ls.list_files(alloc, "/alloc/logs")
    assert f"{task}.stdout.0" in {f["Name"] for f in logs}
    info = n.client.stat.stat_file(alloc, f"/alloc/logs/{task}.stdout.0")
    assert info["IsDir"] is False and info["FileMode"].startswith("-rw")
    assert info["Size"] == len(lab.ctx.world.log_file(
        lab.ctx.world.allocs[alloc], task, "stdout").data)
    with pytest.raises(nomad.api.exceptions.BaseNomadException) as err:
        n.client.stat.stat_file(alloc, "/../../etc/passwd")
    assert "Path escapes the alloc directory" in err.value.nomad_resp.text
    readonly = nomad.Nomad(host=host[0].split("//")[1], port=int(host[1]),
                           token=lab.secrets.nomad_read_token, timeout=10)
    with pytest.raises(nomad.api.exceptions.BaseNomadException) as err:
        readonly.client.ls.list_files(alloc)
    assert err.value.nomad_resp.status_code == 403


def test_exec_over_tls_with_client_certificates() -> None:
    """`jamtui lab --tls`: wss:// with the lab's CA, a client certificate and the server name
    the certificate holds (NOMAD_TLS_SERVER_NAME), as every other Nomad request."""
    with Lab(seed=1, tick=0.2, traffic=False, tls=True, **FAST) as tls_lab:
        alloc, _ = running_alloc(tls_lab)
        assert tls_lab.urls["nomad"].startswith("https://")
        done = subprocess.run(
            [sys.executable, "-m", "jamtui", "exec", "--config", str(config(tls_lab)), alloc,
             "--", "sh", "-c", "echo secure; exit 2"], capture_output=True,
            env=env(tls_lab), timeout=60)
        assert done.returncode == 2, done.stderr
        assert done.stdout.decode().strip() == "secure"
