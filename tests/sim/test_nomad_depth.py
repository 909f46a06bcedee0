"""The lab's Nomad API in depth, driven by python-nomad (and requests where it has no
call). Each test names the developer.hashicorp.com/nomad/api-docs page its shapes follow."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nomad
import pytest
import requests
from nomad.api import exceptions as nomad_errors

from jamtui.sim.lab import Lab
from tests.conftest import FAST
from tests.helpers import wait_for as _wait_for

WHOAMI = Path(__file__).resolve().parents[2] / "examples" / "whoami.nomad.hcl"


def wait_for(cond: Any, timeout: float = 20.0) -> Any:
    """Generous: the whole suite runs on two cores."""
    return _wait_for(cond, timeout=timeout)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(seed=3, tick=0.2, traffic=False, **FAST) as running:
        yield running


def client(lab: Lab, namespace: str | None = None) -> nomad.Nomad:
    url = lab.urls["nomad"]
    host, port = url.rsplit("//", 1)[1].split(":")
    return nomad.Nomad(host=host, port=int(port), token=lab.secrets.nomad_token,
                       namespace=namespace, timeout=5)


def call(lab: Lab, method: str, path: str, body: Any = None, **params: str
         ) -> requests.Response:
    return requests.request(method, lab.urls["nomad"] + path, json=body, params=params,
                            headers={"X-Nomad-Token": lab.secrets.nomad_token}, timeout=5)


def parsed(lab: Lab, text: str) -> dict[str, Any]:
    resp = call(lab, "POST", "/v1/jobs/parse", {"JobHCL": text, "Canonicalize": True})
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_namespaces_list_and_every_list_is_filtered_by_namespace(lab: Lab) -> None:
    """api-docs/namespaces#list-namespaces; jobs#list-jobs `namespace` (`*` for all)."""
    names = [n["Name"] for n in client(lab).namespaces.get_namespaces()]
    assert names == ["default", "staging"]
    default = {j["ID"] for j in client(lab).jobs.get_jobs()}
    every = {j["ID"]: j["Namespace"] for j in client(lab, "*").jobs.get_jobs()}
    assert "web-staging" not in default and every["web-staging"] == "staging"
    staging = call(lab, "GET", "/v1/allocations", namespace="staging").json()
    assert staging and {a["Namespace"] for a in staging} == {"staging"}
    # a job is read in its namespace: elsewhere it does not exist
    assert call(lab, "GET", "/v1/job/web-staging").status_code == 404
    assert call(lab, "GET", "/v1/job/web-staging", namespace="staging").json()["ID"] == \
        "web-staging"


def test_event_stream_follows_the_namespace_parameter(lab: Lab) -> None:
    """api-docs/events#event-stream: `namespace` filters, `*` streams all."""
    def jobs_seen(namespace: str) -> set[str]:
        resp = requests.get(lab.urls["nomad"] + "/v1/event/stream", stream=True, timeout=5,
                            params={"topic": "Job:*", "namespace": namespace, "index": "1"},
                            headers={"X-Nomad-Token": lab.secrets.nomad_token})
        seen: set[str] = set()
        for line in resp.iter_lines():
            for ev in (json.loads(line).get("Events") or []) if line else []:
                seen.add(ev["Namespace"])
            if len(seen) >= 1 and line and line != b"{}":
                break
        resp.close()
        return seen

    assert jobs_seen("staging") == {"staging"}
    assert jobs_seen("default") == {"default"}


