"""One host-tail opener (`sources/ssh.open_host_tail`) for the cockpit and `jamtui logs
--host`: through the lab's bastion, each unknown key on the way is put to `accept` and
recorded under the name it belongs to, the bastion's under the bastion's."""

from __future__ import annotations

import io
import re
from pathlib import Path

import paramiko
import pytest

from jamtui.config import load_config
from jamtui.inventory import load_inventory
from jamtui.logs_cli import run_host_logs
from jamtui.sim.lab import Lab
from jamtui.sources.base import BackendError
from jamtui.sources.ssh import fingerprint, known_name
from tests.conftest import FAST


def test_the_cli_trusts_the_bastions_key_under_the_bastions_name(tmp_path: Path) -> None:
    with Lab(seed=4, tick=0.2, traffic=False, **FAST) as lab:
        bastion = lab._bastion
        known = tmp_path / "known_hosts"  # nothing known yet: the bastion's key is asked first
        path = tmp_path / "jamtui.toml"
        path.write_text(lab.config_toml().replace(str(bastion.known_hosts), str(known)))
        cfg = load_config(path, env=lab.env())
        inventory = load_inventory(cfg.inventory)
        bastion_fp, host_fp = fingerprint(bastion.host_key), fingerprint(bastion.key_of("vs1"))
        bastion_name = known_name(*bastion.address)

        with pytest.raises(BackendError, match=re.escape(f"--trust {bastion_fp}")):
            run_host_logs(cfg, inventory, "vs1", unit="nomad", lines=2, out=io.StringIO())
        assert not known.exists() or not known.read_text()

        # the bastion's key accepted: recorded under its name, then the host's is asked for
        with pytest.raises(BackendError, match=re.escape(f"--trust {host_fp}")):
            run_host_logs(cfg, inventory, "vs1", unit="nomad", lines=2, trust=[bastion_fp],
                          out=io.StringIO())
        keys = paramiko.HostKeys(str(known))
        assert fingerprint(keys[bastion_name][bastion.host_key.get_name()]) == bastion_fp
        address = inventory.host("vs1").address
        assert str(address) not in keys

        out = io.StringIO()
        assert run_host_logs(cfg, inventory, "vs1", unit="nomad", lines=2,
                             trust=[host_fp], out=out) == 0
        assert "vs1 nomad[" in out.getvalue()
        keys = paramiko.HostKeys(str(known))
        assert fingerprint(keys[str(address)][bastion.key_of("vs1").get_name()]) == host_fp
