"""The stand-in W&B server (tests/wandb_server.py), driven by the real wandb SDK online.

Every wandb process is a real subprocess (``wandb.init`` ... ``finish``, ``wandb sync``, and
a reader on ``wandb.Api``) in an isolated W&B setup pointed at the ``wandb_server`` fixture.
The flows run once, in order, in the module fixture ``flows``, which keeps the requests each
flow made; the tests check what the Api reads back against what was logged.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from helpers import isolate

for _module in ("graphql", "flask"):
    pytest.importorskip(_module, reason=f"{__name__} needs {_module}: pip install graphql-core "
                                        f"flask (the stand-in W&B server is built on them)")

from wandb_server import serving  # noqa: E402

pytestmark = pytest.mark.slow  # real runs in subprocesses (docs/development.md)

PROJECT = "standin-flows"
SYNCED = "standin-synced"
N_ROWS = 200
CHECKPOINTS = (49, 99, 149, 199)  # versions v0..v3

# One flow a call: argv[1] is the flow, argv[2] a JSON object of its arguments; the last
# stdout line is a JSON object of what the test needs to know.
WRITER = r"""
import json, os, sys
import wandb

flow, args = sys.argv[1], json.loads(sys.argv[2])
P, E = args.get("project"), args.get("entity")
out = {}

def checkpoint(run, step, aliases):
    with open("checkpoint.json", "w") as f:
        json.dump({"step": step, "iter_num": step + 1}, f)
    art = wandb.Artifact(f"run-{run.id}-checkpoint", type="checkpoint", metadata={"step": step})
    art.add_file("checkpoint.json")
    run.log_artifact(art, aliases=aliases)

if flow == "log":
    run = wandb.init(project=P, entity=E, config={"lr": 0.1, "layers": [64, 32],
                                                  "opt": {"name": "adam"}})
    run.define_metric("global_step")
    run.define_metric("*", step_metric="global_step")
    for step in range(args["rows"]):
        run.log({"loss": 1.0 / (step + 1), "global_step": step + 1000}, step=step)
        if step in args["checkpoints"]:
            checkpoint(run, step, [f"step-{step}", "latest"])
    checkpoint(run, args["checkpoints"][-1], ["again"])  # the same content: no new version
    run.summary["best"] = 0.005
    run.finish()
    out = {"id": run.id, "name": run.name}
elif flow == "use":
    run = wandb.init(project=P, entity=E)
    by_name = run.use_artifact(f"{E}/{P}/run-{args['root']}-checkpoint:v3", type="checkpoint")
    by_object = run.use_artifact(wandb.Api().artifact(
        f"{E}/{P}/run-{args['root']}-checkpoint:step-49"))
    run.log({"loss": 0.5}, step=0)
    run.finish()
    out = {"id": run.id, "by_name": [by_name.version, by_name.metadata],
           "by_object": [by_object.version, by_object.metadata]}
elif flow == "fail":
    run = wandb.init(project=P, entity=E)
    for step in range(20):
        run.log({"loss": 1.0 / (step + 1)}, step=step)
    run.finish()
    out["finished"] = run.id
    run = wandb.init(project=P, entity=E)
    run.log({"loss": 2.0}, step=0)
    print(json.dumps({**out, "failed": run.id}), flush=True)
    raise RuntimeError("this run fails")
elif flow == "crash":
    run = wandb.init(project=P, entity=E)
    run.log({"loss": 3.0}, step=0)
    print(json.dumps({"crashed": run.id}), flush=True)
    os._exit(5)
elif flow in ("fork", "rewind", "resume"):
    where = {"fork": {"fork_from": f"{args['run']}?_step={args.get('step')}"},
             "rewind": {"resume_from": f"{args['run']}?_step={args.get('step')}"},
             "resume": {"id": args["run"], "resume": "must"}}[flow]
    run = wandb.init(project=P, entity=E, **where)
    for step in args["steps"]:
        run.log({"loss": -float(step)}, step=step)
    run.finish()
    out = {"id": run.id}
elif flow == "missing":
    try:
        wandb.init(project=P, entity=E, id="nosuchrun", resume="must")
    except Exception as error:
        out = {"error": type(error).__name__, "message": str(error)}
elif flow == "offline":
    run = wandb.init(project=P, mode="offline", config={"lr": 0.5})
    for step in range(30):
        run.log({"loss": 2.0 / (step + 1)}, step=step)
    checkpoint(run, 29, ["step-29", "latest"])
    run.summary["best"] = 0.25
    run.finish()
    out = {"id": run.id, "dir": os.path.dirname(run.dir)}