def test_parse_the_readme_job_file_and_run_it_with_a_canary_deployment(lab: Lab) -> None:
    """api-docs/jobs#parse-job, jobs#create-job-plan (Diff, DesiredTGUpdates),
    jobs#create-job (EnforceIndex), deployments#read-deployment, #promote-deployment,
    jobs#list-job-versions (diffs), jobs#list-job-deployments."""
    spec = parsed(lab, WHOAMI.read_text())
    assert spec["ID"] == "whoami" and spec["TaskGroups"][0]["Update"]["Canary"] == 1
    assert spec["Constraints"] == [{"LTarget": "${attr.kernel.name}", "RTarget": "linux",
                                    "Operand": "="}]
    plan = call(lab, "POST", "/v1/job/whoami/plan", {"Job": spec, "Diff": True}).json()
    assert plan["JobModifyIndex"] == 0 and plan["Diff"]["Type"] == "Added"
    assert plan["Annotations"]["DesiredTGUpdates"]["web"]["Place"] == 2
    reg = client(lab).jobs.register_job({"Job": spec, "EnforceIndex": True,
                                         "JobModifyIndex": 0})
    assert reg["EvalID"]
    wait_for(lambda: client(lab).job.get_deployment("whoami")["Status"] == "successful")

    changed = copy.deepcopy(spec)
    changed["TaskGroups"][0]["Tasks"][0]["Config"]["image"] = "traefik/whoami:v1.11"
    plan = call(lab, "POST", "/v1/job/whoami/plan", {"Job": changed, "Diff": True}).json()
    updates = plan["Annotations"]["DesiredTGUpdates"]["web"]
    assert updates["Canary"] == 1 and updates["Ignore"] == 2
    task = plan["Diff"]["TaskGroups"][0]["Tasks"][0]
    assert task["Annotations"] == ["forces create/destroy update"]
    assert task["Objects"][0]["Fields"][0] == {
        "Type": "Edited", "Name": "image", "Old": "traefik/whoami:v1.10",
        "New": "traefik/whoami:v1.11", "Annotations": None}
    client(lab).job.register_job("whoami", {"Job": changed, "EnforceIndex": True,
                                            "JobModifyIndex": plan["JobModifyIndex"]})

    def awaiting() -> dict[str, Any] | None:
        d = client(lab).job.get_deployment("whoami")
        return d if "requires manual promotion" in d["StatusDescription"] else None

    dep = wait_for(awaiting)
    state = dep["TaskGroups"]["web"]
    assert (state["DesiredCanaries"], state["DesiredTotal"], state["Promoted"]) == (1, 2, False)
    assert len(state["PlacedCanaries"]) == 1
    versions = {a["JobVersion"] for a in client(lab).job.get_allocations("whoami")
                if a["ClientStatus"] == "running"}
    assert versions == {0, 1}  # the old version runs next to the canary
    resp = client(lab).deployment.promote_deployment_all(dep["ID"])
    assert resp["EvalID"] and resp["DeploymentModifyIndex"]
    wait_for(lambda: client(lab).deployment.get_deployment(dep["ID"])["Status"] ==
             "successful")
    wait_for(lambda: {a["JobVersion"] for a in client(lab).job.get_allocations("whoami")
                      if a["ClientStatus"] == "running"} == {1})
    assert len(client(lab).job.get_deployments("whoami")) == 2

    history = call(lab, "GET", "/v1/job/whoami/versions", diffs="true").json()
    assert [v["Version"] for v in history["Versions"]] == [1, 0]
    assert history["Diffs"][0]["TaskGroups"][0]["Tasks"][0]["Type"] == "Edited"

    # someone else changed the job after our plan: the register is refused with the reason
    stale = plan["JobModifyIndex"]
    refused = call(lab, "POST", "/v1/jobs", {"Job": spec, "EnforceIndex": True,
                                             "JobModifyIndex": stale})
    current = client(lab).job.get_job("whoami")["JobModifyIndex"]
    assert refused.status_code == 500
    assert refused.text == (f"Enforcing job modify index {stale}: job exists with "
                            f"conflicting job modify index: {current}")


def test_revert_enforces_the_prior_version(lab: Lab) -> None:
    """api-docs/jobs#revert-to-older-job-version (nomad/job_endpoint.go Revert texts)."""
    job = client(lab).job.get_job("api")
    job["Meta"] = {"release": "2"}
    client(lab).job.register_job("api", {"Job": job})
    cur = client(lab).job.get_job("api")["Version"]
    wrong = call(lab, "POST", "/v1/job/api/revert",
                 {"JobID": "api", "JobVersion": 0, "EnforcePriorVersion": cur + 5})
    assert wrong.status_code == 500
    assert wrong.text == f"Current job has version {cur}; enforcing version {cur + 5}"
    same = call(lab, "POST", "/v1/job/api/revert", {"JobID": "api", "JobVersion": cur})
    assert same.text == "can't revert to current version"
    ok = client(lab).job.revert_job("api", 0, enforce_prior_version=cur)
    assert ok["EvalID"]
    reverted = client(lab).job.get_job("api")
    assert reverted["Version"] == cur + 1 and not reverted.get("Meta")


def test_request_bodies_are_read_case_insensitively(lab: Lab) -> None:
    """api-docs/jobs#create-job, as Go's encoding/json matches field names."""
    missing = call(lab, "POST", "/v1/jobs", {})
    assert (missing.status_code, missing.text) == (400, "Job must be specified")
    job = client(lab).job.get_job("db")
    lower = {"job": {k.lower(): v for k, v in job.items()}}
    resp = call(lab, "POST", "/v1/jobs", lower)
    assert resp.status_code == 200, resp.text
    valid = call(lab, "POST", "/v1/validate/job", {"job": job}).json()
    assert valid["Error"] == "" and valid["ValidationErrors"] is None
    bad = copy.deepcopy(job)
    bad["TaskGroups"][0]["Tasks"] = []
    invalid = call(lab, "POST", "/v1/validate/job", {"Job": bad}).json()
    assert "Missing tasks for task group" in invalid["Error"]


