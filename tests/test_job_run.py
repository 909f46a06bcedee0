"""`jamtui job run FILE` as a process against the lab: parse → plan with the diff → ask →
register with EnforceIndex → follow; and refused when the job changed after the plan
(api-docs/jobs#parse-job, #create-job-plan, #create-job, evaluations, deployments)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from jamtui.sim.lab import Lab
from tests.conftest import CLIENT_ENV, FAST

WHOAMI = Path(__file__).resolve().parents[1] / "examples" / "whoami.nomad.hcl"


@pytest.fixture(scope="module")
def lab_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, Path]]:
    with Lab(seed=5, tick=0.2, traffic=False, **FAST) as lab:
        path = tmp_path_factory.mktemp("jobrun") / "jamtui.toml"
        path.write_text(lab.config_toml())
        yield lab, path


def env_of(lab: Lab) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k not in CLIENT_ENV}, **lab.env()}


def jamtui(args: list[str], lab: Lab, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jamtui", *args], input=stdin,
                          capture_output=True, text=True, env=env_of(lab), timeout=120)


def test_job_run_plans_asks_runs_and_follows(lab_config: tuple[Lab, Path],
                                             tmp_path: Path) -> None:
    lab, config = lab_config
    first = jamtui(["job", "run", str(WHOAMI), "--config", str(config)], lab, stdin="no\n")
    assert first.returncode == 1 and "not run" in first.stderr
    assert '+ Job: "whoami"' in first.stdout and "All tasks successfully allocated" in \
        first.stdout
    assert lab.call(lambda: "whoami" not in lab.world.jobs)

    done = jamtui(["job", "run", str(WHOAMI), "--config", str(config), "--yes"], lab)
    assert done.returncode == 0, done.stderr
    assert "deployment" in done.stderr and "successful" in done.stderr
    assert lab.call(lambda: lab.world.jobs["whoami"].version) == 0

    # a new image: the plan shows the edit and a canary; the run waits for the promotion
    changed = tmp_path / "whoami.nomad.hcl"
    changed.write_text(WHOAMI.read_text().replace("v1.10", "v1.11"))
    update = jamtui(["job", "run", str(changed), "--config", str(config), "--yes"], lab)
    assert update.returncode == 0, update.stderr
    assert 'image: "traefik/whoami:v1.10" => "traefik/whoami:v1.11"' in update.stdout
    assert "1 canary" in update.stdout
    assert "wait for promotion" in update.stderr


def test_job_changed_between_plan_and_run_is_refused(lab_config: tuple[Lab, Path],
                                                     tmp_path: Path) -> None:
    lab, config = lab_config
    spec = tmp_path / "db.nomad.hcl"
    spec.write_text(WHOAMI.read_text().replace('job "whoami"', 'job "racy"'))
    assert jamtui(["job", "run", str(spec), "--config", str(config), "--yes",
                   "--detach"], lab).returncode == 0
    spec.write_text(spec.read_text().replace("count = 2", "count = 1"))
    proc = subprocess.Popen([sys.executable, "-m", "jamtui", "job", "run", str(spec),
                             "--config", str(config)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env_of(lab))
    asked = threading.Event()
    err: list[str] = []

    def read_err() -> None:
        assert proc.stderr is not None
        while chunk := proc.stderr.read(1):
            err.append(chunk)
            if "Only 'yes' is accepted" in "".join(err):
                asked.set()

    reader = threading.Thread(target=read_err, daemon=True)
    reader.start()
    try:
        assert asked.wait(60), "".join(err)
        # someone else scales the job while the operator reads the plan
        lab.call(lab.world.scale_job, "racy", "web", 3)
        assert proc.stdin is not None
        proc.stdin.write("yes\n")
        proc.stdin.close()
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    text = "".join(err)
    assert proc.returncode == 1
    assert "the job changed since it was planned, so it was not run" in text
    assert "job exists with conflicting job modify index" in text
    assert lab.call(lambda: lab.world.jobs["racy"].groups[0].count) == 3