print(json.dumps(out))
"""

# Reads everything back through wandb.Api (in a cache folder of its own, so artifact files
# come from the server); argv[1] is a JSON object of the ids to read.
READER = r"""
import json, os, sys, tempfile, urllib.request
import wandb

ids = json.loads(sys.argv[1])
E, P, S = ids["entity"], ids["project"], ids["synced_project"]
base = os.environ["WANDB_BASE_URL"]

def requests():
    with urllib.request.urlopen(base + "/_standin/requests") as r:
        return json.load(r)

def rows(run, **kw):
    return [{k: v for k, v in row.items() if k not in ("_runtime", "_timestamp")}
            for row in run.scan_history(**kw)]

def art(a):
    return {"name": a.name, "version": a.version, "aliases": sorted(a.aliases),
            "metadata": a.metadata, "type": a.type, "logged_by": a.logged_by().id,
            "entries": sorted(a.manifest.entries)}

api = wandb.Api()
out = {"entity": api.default_entity, "viewer": api.viewer.username}
before = len(requests())
out["paged"] = [r.id for r in api.runs(f"{E}/{P}", per_page=2, lazy=False)]
out["paged_ops"] = [r["operation"] for r in requests()[before:]]

runs = {}
for key in ("root", "child", "finished", "failed", "fork"):
    run = api.run(f"{E}/{P}/{ids[key]}")
    runs[key] = run
    out[key] = {"name": run.name, "state": run.state, "config": run.config,
                "raw_wandb": run.rawconfig.get("_wandb"), "summary": dict(run.summary_metrics),
                "last_step": run.lastHistoryStep, "lines": run.historyLineCount,
                "rows": rows(run), "logged": [art(a) for a in run.logged_artifacts()],
                "used": [art(a) for a in run.used_artifacts()]}
root = runs["root"]
out["root"]["rawconfig_keys"] = sorted(root.rawconfig)
out["root"]["scan_keys"] = rows(root, keys=["loss"], min_step=10, max_step=20, page_size=4)
out["root"]["history"] = root.history(pandas=False, samples=1000)

name = f"{E}/{P}/run-{ids['root']}-checkpoint"
for ref in ("v3", "latest", "step-49", "again"):
    out[ref] = art(api.artifact(f"{name}:{ref}"))
v3 = api.artifact(f"{name}:v3")
out["used_by_v3"] = [r.id for r in v3.used_by()]
entry_dir, all_dir = tempfile.mkdtemp(), tempfile.mkdtemp()
with open(v3.get_entry("checkpoint.json").download(root=entry_dir)) as f:
    out["entry_content"] = json.load(f)
v0 = api.artifact(f"{name}:step-49")
v0.download(root=all_dir)
out["download"] = {p: json.load(open(os.path.join(all_dir, p))) for p in os.listdir(all_dir)}

api.run(f"{E}/{P}/{ids['fork']}").use_artifact(v0)  # the public Run links an edge
out["fork_used_after_link"] = [a.name for a in api.run(f"{E}/{P}/{ids['fork']}").used_artifacts()]

synced = api.run(f"{E}/{S}/{ids['synced']}")
out["synced"] = {"state": synced.state, "config": synced.config,
                 "summary": dict(synced.summary_metrics), "rows": rows(synced),
                 "logged": [art(a) for a in synced.logged_artifacts()]}
