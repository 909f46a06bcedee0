"""jamtui's KV, session and intention calls (jamtui/sources/consul_kv.py) against the lab,
with py-consul as the other writer. Pages: api-docs/kv (read-key with keys+separator,
create-update-key with cas, delete-key with cas and recurse), api-docs/session (read-session),
api-docs/connect/intentions (upsert-intention-by-name, delete-intention-by-name)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jamtui.config import load_config
from jamtui.model import Kind
from jamtui.sim.lab import Lab
from jamtui.sources.base import BackendError
from jamtui.sources.consul import ConsulSource
from jamtui.sources.consul_kv import CASConflict, ConsulKV, KVValue
from jamtui.store import Store
from tests.conftest import FAST
from tests.sim.test_consul_api import client


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(seed=8, tick=0.2, traffic=False, **FAST) as running:
        yield running


def kv_for(lab: Lab, tmp_path: Path, env: dict[str, str] | None = None) -> ConsulKV:
    path = tmp_path / "jamtui.toml"
    path.write_text(lab.config_toml())
    cfg = load_config(path, env=env or lab.env())
    source = ConsulSource(Store(), cfg.consul)
    source.report_ok()  # as if its watches were running and answering
    return ConsulKV(source)


def test_tree_value_and_kind(lab: Lab, tmp_path: Path) -> None:
    c = client(lab)
    c.kv.put("app/web/port", "8080")
    c.kv.put("app/web/conf", '{"debug": true}')
    c.kv.put("app/blob", b"\x1f\x8b\x08\x00binary")
    kv = kv_for(lab, tmp_path)
    assert "app/" in kv.keys("")
    assert kv.keys("app/") == ["app/blob", "app/web/"]
    assert kv.keys("app/web/") == ["app/web/conf", "app/web/port"]
    assert kv.keys("nothing/") == []
    port = kv.read("app/web/port")
    assert port is not None and port.text == "8080" and port.kind == "text"
    assert kv.read("app/web/conf").kind == "JSON"  # type: ignore[union-attr]
    blob = kv.read("app/blob")
    assert blob is not None and blob.text is None and blob.kind == "gzip"
    assert kv.read("app/none") is None


def test_cas_write_refuses_a_change_made_meanwhile(lab: Lab, tmp_path: Path) -> None:
    c = client(lab)
    c.kv.put("cfg/mode", "blue")
    kv = kv_for(lab, tmp_path)
    seen = kv.read("cfg/mode")
    assert seen is not None
    c.kv.put("cfg/mode", "green")  # someone else, after we read it
    with pytest.raises(CASConflict, match="changed in Consul since it was read"):
        kv.write("cfg/mode", b"red", cas=seen.modify_index)
    assert c.kv.get("cfg/mode")[1]["Value"] == b"green"
    fresh = kv.read("cfg/mode")
    assert fresh is not None
    kv.write("cfg/mode", b"red", cas=fresh.modify_index)
    assert c.kv.get("cfg/mode")[1]["Value"] == b"red"
    with pytest.raises(CASConflict, match="already exists"):
        kv.write("cfg/mode", b"new", cas=0)  # `n` on a key that exists
    kv.write("cfg/new", b"x", cas=0)
    with pytest.raises(CASConflict):
        kv.delete("cfg/new", cas=fresh.modify_index)  # stale index: kept
    assert kv.read("cfg/new") is not None
    kv.delete("cfg/new", cas=kv.read("cfg/new").modify_index)  # type: ignore[union-attr]
    assert kv.read("cfg/new") is None
    kv.delete("cfg/", recurse=True)
    assert kv.keys("cfg/") == []


def test_lock_holder_is_named(lab: Lab, tmp_path: Path) -> None:
    c = client(lab)
    sid = c.session.create(name="deployer")
    c.kv.put("locks/deploy", "x", acquire=sid)
    kv = kv_for(lab, tmp_path)
    held = kv.read("locks/deploy")
    assert held is not None and held.session == sid and held.lock_index == 1
    info = kv.session(sid)
    assert info is not None and info.name == "deployer" and info.node
    c.session.destroy(sid)
    assert kv.session(sid) is None


def test_intentions_create_and_delete_update_the_store(lab: Lab, tmp_path: Path) -> None:
    kv = kv_for(lab, tmp_path)
    kv.create_intention("web", "api", "deny", "no shortcut")
    ids = {i.id: i for i in kv.source.store.items(Kind.INTENTION)}
    assert ids["web->api"].action == "deny" and ids["web->api"].precedence == 9
    kv.delete_intention("web", "api")
    assert "web->api" not in {i.id for i in kv.source.store.items(Kind.INTENTION)}
    with pytest.raises(ValueError):
        kv.create_intention("web", "api", "maybe")


def test_read_only_token_turns_off_kv_in_words(lab: Lab, tmp_path: Path) -> None:
    kv = kv_for(lab, tmp_path, lab.read_only_env())
    with pytest.raises(BackendError, match="lacks key:read"):
        kv.keys("")
    refused = {r.feature: r.capability for r in kv.source.store.backend("consul").refused}
    assert refused["kv"] == "key:read"
    assert kv.source.store.backend("consul").health.value == "degraded"  # not down
    with pytest.raises(BackendError, match="lacks intentions:write"):
        kv.create_intention("web", "api", "allow")


def test_binary_detection() -> None:
    assert KVValue("k", "héllo\n".encode()).text == "héllo\n"
    assert KVValue("k", b"\x00\x01").text is None and KVValue("k", b"\x00\x01").kind == "binary"
    assert KVValue("k", b"\x89PNG\r\n").kind == "PNG image"


def test_doctor_names_the_kv_and_session_rules(lab: Lab, tmp_path: Path) -> None:
    from jamtui.doctor import run_doctor

    path = tmp_path / "jamtui.toml"
    path.write_text(lab.config_toml())
    found = {f.detail.split(":")[0]: f for f in run_doctor(load_config(
        path, env=lab.read_only_env())) if f.backend == "consul"}
    assert found["key/value"].warning and 'key_prefix "" { policy = "read" }' in \
        found["key/value"].fix
    assert found["sessions"].warning and "session_prefix" in found["sessions"].fix


def test_odd_key_names_round_trip(lab: Lab, tmp_path: Path) -> None:
    """A key with ?, #, spaces, markup and a control character is one key, quoted on the
    wire: written, listed and read back as itself."""
    kv = kv_for(lab, tmp_path)
    key = "odd/a?b #c [red]x\x1b"
    kv.write(key, b"v", cas=0)
    assert kv.keys("odd/") == [key]
    got = kv.read(key)
    assert got is not None and got.key == key and got.value == b"v"
    kv.delete(key, cas=got.modify_index)
    assert kv.keys("odd/") == []
