"""The lab's allocation directories: `nomad alloc exec` over a WebSocket and `nomad alloc fs`.

Each allocation gets a real directory laid out as Nomad's client lays one out (`alloc/`,
`alloc/logs/<task>.<stdout|stderr>.0`, `<task>/local`, `<task>/secrets`, `<task>/tmp`), under
the lab's work directory. Pages followed:

- api-docs/allocations "Exec Allocation" (`GET /v1/client/allocation/:alloc_id/exec`):
  query `task`, `command` (a JSON array), `tty`, `ws_handshake`; the client sends
  `{"stdin":{"data":"<base64>"}}`, `{"stdin":{"close":true}}`,
  `{"tty_size":{"height":H,"width":W}}`; the server sends `{"stdout":{"data":"<base64>"}}`,
  `{"stderr":…}` and at the end `{"exited":true,"result":{"exit_code":N}}`. With
  `ws_handshake=true` the first client frame is `{"version":1,"auth_token":"…"}`. Errors after
  the upgrade are a close frame (1008 policy violation for 4xx, 1011 for 500) with the text, as
  command/agent/alloc_endpoint.go does. The command runs for real: `sh` under a PTY (tty=true)
  or with pipes, in the task's directory.
- api-docs/client "List Files" / "Stat File" (`/v1/client/fs/ls/:alloc_id?path=`,
  `/v1/client/fs/stat/:alloc_id?path=`): `Name`, `IsDir`, `Size`, `FileMode`, `ModTime`,
  `ContentType`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import json
import mimetypes
import os
import shutil
import stat
import struct
import tempfile
import termios
import time
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from .acl import nomad_capability
from .context import SimContext
from .model import Alloc
from .world import SimError

EXEC_PATH = "/v1/client/allocation/{id}/exec"
_ROOT_ATTR = "_jamlab_alloc_root"


def add_routes(app: web.Application, ctx: SimContext) -> None:
    """Mount exec and fs ls/stat on the Nomad app (their capabilities are in sim/acl.py)."""
    app.router.add_get(EXEC_PATH, exec_alloc)
    app.router.add_get("/v1/client/fs/ls/{id}", fs_ls)
    app.router.add_get("/v1/client/fs/stat/{id}", fs_stat)


def _ctx(request: web.Request) -> SimContext:
    from .nomad import CTX

    return request.app[CTX]


def alloc_root(ctx: SimContext) -> Path:
    """Where the lab keeps allocation directories (the lab's workdir, else a temp dir)."""
    root = getattr(ctx, _ROOT_ATTR, None)
    if root is None:
        base = getattr(ctx, "workdir", None)
        root = Path(base) / "allocs" if base else Path(tempfile.mkdtemp(prefix="jamlab-allocs-"))
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        setattr(ctx, _ROOT_ATTR, root)
    return root


def alloc_dir(ctx: SimContext, alloc: Alloc) -> Path:
    """The allocation's directory, made on first use and its logs brought up to date."""
    base = alloc_root(ctx) / alloc.id
    for sub in ("alloc/data", "alloc/logs", "alloc/tmp"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    for task in alloc.task_states:
        for sub in ("local", "secrets", "tmp"):
            (base / task / sub).mkdir(parents=True, exist_ok=True)
        for stream in ("stdout", "stderr"):
            log = ctx.world.log_file(alloc, task, stream)
            (base / "alloc" / "logs" / f"{task}.{stream}.0").write_bytes(bytes(log.data))
    return base


def cleanup(ctx: SimContext) -> None:
    root = getattr(ctx, _ROOT_ATTR, None)
    if root is not None and getattr(ctx, "workdir", None) is None:
        shutil.rmtree(root, ignore_errors=True)


# -- fs ls / stat --------------------------------------------------------------------------


def _resolve(base: Path, path: str) -> Path:
    target = (base / path.lstrip("/")).resolve()
    if target != base.resolve() and base.resolve() not in target.parents:
        raise SimError(400, "Path escapes the alloc directory")
    if not target.exists():
        raise SimError(404, f"stat {target}: no such file or directory")
    return target


def _mod_time(ns: int) -> str:
    secs, frac = divmod(ns, 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def file_info(path: Path) -> dict[str, Any]:
    """api-docs/client: one AllocFileInfo."""
    st = path.stat()
    is_dir = stat.S_ISDIR(st.st_mode)
    content = "" if is_dir else (mimetypes.guess_type(path.name)[0] or
                                 "text/plain; charset=utf-8")
    return {"Name": path.name, "IsDir": is_dir, "Size": st.st_size,
            "FileMode": stat.filemode(st.st_mode), "ModTime": _mod_time(st.st_mtime_ns),
            "ContentType": content}


def _fs_alloc(request: web.Request) -> tuple[SimContext, Path]:
    ctx = _ctx(request)
    alloc_id = request.match_info["id"]
    if not alloc_id:
        raise SimError(400, "must provide a valid alloc id")
    alloc = ctx.world.get_alloc(alloc_id)
    return ctx, alloc_dir(ctx, alloc)


async def fs_ls(request: web.Request) -> web.Response:
    """api-docs/client#list-files: `path` defaults to `/`."""
    _, base = _fs_alloc(request)
    target = _resolve(base, request.query.get("path") or "/")
    if not target.is_dir():
        raise SimError(500, f"readdirent {target}: not a directory")
    return web.json_response([file_info(p) for p in sorted(target.iterdir())])


async def fs_stat(request: web.Request) -> web.Response:
    """api-docs/client#stat-file: `path` is required."""
    path = request.query.get("path", "")
    if not path:
        raise SimError(400, "must provide a file name")
    _, base = _fs_alloc(request)
    return web.json_response(file_info(_resolve(base, path)))


# -- exec ------------------------------------------------------------------------------------


def _close_code(status: int) -> int:
    # command/agent/alloc_endpoint.go toWsCode: 500 is an internal error, the rest a policy
    # violation (1008)
    return 1011 if status >= 500 else 1008


async def _ws_error(ws: web.WebSocketResponse, status: int, message: str) -> web.WebSocketResponse:
    await ws.close(code=_close_code(status), message=message.encode()[:120])
    return ws


def _parse_command(raw: str) -> list[str]:
    try:
        command = json.loads(raw) if raw else None
    except ValueError:
        command = None
    if not isinstance(command, list) or not command or \
            not all(isinstance(c, str) for c in command):
        raise SimError(400, "command is not present")
    return command


async def exec_alloc(request: web.Request) -> web.StreamResponse:
    from .http import go_bool

    ctx = _ctx(request)
    q = request.query
    tty = go_bool(q.get("tty", "false")) is True
    handshake = go_bool(q.get("ws_handshake", "false")) is True
    ws = web.WebSocketResponse(heartbeat=None)
    await ws.prepare(request)
    token = request.headers.get("X-Nomad-Token", "")
    auth = request.headers.get("Authorization", "")
    if not token and auth.startswith("Bearer "):
        token = auth[len("Bearer "):]
    if handshake:
        # the browser's way: the token in the first frame, not a header
        try:
            first = await ws.receive_json(timeout=10)
        except (TimeoutError, ValueError, TypeError):
            return await _ws_error(ws, 400, "invalid handshake")
        token = str(first.get("auth_token") or "") if isinstance(first, dict) else ""
    grant = ctx.secrets.nomad_grant(token)
    if grant is None:
        return await _ws_error(ws, 403, "ACL token not found")
    if not grant.allows(nomad_capability("GET", request.path)):
        return await _ws_error(ws, 403, "Permission denied")
    try:
        task = q.get("task", "")
        if not task:
            raise SimError(400, "missing task name")
        command = _parse_command(q.get("command", ""))
        alloc = ctx.world.get_alloc(request.match_info["id"])
        if task not in alloc.task_states:
            raise SimError(400, f"unknown task name {task!r}")
        if alloc.terminal or alloc.task_states[task].state != "running":
            raise SimError(400, "task is not running")
        base = alloc_dir(ctx, alloc)
    except SimError as exc:
        return await _ws_error(ws, exc.status, exc.message)
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "TERM": "xterm-256color" if tty else "dumb", "HOME": str(base / task / "local"),
        "NOMAD_ALLOC_DIR": str(base / "alloc"), "NOMAD_TASK_DIR": str(base / task / "local"),
        "NOMAD_SECRETS_DIR": str(base / task / "secrets"), "NOMAD_ALLOC_ID": alloc.id,
        "NOMAD_ALLOC_NAME": alloc.name, "NOMAD_TASK_NAME": task, "NOMAD_JOB_NAME": alloc.job_id,
        "NOMAD_GROUP_NAME": alloc.task_group, "PS1": "$ ",
    }
    session = ExecSession(command, base / task, env, tty)
    try:
        await session.start()
    except OSError as exc:
        return await _ws_error(ws, 500, f"failed to start command: {exc.strerror or exc}")
    await session.pump(ws)
    return ws


class ExecSession:
    """One command, its output sent as frames and frames fed to it, until it exits."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str], tty: bool) -> None:
        self.command, self.cwd, self.env, self.tty = command, cwd, env, tty
        self.proc: asyncio.subprocess.Process | None = None
        self.master = -1
        self.output: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()

    async def start(self) -> None:
        if self.tty:
            self.master, slave = os.openpty()
            try:
                self.proc = await asyncio.create_subprocess_exec(
                    *self.command, stdin=slave, stdout=slave, stderr=slave, cwd=self.cwd,
                    env=self.env, start_new_session=True,
                    preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
            except OSError:
                os.close(self.master)
                raise
            finally:
                os.close(slave)
            os.set_blocking(self.master, False)
            asyncio.get_running_loop().add_reader(self.master, self._read_master)
        else:
            self.proc = await asyncio.create_subprocess_exec(
                *self.command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, cwd=self.cwd, env=self.env,
                start_new_session=True)

    def _read_master(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self.master)
        self.output.put_nowait(("stdout", data))

    async def _read_pipe(self, name: str, stream: asyncio.StreamReader) -> None:
        while True:
            data = await stream.read(65536)
            self.output.put_nowait((name, data))
            if not data:
                return

    def resize(self, height: int, width: int) -> None:
        if self.master >= 0:
            with contextlib.suppress(OSError):
                fcntl.ioctl(self.master, termios.TIOCSWINSZ,
                            struct.pack("HHHH", max(1, height), max(1, width), 0, 0))

    def feed(self, data: bytes) -> None:
        assert self.proc is not None
        if self.master >= 0:
            with contextlib.suppress(OSError):
                os.write(self.master, data)
        elif self.proc.stdin is not None:
            with contextlib.suppress(OSError, RuntimeError):
                self.proc.stdin.write(data)

    def close_stdin(self) -> None:
        assert self.proc is not None
        if self.master >= 0:
            with contextlib.suppress(OSError):
                os.write(self.master, b"\x04")  # ^D at the line discipline
        elif self.proc.stdin is not None:
            with contextlib.suppress(OSError, RuntimeError):
                self.proc.stdin.close()

    async def pump(self, ws: web.WebSocketResponse) -> None:
        assert self.proc is not None
        proc = self.proc
        readers = [] if self.tty else [
            asyncio.ensure_future(self._read_pipe("stdout", proc.stdout)),  # type: ignore[arg-type]
            asyncio.ensure_future(self._read_pipe("stderr", proc.stderr)),  # type: ignore[arg-type]
        ]
        inbound = asyncio.ensure_future(self._inbound(ws))
        sender = asyncio.ensure_future(self._outbound(ws, 1 if self.tty else 2))
        try:
            done, _ = await asyncio.wait({inbound, asyncio.ensure_future(proc.wait())},
                                         return_when=asyncio.FIRST_COMPLETED)
            if inbound in done and proc.returncode is None:
                # the client went away: the command is killed, as Nomad does
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, 9)
            code = await proc.wait()
            if self.tty:
                await asyncio.sleep(0.05)
                self._drain_master()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(sender, 5)
            if not ws.closed:
                await ws.send_json({"exited": True, "result": {"exit_code": code}})
                await ws.close()
        finally:
            for t in (inbound, sender, *readers):
                t.cancel()
            if self.master >= 0:
                with contextlib.suppress(ValueError, OSError):
                    asyncio.get_running_loop().remove_reader(self.master)
                os.close(self.master)
                self.master = -1
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, 9)

    def _drain_master(self) -> None:
        while self.master >= 0:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                data = b""
            self.output.put_nowait(("stdout", data))
            if not data:
                return

    async def _outbound(self, ws: web.WebSocketResponse, streams: int) -> None:
        ended = 0
        while ended < streams:
            name, data = await self.output.get()
            if not data:
                ended += 1
                frame: dict[str, Any] = {name: {"close": True}}
            else:
                frame = {name: {"data": base64.b64encode(data).decode()}}
            if ws.closed:
                return
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_json(frame)

    async def _inbound(self, ws: web.WebSocketResponse) -> None:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                frame = json.loads(msg.data)
            except ValueError:
                continue
            if not isinstance(frame, dict):
                continue
            stdin = frame.get("stdin")
            if isinstance(stdin, dict):
                if stdin.get("data"):
                    with contextlib.suppress(ValueError, TypeError):
                        self.feed(base64.b64decode(stdin["data"]))
                if stdin.get("close"):
                    self.close_stdin()
            size = frame.get("tty_size")
            if isinstance(size, dict):
                with contextlib.suppress(TypeError, ValueError):
                    self.resize(int(size.get("height", 0)), int(size.get("width", 0)))