sa = synced.logged_artifacts()[0]
sync_dir = tempfile.mkdtemp()
sa.download(root=sync_dir)
out["synced"]["content"] = json.load(open(os.path.join(sync_dir, "checkpoint.json")))
print(json.dumps(out))
"""


def sdk(env: dict, code: str, *args: str, ok: bool = True) -> dict:
    """Run ``code`` in a python subprocess; returns the JSON of its last stdout line."""
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, timeout=600)  # a hung wandb ends, not stalls the suite
    assert (proc.returncode == 0) == ok, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def writer(env: dict, flow: str, ok: bool = True, **args) -> dict:
    return sdk(env, WRITER, flow, json.dumps(args), ok=ok)


def ops(requests: list[dict]) -> list[str]:
    return [r["operation"] for r in requests]


def own(requests: list[dict]) -> list[dict]:
    """The requests but the SDK's telemetry (``/sdk/otel``), which a wandb-core process may
    still send after the flow that started it."""
    return [r for r in requests if not r["operation"].startswith("POST /sdk/otel/")]


@pytest.fixture(scope="module")
def flows(wandb_server, tmp_path_factory):
    """Runs flows 1-4 once against the server; returns the ids made, what the writers
    printed, each flow's requests (``requests[flow]``) and what the reader read back."""
    server = wandb_server
    with pytest.MonkeyPatch.context() as mp:
        base = tmp_path_factory.mktemp("flows")
        isolate(mp, base, mode="online")
        env = server.env(dict(os.environ))
        where = {"project": PROJECT, "entity": server.entity}
        made, requests = {"entity": server.entity, "project": PROJECT, "synced_project": SYNCED}, {}

        def flow(name: str, *args, **kwargs) -> dict:
            server.clear()
            result = writer(env, name, *args, **where, **kwargs)
            requests[name] = own(server.requests())
            return result

        made["log"] = flow("log", rows=N_ROWS, checkpoints=list(CHECKPOINTS))
        made["root"] = made["log"]["id"]
        made["use"] = flow("use", root=made["root"])
        made["child"] = made["use"]["id"]
        made.update(flow("fail", ok=False))
        made["fork"] = flow("fork", run=made["root"], step=99, steps=list(range(100, 105)))["id"]
        flow("resume", run=made["fork"], steps=list(range(105, 110)))
        made["missing"] = flow("missing")
        flow("rewind", run=made["finished"], step=9, steps=list(range(10, 15)))

        offline = {**env, "WANDB_MODE": "offline"}
        made["offline"] = writer(offline, "offline", project=SYNCED)
        made["synced"] = made["offline"]["id"]
        for name in ("sync", "sync again"):
            server.clear()
            proc = subprocess.run([sys.executable, "-m", "wandb", "sync", made["offline"]["dir"],
                                   "--entity", server.entity, "--project", SYNCED],
                                  env=env, capture_output=True, text=True, timeout=600)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            requests[name] = own(server.requests())

        server.clear()
        reader_env = {**env, "WANDB_CACHE_DIR": str(base / "reader_cache")}
        read = sdk(reader_env, READER, json.dumps(made))
        requests["read"] = own(server.requests())
    return {"made": made, "requests": requests, "read": read}


def logged_rows(steps) -> list[dict]:
    return [{"_step": s, "loss": 1.0 / (s + 1), "global_step": s + 1000} for s in steps]


# -- flow 1: log, config, summary, artifacts ------------------------------------------

def test_history_config_and_summary_come_back_as_logged(flows):
    root = flows["read"]["root"]
    assert root["rows"] == logged_rows(range(N_ROWS))
    assert root["last_step"] == N_ROWS - 1 and root["lines"] == N_ROWS
    assert root["config"] == {"lr": 0.1, "layers": [64, 32], "opt": {"name": "adam"}}
    assert root["rawconfig_keys"] == ["_wandb", "layers", "lr", "opt"]
    assert {k: root["summary"][k] for k in ("best", "loss", "global_step", "_step")} == \
        {"best": 0.005, "loss": 1.0 / N_ROWS, "global_step": N_ROWS - 1 + 1000,
         "_step": N_ROWS - 1}
    # define_metric: W&B keeps the definitions in the config's _wandb.m
    assert {"1": "global_step"}.items() <= root["raw_wandb"]["m"][0].items()
    assert {"2": "*", "5": 1}.items() <= root["raw_wandb"]["m"][1].items()  # 5: the step's
    assert root["state"] == "finished"
    assert root["name"] == flows["made"]["log"]["name"]  # the display name the server made


def test_scan_history_by_keys_and_steps_and_history(flows):
    root = flows["read"]["root"]
    assert root["scan_keys"] == [{"_step": s, "loss": 1.0 / (s + 1)} for s in range(10, 20)]
    history = [{k: v for k, v in row.items() if k not in ("_runtime", "_timestamp")}
               for row in root["history"]]
    assert history == root["rows"]


def test_checkpoints_are_versions_with_aliases_metadata_and_content(flows):
    read, root_id = flows["read"], flows["made"]["root"]
    name = f"run-{root_id}-checkpoint"
    logged = read["root"]["logged"]
    assert [(a["version"], a["metadata"]) for a in logged] == \
        [(f"v{i}", {"step": s}) for i, s in enumerate(CHECKPOINTS)]
    assert logged[0]["aliases"] == ["step-49"]
    # the same content logged again is the same version: v3 gets the new alias, no v4
    assert logged[3]["aliases"] == ["again", "latest", "step-199"]
    for ref, version in (("v3", "v3"), ("latest", "v3"), ("again", "v3"), ("step-49", "v0")):
        artifact = read[ref]
        assert artifact["name"] == f"{name}:{ref}" and artifact["version"] == version
        assert artifact["type"] == "checkpoint"
        assert artifact["logged_by"] == root_id and artifact["entries"] == ["checkpoint.json"]
    assert read["entry_content"] == {"step": 199, "iter_num": 200}
    assert read["download"] == {"checkpoint.json": {"step": 49, "iter_num": 50}}