def test_unplaceable_jobs_leave_a_blocked_evaluation_with_metrics(lab: Lab) -> None:
    """api-docs/evaluations#list-evaluations, #read-evaluation, jobs#list-job-evaluations:
    FailedTGAllocs is an AllocMetric; jobs#read-job-summary counts the queued."""
    text = WHOAMI.read_text().replace('"whoami"', '"hungry"', 1).replace(
        "memory = 64", "memory = 16384")
    spec = parsed(lab, text)
    plan = call(lab, "POST", "/v1/job/hungry/plan", {"Job": spec}).json()
    assert plan["FailedTGAllocs"]["web"]["DimensionExhausted"] == {
        "memory": plan["FailedTGAllocs"]["web"]["NodesExhausted"]}
    client(lab).jobs.register_job({"Job": spec})
    evals = client(lab).job.get_evaluations("hungry")
    blocked = [e for e in evals if e["Status"] == "blocked"]
    assert len(blocked) == 1
    parent = client(lab).evaluation.get_evaluation(blocked[0]["PreviousEval"])
    metric = parent["FailedTGAllocs"]["web"]
    assert parent["BlockedEval"] == blocked[0]["ID"]
    assert metric["NodesExhausted"] >= 1 and metric["CoalescedFailures"] == 1
    assert metric["NodesEvaluated"] == metric["NodesExhausted"]
    summary = client(lab).job.get_summary("hungry")
    assert summary["Summary"]["web"]["Queued"] == 2
    listed = call(lab, "GET", "/v1/evaluations", job="hungry", status="blocked").json()
    assert [e["ID"] for e in listed] == [blocked[0]["ID"]]

    windows = text.replace('"hungry"', '"winjob"', 1).replace('"linux"', '"windows"').replace(
        "memory = 16384", "memory = 64")
    client(lab).jobs.register_job({"Job": parsed(lab, windows)})
    ev = next(e for e in client(lab).job.get_evaluations("winjob") if e["FailedTGAllocs"])
    metric = ev["FailedTGAllocs"]["web"]
    assert metric["ConstraintFiltered"] == {"${attr.kernel.name} = windows":
                                            metric["NodesEvaluated"]}

    far = text.replace('"hungry"', '"farjob"', 1).replace('["*"]', '["dc2"]').replace(
        "memory = 16384", "memory = 64")
    client(lab).jobs.register_job({"Job": parsed(lab, far)})
    ev = next(e for e in client(lab).job.get_evaluations("farjob") if e["FailedTGAllocs"])
    assert ev["FailedTGAllocs"]["web"]["NodesAvailable"] == {"dc2": 0}
    assert ev["FailedTGAllocs"]["web"]["NodesEvaluated"] == 0
    for job_id in ("hungry", "winjob", "farjob"):
        client(lab).job.deregister_job(job_id, purge=True)


def test_deployment_fail_and_pause(lab: Lab) -> None:
    """api-docs/deployments#fail-deployment, #pause-deployment (and their refusals)."""
    job = client(lab).job.get_job("api")
    job["TaskGroups"][0]["Tasks"][0]["Config"]["image"] = "ghcr.io/jamfox/api:2.5"
    client(lab).job.register_job("api", {"Job": job})
    dep = wait_for(lambda: (d := client(lab).job.get_deployment("api"))
                   and d["JobVersion"] == job["Version"] + 1 and d)
    paused = call(lab, "POST", f"/v1/deployment/pause/{dep['ID']}",
                  {"DeploymentID": dep["ID"], "Pause": True})
    assert paused.status_code == 200
    assert client(lab).deployment.get_deployment(dep["ID"])["Status"] == "paused"
    refused = call(lab, "POST", f"/v1/deployment/promote/{dep['ID']}", {"All": True})
    assert refused.status_code == 500
    client(lab).deployment.pause_deployment(dep["ID"], pause=False)
    assert client(lab).deployment.get_deployment(dep["ID"])["Status"] == "running"
    failed = client(lab).deployment.fail_deployment(dep["ID"])
    assert failed["EvalID"]
    d = client(lab).deployment.get_deployment(dep["ID"])
    assert (d["Status"], d["StatusDescription"]) == ("failed", "Deployment marked as failed")
    again = call(lab, "POST", f"/v1/deployment/fail/{dep['ID']}", {})
    assert (again.status_code, again.text) == (500, "can't fail terminal deployment")
    listed = client(lab).deployments.get_deployments()
    assert dep["ID"] in {x["ID"] for x in listed}


