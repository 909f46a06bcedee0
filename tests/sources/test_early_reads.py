"""`snapshot --json` sends the servers' longest chains of reads (Consul's services one by
one, Proxmox's VM configs) before its sources exist, and the sources take those answers
rather than asking again (#17: the servers sat idle for the first 0.25-0.35 s of a 5k
snapshot). Only a 2xx answer to the very same request is taken: anything else is asked
again by the source, which reports it in its own words."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from jamtui.sim.lab import Lab
from jamtui.sources import tls
from jamtui.sources.tls import EarlyAnswers
from tests.conftest import FAST


class Plain:
    """What `EarlyAnswers` asks of a `PlainGet`: what it sends, and `send`."""

    def __init__(self, sent_as: Any, answer: Any, gate: threading.Event | None = None) -> None:
        self.sent_as, self.answer, self.gate, self.sent = sent_as, answer, gate, 0

    def send(self, path: str, timeout: float | None = None) -> Any:
        self.sent += 1
        if self.gate is not None:
            self.gate.wait(10)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_only_a_2xx_answer_to_the_same_request_is_taken_and_only_once() -> None:
    answers = EarlyAnswers()
    ok = Plain("a", (200, "OK", {}, b"[]"))
    refused = Plain("b", (403, "Forbidden", {}, b"Permission denied"))
    failed = Plain("c", ConnectionError("refused"))
    for plain in (ok, refused, failed):
        answers.expect(plain, "/v1/x")()
    assert answers.take("z", "/v1/x") is None  # other headers, TLS or host: not the same
    assert answers.take("a", "/v1/y") is None  # another path
    assert answers.take("a", "/v1/x") == (200, "OK", {}, b"[]")
    assert answers.take("a", "/v1/x") is None  # handed out once
    assert answers.take("b", "/v1/x") is None  # a refusal: the source asks, and says so
    assert answers.take("c", "/v1/x") is None  # a failure: likewise
    assert answers.taken == 1


def test_an_answer_still_on_its_way_is_waited_for_not_asked_again() -> None:
    answers = EarlyAnswers()
    gate = threading.Event()
    plain = Plain("a", (200, "OK", {}, b"{}"), gate)
    read = answers.expect(plain, "/v1/x")
    threading.Thread(target=read, daemon=True).start()
    got: list[Any] = []
    taker = threading.Thread(target=lambda: got.append(answers.take("a", "/v1/x")))
    taker.start()
    time.sleep(0.05)
    assert taker.is_alive() and not got
    gate.set()
    taker.join(10)
    assert got == [(200, "OK", {}, b"{}")] and plain.sent == 1
    answers.forget()
    assert answers.take("a", "/v1/x") is None


def test_snapshot_sends_the_long_chains_before_its_sources_exist_and_once(
        tmp_path: Path, capfdbinary: Any) -> None:
    from jamtui import cli, engine, heap
    from jamtui.config import load_config

    sent: list[tuple[str, str]] = []  # (thread, path) of every plain GET sent
    before: set[str] = set()  # the threads there were when the engine was built
    real_send, real_init = tls.PlainGet.send, engine.Engine.__init__

    def send(self: Any, path: str, timeout: float | None = None) -> Any:
        sent.append((threading.current_thread().name, path))
        return real_send(self, path, timeout)

    def init(self: Any, *args: Any, **kw: Any) -> None:
        before.update(t.name.rstrip("0123456789") for t in threading.enumerate())
        real_init(self, *args, **kw)

    with Lab(seed=3, tick=0.2, traffic=False, **FAST) as lab, pytest.MonkeyPatch.context() as m:
        path = tmp_path / "jamtui.toml"
        path.write_text(lab.config_toml())
        m.setattr(tls.PlainGet, "send", send)
        m.setattr(engine.Engine, "__init__", init)
        try:
            code = cli.run_snapshot(load_config(path), 10.0)
        finally:
            heap.release(freeze=False)
    assert code == 0 and tls.EARLY is None
    doc = json.loads(capfdbinary.readouterr().out)
    services = [p for _, p in sent if p.startswith("/v1/health/service/")]
    configs = [p for _, p in sent if p.endswith("/config")]
    assert len(services) == len(doc["services"]) and len(set(services)) == len(services)
    running = [v for v in doc["vms"] if v["status"] == "running" and v["type"] == "qemu"]
    assert running and len(configs) == len(running) == len(set(configs))
    # each chain was under way before the engine (and its sources) was built, and sent
    # every one of its reads: the sources sent none of them again
    assert {"early:consul", "early:proxmox"} <= before
    assert {t.rstrip("0123456789") for t, p in sent if p in services} == {"early:consul"}
    assert {t.rstrip("0123456789") for t, p in sent if p in configs} == {"early:proxmox"}
    assert all(v["ip"] for v in running)  # the answers were the sources' own
    assert all(s["instances"] for s in doc["services"])