def test_used_artifacts_are_edges_both_ways(flows):
    read, made = flows["read"], flows["made"]
    assert made["use"]["by_name"] == ["v3", {"step": 199}]
    assert made["use"]["by_object"] == ["v0", {"step": 49}]
    assert [a["version"] for a in read["child"]["used"]] == ["v3", "v0"]
    assert read["used_by_v3"] == [made["child"]]
    assert read["root"]["used"] == []
    assert read["fork_used_after_link"] == [f"run-{made['root']}-checkpoint:v0"]


def test_a_finished_and_a_failed_run(flows):
    read = flows["read"]
    assert read["finished"]["state"] == "finished"
    assert read["failed"]["state"] == "failed"
    assert read["failed"]["rows"] == [{"_step": 0, "loss": 2.0}]


# -- flow 2: resume, rewind, fork -------------------------------------------------------

def test_a_fork_starts_after_its_branch_step_and_holds_only_its_own_rows(flows):
    fork = flows["read"]["fork"]
    # forked at 99: its own rows 100..104, then 105..109 from its resume="must"
    assert fork["rows"] == [{"_step": s, "loss": -float(s)} for s in range(100, 110)]
    assert fork["last_step"] == 109 and fork["lines"] == 10
    # the fork's branch point was in its config until the resume: wandb-core sends the
    # resumed run's own _wandb (keeping only a few old keys) and the upsert replaces it
    assert "branch_point" not in fork["raw_wandb"]


def test_resume_must_continues_and_a_missing_run_fails_as_on_wandb(flows):
    requests = flows["requests"]
    assert ops(requests["resume"]).count("RunResumeStatus") == 1
    missing = flows["made"]["missing"]
    assert missing["error"] == "UsageError" and "nosuchrun" in missing["message"]
    assert "UpsertBucket" not in ops(requests["missing"])


def test_rewind_truncates_after_its_step_and_the_run_continues_there(flows):
    rewound = flows["read"]["finished"]
    assert rewound["rows"] == [{"_step": s, "loss": 1.0 / (s + 1)} for s in range(10)] + \
        [{"_step": s, "loss": -float(s)} for s in range(10, 15)]
    assert rewound["last_step"] == 14 and rewound["lines"] == 15
    assert rewound["raw_wandb"]["branch_point"] == {
        "run_id": flows["made"]["finished"], "step": 9}
    assert rewound["state"] == "finished"
    assert ops(flows["requests"]["rewind"]).count("RewindRun") == 1
    assert "RunResumeStatus" not in ops(flows["requests"]["fork"])
    assert "RewindRun" not in ops(flows["requests"]["fork"])


# -- flow 3: the Api ------------------------------------------------------------------

def test_runs_are_listed_in_pages_in_creation_order(flows):
    read, made = flows["read"], flows["made"]
    assert read["entity"] == read["viewer"] == made["entity"]
    assert read["paged"] == [made[k] for k in ("root", "child", "finished", "failed", "fork")]
    assert read["paged_ops"].count("Runs") == 3  # five runs, two a page


# -- flow 4: wandb sync ---------------------------------------------------------------

def test_sync_uploads_an_offline_run_once(flows):
    synced, requests = flows["read"]["synced"], flows["requests"]
    assert synced["rows"] == [{"_step": s, "loss": 2.0 / (s + 1)} for s in range(30)]
    assert synced["config"] == {"lr": 0.5}
    assert synced["summary"]["best"] == 0.25 and synced["state"] == "finished"
    assert [(a["version"], a["aliases"], a["metadata"]) for a in synced["logged"]] == \
        [("v0", ["latest", "step-29"], {"step": 29})]
    assert synced["content"] == {"step": 29, "iter_num": 30}
    sent = ops(requests["sync"])
    for op in ("UpsertBucket", "CreateArtifact", "CommitArtifact", "CreateRunFiles",
               "POST /files/{entity}/{project}/{run}/file_stream"):
        assert op in sent, sent
    assert requests["sync again"] == []  # wandb's .synced marker: nothing is sent again


# -- the requests ---------------------------------------------------------------------

def test_every_flow_got_only_answers(flows):
    for name, requests in flows["requests"].items():
        failed = [r for r in requests if r["status"] >= 400 or r["error"]]
        assert not failed, (name, failed)