def test_allocation_and_client_stats_move_with_the_load(lab: Lab) -> None:
    """api-docs/client#read-allocation-statistics and #read-stats."""
    alloc = next(a for a in client(lab).allocations.get_allocations()
                 if a["ClientStatus"] == "running" and a["JobID"] == "db")
    first = client(lab).client.allocation.read_allocation_stats(alloc["ID"])
    task = first["Tasks"]["postgres"]["ResourceUsage"]
    assert {"RSS", "Cache", "Swap", "Usage", "MaxUsage", "Measured"} <= set(task["MemoryStats"])
    assert {"Percent", "TotalTicks", "UserMode", "SystemMode"} <= set(task["CpuStats"])
    assert 0 < task["MemoryStats"]["RSS"] <= 512 * 1024**2
    wait_for(lambda: client(lab).client.allocation.read_allocation_stats(alloc["ID"])
             ["Tasks"]["postgres"]["ResourceUsage"]["CpuStats"]["TotalTicks"]
             != task["CpuStats"]["TotalTicks"])
    missing = call(lab, "GET", "/v1/client/stats")
    assert (missing.status_code, missing.text) == (400, "No local Node and node_id not provided")
    stats = client(lab).client.stats.read_stats(node_id=alloc["NodeID"])
    assert stats["CPU"][0]["CPU"] == "cpu0" and stats["Memory"]["Total"] > stats["Memory"][
        "Used"] > 0
    assert stats["DiskStats"][0]["Mountpoint"] == "/"


def test_read_only_token_may_read_but_not_promote(lab: Lab) -> None:
    """The ACL each new endpoint declares (api-docs: "ACL Required")."""
    ro = {"X-Nomad-Token": lab.secrets.nomad_read_token}
    base = lab.urls["nomad"]
    assert requests.get(f"{base}/v1/deployments", headers=ro, timeout=5).status_code == 200
    assert requests.get(f"{base}/v1/namespaces", headers=ro, timeout=5).status_code == 200
    dep = client(lab).deployments.get_deployments()[0]
    resp = requests.post(f"{base}/v1/deployment/fail/{dep['ID']}", headers=ro, timeout=5)
    assert (resp.status_code, resp.text) == (403, "Permission denied")
    assert requests.post(f"{base}/v1/jobs/parse", headers=ro, timeout=5,
                         json={"JobHCL": "job \"x\" {}"}).status_code == 403


def test_parse_errors_are_in_words(lab: Lab) -> None:
    """api-docs/jobs#parse-job: a bad file is a 400 with the parser's reason."""
    resp = call(lab, "POST", "/v1/jobs/parse", {"JobHCL": "job \"x\" {"})
    assert resp.status_code == 400 and resp.text.startswith("error parsing")
    with pytest.raises(nomad_errors.BaseNomadException):
        client(lab).job.plan_job("nope", {"Job": None})


def test_stats_reads_keep_one_connection(lab: Lab, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Nomad (Go net/http) keeps an HTTP/1.1 connection open between requests: the cockpit's
    stats reads (one per allocation on screen, in turns) go over one connection, a refused
    one too, not a new connection each (#17)."""
    import urllib3.connection

    from jamtui.config import load_config
    from jamtui.sources.base import BackendError
    from jamtui.sources.nomad import NomadSource
    from jamtui.store import Store

    path = tmp_path / "jamtui.toml"
    path.write_text(lab.config_toml())
    src = NomadSource(Store(), load_config(path, env=lab.env()).nomad)
    connects: list[int] = []
    connect = urllib3.connection.HTTPConnection.connect

    def counting(self: Any) -> None:
        connects.append(self.port)
        connect(self)

    allocs = client(lab).allocations.get_allocations()
    running = [a["ID"] for a in allocs if a["ClientStatus"] == "running"][:4]
    monkeypatch.setattr(urllib3.connection.HTTPConnection, "connect", counting)
    for alloc_id in running * 2:
        assert src.alloc_stats(alloc_id)
    with pytest.raises(BackendError):  # an allocation the cluster does not know
        src.alloc_stats("00000000-0000-0000-0000-000000000000")
    assert src.node_stats(allocs[0]["NodeID"])
    assert src.alloc_stats(running[0])
    port = int(lab.urls["nomad"].rsplit(":", 1)[1])  # (the lab's own clients aside)
    assert connects.count(port) == 1, connects
