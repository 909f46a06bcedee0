"""Nomad's Raft state has no blocking query: while all is well it is read at a calm cadence
(QUORUM_CALM, at most three poll intervals), not every poll interval; a leader the probe
sees change, or none, reads it at once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jamtui.config import NomadConfig, load_config
from jamtui.model import Kind, Quorum
from jamtui.sim.lab import Lab
from jamtui.sources.nomad import NomadSource
from jamtui.store import Store
from tests.conftest import FAST
from tests.helpers import wait_for


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(seed=5, tick=0, traffic=False, **FAST) as running:  # no ticks: a quiet world
        yield running


def test_a_healthy_quorum_is_read_at_the_calm_cadence(lab: Lab, tmp_path: Path) -> None:
    path = tmp_path / "jamtui.toml"
    path.write_text(lab.config_toml())
    source = NomadSource(Store(), load_config(path, env=lab.env()).nomad, poll_interval=0.5)
    reads: list[Quorum] = []
    read = source.read_quorum

    def counted() -> Quorum:
        reads.append(read())
        return reads[-1]

    source.read_quorum = counted  # type: ignore[method-assign]
    source.start()
    try:
        wait_for(lambda: reads, timeout=10)
        assert reads[0].has_leader and set(reads[0].servers) == set(reads[0].alive)
        first = len(reads)
        time.sleep(3.0)
        # every 0.5 s made 6 reads (12 requests) in these 3 s; calm: one each 1.5 s
        assert len(reads) - first <= 3, len(reads) - first
        assert source.store.get(Kind.QUORUM, "nomad") is not None
    finally:
        source.stop()


def test_a_leader_the_probe_sees_change_reads_the_quorum_at_once() -> None:
    source = NomadSource(Store(), NomadConfig(), poll_interval=5)
    source.store.upsert(Kind.QUORUM, Quorum("nomad", "10.0.0.1:4647", ("10.0.0.1:4647",),
                                            ("10.0.0.1:4647",)))
    source._leader_seen("10.0.0.1:4647")
    assert not source._quorum_wake.is_set()  # the same leader: no news
    source._leader_seen("")  # no leader (the probe's 500 "No cluster leader")
    assert source._quorum_wake.is_set()
    source._quorum_wake.clear()
    source._leader_seen("10.0.0.2:4647")
    assert source._quorum_wake.is_set()