def test_each_flow_sends_what_it_should(flows):
    sent = {name: ops(requests) for name, requests in flows["requests"].items()}
    assert sent["log"].count("CreateArtifact") == len(CHECKPOINTS) + 1
    assert sent["log"].count("CommitArtifact") == len(CHECKPOINTS)  # the duplicate is not
    assert sent["use"].count("UseArtifact") == 2
    assert "PUT /_standin/blobs/{key}" in sent["log"]
    # get_entry().download builds an artifactsV2 URL; download() takes the directUrls
    assert "GET /artifactsV2/{region}/{entity}/{project}/{collection}/{birth}/{hexhash}/" \
           "{name}" in sent["read"] and "GET /_standin/blobs/{key}" in sent["read"]


def post(server, path: str, body: dict | None = None, key: str | None = None):
    request = urllib.request.Request(server.base_url + path, data=json.dumps(body).encode()
                                     if body is not None else None, method="POST",
                                     headers={"Content-Type": "application/json"})
    auth = base64.b64encode(f"api:{key or server.api_key}".encode()).decode()
    request.add_header("Authorization", f"Basic {auth}")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.refuses
def test_unknown_fields_and_routes_are_400s_naming_them_and_short_keys_401(wandb_server):
    server = wandb_server
    server.clear()
    status, body = post(server, "/graphql", {"query": "query Probe { viewer { id shoeSize } }"})
    assert status == 400 and "shoeSize" in body["errors"][0]["message"]
    status, body = post(server, "/graphql", {"query": "{ launchRocket { id } }"})
    assert status == 400 and "launchRocket" in body["errors"][0]["message"]
    status, body = post(server, "/api/v2/nothing-here", {})
    assert status == 400 and "POST /api/v2/nothing-here" in body["errors"][0]["message"]
    status, _ = post(server, "/graphql", {"query": "{ viewer { id } }"}, key="short")
    assert status == 401
    status, body = post(server, "/graphql", {"query": "query Me { viewer { entity } }"})
    assert status == 200 and body == {"data": {"viewer": {"entity": server.entity}}}
    assert [(r["operation"], r["status"]) for r in own(server.requests())] == [
        ("Probe", 400), ("launchRocket", 400), ("POST /api/v2/nothing-here", 400),
        ("POST /graphql", 401), ("Me", 200)]
    server.clear()


def test_introspection_answers_from_the_schema_served(wandb_server):
    query = '{ __type(name: "Artifact") { fields { name } } }'
    status, body = post(wandb_server, "/graphql", {"query": query})
    fields = {f["name"] for f in body["data"]["__type"]["fields"]}
    assert status == 200 and {"id", "digest", "aliases", "currentManifest"} <= fields
    assert "ttlIsInherited" in fields and "artifactCollectionMembership" not in fields
    wandb_server.clear()


def test_a_run_whose_process_died_is_crashed_and_the_server_stops_cleanly(tmp_path,
                                                                          monkeypatch):
    isolate(monkeypatch, tmp_path, mode="online")
    with serving(tmp_path / "server", "--crash-after", "0") as server:
        env = server.env(dict(os.environ))
        crashed = writer(env, "crash", ok=False, project=PROJECT, entity=server.entity)
        state = sdk(env, "import json, sys, wandb\n"
                         "print(json.dumps(wandb.Api().run(sys.argv[1]).state))",
                    f"{server.entity}/{PROJECT}/{crashed['crashed']}")
    assert state == "crashed"
    assert server.process.returncode == 0  # SIGTERM ends it as a clean exit


def test_latency_holds_each_request_and_requests_are_counted_by_operation(tmp_path):
    """``--latency-ms`` holds every request to the SDK's routes that long (W&B's round trip,
    for benchmarks); ``GET /_requests`` counts what was served, by operation, and is itself
    neither held nor counted."""
    with serving(tmp_path, "--latency-ms", "300") as server:
        assert json.load(urllib.request.urlopen(server.base_url + "/_requests")) == {
            "total": 0, "by_operation": {}}
        held = []
        for name in ("Me", "Me", "Again"):
            start = time.monotonic()
            status, _ = post(server, "/graphql", {"query": f"query {name} {{ viewer {{ entity }} }}"})
            held.append(time.monotonic() - start)
            assert status == 200
        assert min(held) >= 0.3  # a lower bound: the stand-in slept before answering
        counted = json.load(urllib.request.urlopen(server.base_url + "/_requests"))
        assert counted == {"total": 3, "by_operation": {"Me": 2, "Again": 1}}
