"""Nomad's placement metrics and job diffs in words (pure functions over the documented
JSON: api-docs/evaluations AllocMetric, nomad/structs/diff.go JobDiff)."""

from __future__ import annotations

from jamtui.sources.nomad_depth import (
    decode_alloc_stats,
    diff_lines,
    pending_reasons,
    sparkline,
    why_pending,
)


def test_failed_allocation_metrics_in_words() -> None:
    memory = {"NodesEvaluated": 3, "NodesExhausted": 3, "DimensionExhausted": {"memory": 3},
              "NodesAvailable": {"dc1": 3}, "CoalescedFailures": 0}
    assert pending_reasons(memory, need_mib=4096) == [
        "no node has 4 GiB of free memory (3 nodes exhausted on memory)"]
    constraint = {"NodesEvaluated": 3, "NodesFiltered": 3,
                  "ConstraintFiltered": {"${attr.kernel.name} = windows": 3}}
    assert pending_reasons(constraint) == [
        "constraint `${attr.kernel.name} = windows` filtered 3 nodes"]
    nowhere = {"NodesEvaluated": 0, "NodesAvailable": {"dc2": 0}, "CoalescedFailures": 2}
    assert pending_reasons(nowhere) == ["no node in datacenter dc2; 3 allocations wait"]
    assert pending_reasons({"NodesInPool": 2}) == ["no node was evaluated"]


def test_why_pending_needs_a_blocked_evaluation() -> None:
    failed = {"Status": "complete", "ModifyIndex": 5, "FailedTGAllocs": {"web": {
        "NodesEvaluated": 1, "NodesExhausted": 1, "DimensionExhausted": {"cpu": 1}}}}
    job = {"TaskGroups": [{"Name": "web", "Tasks": [{"Resources": {"CPU": 900,
                                                                   "MemoryMB": 64}}]}]}
    assert why_pending([failed], job) == {}  # placed since: no blocked evaluation waits
    assert why_pending([failed, {"Status": "blocked", "ModifyIndex": 6}], job) == {
        "web": ["no node has 900 MHz of free CPU (1 node exhausted on cpu)"]}


def test_job_diff_reads_like_nomad_job_history_p() -> None:
    diff = {"Type": "Edited", "ID": "web", "Fields": [
        {"Type": "Added", "Name": "Meta[release]", "Old": "", "New": "2"}],
        "TaskGroups": [{"Type": "Edited", "Name": "web", "Updates": {"canary": 1},
                        "Fields": [{"Type": "Edited", "Name": "Count", "Old": "2", "New": "3"}],
                        "Tasks": [{"Type": "Edited", "Name": "server",
                                   "Annotations": ["forces create/destroy update"],
                                   "Objects": [{"Type": "Edited", "Name": "Config", "Fields": [
                                       {"Type": "Edited", "Name": "image", "Old": "a:1",
                                        "New": "a:2"}]}]}]}]}
    assert diff_lines(diff) == [
        '~ Job: "web"',
        '+ Meta[release]: "2"',
        '~ Task Group: "web" (1 canary)',
        '  ~ Count: "2" => "3"',
        '  ~ Task: "server" (forces create/destroy update)',
        "    ~ Config {",
        '      ~ image: "a:1" => "a:2"',
        "      }",
    ]
    assert diff_lines({"Type": "None"}) == ["(no changes)"]


def test_stats_decode_and_sparkline() -> None:
    stats = {"Tasks": {"t": {"ResourceUsage": {
        "MemoryStats": {"RSS": 0, "Usage": 2048, "Measured": ["Usage"]},
        "CpuStats": {"TotalTicks": 12.5}}}}}
    assert decode_alloc_stats(stats) == {"t": (12.5, 2048)}  # cgroups v2: Usage only
    assert sparkline([0, 1, 2]) == "▁▄█"
