"""A stand-in of the W&B server on 127.0.0.1, for the REAL wandb SDK (0.31) in online mode.

    python tests/wandb_server.py --port 0 [--data DIR] [--crash-after SECONDS] [--latency-ms N]

prints ``WANDB_BASE_URL=http://127.0.0.1:<port>`` and ``WANDB_ENTITY=<entity>`` (its first two
lines) and serves until SIGTERM or SIGINT. Point the SDK at it with ``WANDB_BASE_URL``,
``WANDB_API_KEY`` (any key of 40+ characters: wandb sends HTTP basic auth ``api:<key>``;
other keys get 401) and ``WANDB_MODE=online``. ``serving(data_dir)`` below starts it as a
subprocess for tests (the ``wandb_server`` fixture in conftest.py). State is in memory;
uploaded files go under ``--data DIR`` (a temporary folder, removed at exit, if not given).
``--latency-ms N`` holds every request to the SDK's routes N ms before answering, as W&B's
round trip would (its own ``/_standin/`` and ``/_requests`` routes answer at once; ``PUT
/_standin/latency`` with ``{"ms": N}`` changes it, so a benchmark logs its runs unheld);
``GET /_requests`` answers ``{"total": N, "by_operation": {...}}``, the requests served so
far (the SDK's telemetry left out), for benchmarks (``benchmarks/bench_online.py``).

GraphQL is parsed, validated and executed by graphql-core against
``wandb_server_schema.graphql``: exactly the subset of W&B's schema that the installed wandb
(its wandb-core binary, and the public Api's query text it forwards) sends in these flows,
answered by the resolvers in ``wandb_server_model.py`` (what the stand-in holds).
Introspection (``__type``, ``__schema``) answers from that schema. What each flow sends
(GraphQL operation names, then HTTP routes):

- ``wandb.init`` / ``log`` / ``finish``: ``Viewer``, ``UpsertBucket``,
  ``OrganizationCoreWeaveOrganizationID``, ``ServerFeaturesQuery`` (no features: the SDK
  takes the paths older servers have), ``CreateRunFiles``; ``POST
  /files/{entity}/{project}/{run}/file_stream``
  (history, summary, system events, console output, ``complete`` and ``exitcode``),
  ``PUT /_standin/blobs/{key}`` (wandb-metadata.json, config.yaml, requirements.txt ...),
  ``POST /sdk/otel/v1/{metrics,logs}`` (the SDK's own telemetry, accepted and dropped, no key:
  it sends none; ``WANDB_ERROR_REPORTING=false`` turns it off);
- ``log_artifact``: ``ArtifactType``, ``CreateArtifact`` (versions v0, v1... per collection;
  a digest the collection has is that version, with the new aliases, and nothing more is
  sent), ``CreateArtifactManifest`` (twice), ``CreateArtifactFiles`` (a file whose md5 a
  version of the collection has needs no upload), the file and manifest PUTs,
  ``CommitArtifact`` (``latest`` moves to the new version, the other aliases given too);
- ``use_artifact``: ``ArtifactMembershipByName``, ``UseArtifact``;
- ``resume="must"``: ``RunResumeStatus`` (null for a missing run, which the SDK turns into
  its UsageError); ``resume_from`` (rewind): ``RewindRun``, which drops the history after
  the step; ``fork_from``: nothing of its own: a new run, whose history holds only its own
  rows from the branch step + 1;
- ``wandb.Api``: ``GetDefaultEntity``, ``GetViewer``, ``Runs`` (paged, by creation), ``Run``,
  ``RunHistoryKeys`` (``lastHistoryStep``), ``RunParquetHistory`` (no parquet files: every
  row is live), ``HistoryPage`` / ``SampledHistoryPage`` (scan_history without / with keys),
  ``RunFullHistory`` (``history()``), ``RunOutputArtifacts``, ``RunInputArtifacts``,
  ``ArtifactCreatedBy``, ``ArtifactUsedBy``, ``FetchArtifactManifest``,
  ``GetArtifactMembershipFileUrls``, ``UseArtifact`` (the public Run's); ``GET
  /artifactsV2/...`` (a file by md5, as ``get_entry().download`` builds it), ``GET
  /_standin/blobs/{key}`` (the ``directUrl`` handed out);
- ``wandb sync``: as ``wandb.init`` ... ``finish`` with its artifacts; nothing the second time.

Run state: ``running`` from the first upsert (again once a resumed or rewound run streams),
``finished`` / ``failed`` from file_stream's ``complete`` and ``exitcode``, ``crashed`` for
a running run whose file_stream went quiet for ``--crash-after`` seconds (W&B's heartbeat
timeout; wandb-core beats every 30 s). Config is kept as the SDK sends it (``{"key":
{"value": ...}}``, ``_wandb`` included) and each upsert replaces it; the summary is the last
line of ``wandb-summary.json``; a run with no name given gets one, adjective-noun-N.

Not modeled: history sampling (``samples`` only caps), parquet exports, run filters and
orders other than creation, permissions, teams and organizations, registries and portfolios
(``LinkArtifact``), sweeps, multipart uploads, artifact TTLs, tags, deletion and storage
regions, W&B's hidden copy of a rewound run's old history.

Fails loudly: a GraphQL operation, field, argument or input field not in the schema is an
HTTP 400 whose body is graphql-core's error naming it; a resolver's refusal (a run or
artifact that does not exist where W&B would fail) is a 400 naming it; so is any route not
served, naming the method and path, and any request the stand-in cannot handle. Every
failure is written to stderr too.

The server's own routes are under ``/_standin/`` and need no key: ``GET /_standin/requests``
(every request so far, as ``{"n", "operation", "status", "error"}``: ``n`` numbers the
requests from 1 and is never reset, the operation is the GraphQL operation name,
or its top-level fields when it has none, or ``METHOD /route/{pattern}``),
``POST /_standin/requests/clear`` (empties that list), ``GET /_standin/refused`` (every
request answered 400 or more, which a clear keeps: what the tests' ``nothing_refused``
guard checks), and ``PUT`` / ``GET /_standin/blobs/{key}``: the upload
and download URLs handed to the SDK (as W&B hands out signed storage URLs).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import gzip
import hashlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from pathlib import Path
from typing import Any, Iterator

from wandb_server_model import Refused, Store, make_schema

API_KEY = "standin0" * 5  # 40 characters, what a W&B key has


def describe(error) -> str:
    """A GraphQL error as one line: what failed, where, and (from a resolver) its kind."""
    cause = error.original_error
    if cause is not None and not isinstance(cause, Refused):
        traceback.print_exception(cause, file=sys.stderr)
    where = f" (at {'.'.join(map(str, error.path))})" if error.path else ""
    kind = f"{type(cause).__name__}: " if cause is not None and not isinstance(cause, Refused) \
        else ""
    return f"{kind}{error.message}{where}"


def make_app(store: Store, latency_ms: float = 0.0):
    held = {"ms": latency_ms}  # PUT /_standin/latency changes it
    import graphql
    from flask import Flask, Response, g, request
    from werkzeug.exceptions import HTTPException

    schema = make_schema()
    app = Flask("wandb_server")

    def fail(status: int, message: str):
        g.error = message
        print(f"wandb_server: {status} {g.get('operation')}: {message}",
              file=sys.stderr, flush=True)
        return Response(json.dumps({"errors": [{"message": message}]}), status,
                        mimetype="application/json")

    def body() -> Any:
        raw = request.get_data()
        if request.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        return json.loads(raw)

    @app.before_request
    def authenticate():
        rule = request.url_rule.rule if request.url_rule else request.path
        rule = rule.replace("<path:", "{").replace("<", "{").replace(">", "}")
        g.operation = f"{request.method} {rule}"  # the route's pattern, or an unknown path
        if request.path.startswith(("/_standin/", "/sdk/otel/", "/_requests")):
            return None
        if held["ms"]:
            time.sleep(held["ms"] / 1000)
        auth = request.authorization
        key = auth.password if auth and auth.type == "basic" and auth.username == "api" else None
        if key is None or len(key) < 40:
            return fail(401, "an API key of 40+ characters is needed, as HTTP basic auth "
                             "api:<key>")
        return None

    @app.after_request
    def record(response):
        if not request.path.startswith(("/_standin/requests", "/_standin/refused", "/_requests")):
            with store.lock:
                store.requests.append({"n": next(store.request_numbers),
                                       "operation": g.get("operation"),
                                       "status": response.status_code,
                                       "error": g.get("error")})
                if response.status_code >= 400:
                    store.refused.append(store.requests[-1])
        return response

    @app.errorhandler(HTTPException)
    def unknown(error):
        return fail(400, f"{request.method} {request.path} is not served "
                         f"({error.code} {error.name})")

    @app.post("/graphql")
    def graphql_route():
        payload = body()
        try:
            document = graphql.parse(payload["query"])
        except graphql.GraphQLError as error:
            return fail(400, f"GraphQL syntax: {error.message}")
        name = payload.get("operationName")
        operations = [d for d in document.definitions
                      if isinstance(d, graphql.OperationDefinitionNode)]
        if not name and len(operations) == 1:
            name = operations[0].name.value if operations[0].name else \
                ",".join(s.name.value for s in operations[0].selection_set.selections
                         if isinstance(s, graphql.FieldNode))
        g.operation = name
        errors = graphql.validate(schema, document)
        if not errors:
            with store.lock:
                result = graphql.execute(schema, document, root_value=store,
                                         variable_values=payload.get("variables"),
                                         operation_name=payload.get("operationName") or None)
            errors = result.errors
        if errors:
            return fail(400, "; ".join(map(describe, errors)))
        return {"data": result.data}

    @app.post("/files/<entity>/<project>/<run>/file_stream")
    def file_stream(entity, project, run):
        with store.lock:
            store.run_for(entity, project, run).stream(body())
        return {"exitcode": None, "limits": {}}

    @app.post("/sdk/otel/v1/<kind>")
    def telemetry(kind):  # the SDK's own metrics and logs (unless WANDB_ERROR_REPORTING=false)
        if kind not in ("metrics", "logs"):
            return fail(400, f"POST {request.path} is not served")
        return ""

    @app.put("/_standin/blobs/<path:key>")
    def put_blob(key):
        data = request.get_data()
        if key.startswith("artifact-files/") and hashlib.md5(data).hexdigest() != key[15:]:
            return fail(400, f"the upload to {key} does not have that md5")
        path = store.blob_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return ""

    @app.get("/_standin/blobs/<path:key>")
    def get_blob(key):
        return Response(store.blob(key), mimetype="application/octet-stream")

    @app.get("/artifactsV2/<region>/<entity>/<project>/<collection>/<birth>/<hexhash>/<name>")
    def artifact_file(region, entity, project, collection, birth, hexhash, name):
        return get_blob(f"artifact-files/{hexhash}")

    @app.get("/_standin/requests")
    def requests_route():
        with store.lock:
            return Response(json.dumps(store.requests), mimetype="application/json")

    @app.put("/_standin/latency")
    def set_latency():
        held["ms"] = float(body()["ms"])
        return {"ms": held["ms"]}

    @app.get("/_requests")
    def requests_total():
        with store.lock:
            counted = collections.Counter(r["operation"] for r in store.requests
                                          if not r["operation"].startswith("POST /sdk/otel/"))
        return {"total": sum(counted.values()), "by_operation": dict(counted)}

    @app.get("/_standin/refused")
    def refused_route():
        with store.lock:
            return Response(json.dumps(store.refused), mimetype="application/json")

    @app.post("/_standin/requests/clear")
    def clear_requests():
        with store.lock:
            store.requests.clear()
        return {"cleared": True}

    @app.errorhandler(Exception)
    def broken(error):  # a request this stand-in cannot parse or a bug in it: loudly, no 500
        if not isinstance(error, Refused):
            traceback.print_exception(error, file=sys.stderr)
        return fail(400, f"{type(error).__name__}: {error}")

    return app


def main(argv: list[str] | None = None) -> None:
    import logging

    from werkzeug.serving import make_server

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--data", type=Path, help="where uploads go (default: a temporary "
                                                   "folder, removed at exit)")
    parser.add_argument("--crash-after", type=float, default=300.0,
                        help="seconds without file_stream before a running run is crashed")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="hold each request to the SDK's routes this long, as W&B's round "
                             "trip would")
    args = parser.parse_args(argv)
    data = args.data or Path(tempfile.mkdtemp(prefix="wandb_server_"))
    data.mkdir(parents=True, exist_ok=True)
    store = Store(data, crash_after=args.crash_after)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", args.port, make_app(store, args.latency_ms), threaded=True)
    store.base_url = f"http://127.0.0.1:{server.server_port}"

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"WANDB_BASE_URL={store.base_url}", flush=True)
    print(f"WANDB_ENTITY={store.entity_name}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if args.data is None:
            shutil.rmtree(data, ignore_errors=True)


# -- for tests ------------------------------------------------------------------------

@dataclasses.dataclass
class Server:
    base_url: str
    entity: str
    process: subprocess.Popen
    api_key: str = API_KEY

    def env(self, base_env: dict) -> dict:
        return {**base_env, "WANDB_BASE_URL": self.base_url, "WANDB_API_KEY": self.api_key,
                "WANDB_MODE": "online", "WANDB_ENTITY": self.entity}

    def _call(self, path: str, method: str = "GET") -> Any:
        with urllib.request.urlopen(urllib.request.Request(self.base_url + path,
                                                           method=method)) as response:
            return json.load(response)

    def requests(self) -> list[dict]:
        return self._call("/_standin/requests")

    def asked(self) -> dict[str, int]:
        """The requests since the last ``clear``, counted by operation, every one answered;
        the SDK's own telemetry (``POST /sdk/otel/...``, sent on its own schedule) left out."""
        seen = self.requests()
        assert not [r for r in seen if r["status"] >= 400], seen
        return dict(collections.Counter(r["operation"] for r in seen
                                        if not r["operation"].startswith("POST /sdk/otel/")))

    def refused(self) -> list[dict]:
        """Every request answered with a status of 400 or more, ``clear`` or not."""
        return self._call("/_standin/refused")

    def clear(self) -> None:
        self._call("/_standin/requests/clear", "POST")

    def hold(self, ms: float) -> None:
        """Hold each request to the SDK's routes ``ms`` from now on (``--latency-ms``)."""
        request = urllib.request.Request(self.base_url + "/_standin/latency", method="PUT",
                                         data=json.dumps({"ms": ms}).encode())
        with urllib.request.urlopen(request) as response:
            response.read()


@contextlib.contextmanager
def serving(data_dir: Path | str, *args: str) -> Iterator[Server]:
    """Run the stand-in in a subprocess with uploads under ``data_dir`` (its stderr goes to
    ``data_dir/server.log``; ``args`` are more options, e.g. ``--crash-after``); yields a
    ``Server``, and stops the process on exit (SIGTERM, then SIGKILL if it lingers)."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "server.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--port", "0",
             "--data", str(data_dir / "data"), *args],
            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True)
    try:
        lines = [process.stdout.readline().strip() for _ in range(2)]
        if not (lines[0].startswith("WANDB_BASE_URL=") and lines[1].startswith("WANDB_ENTITY=")):
            raise RuntimeError(f"wandb_server did not start: {lines}\n"
                               f"{log_path.read_text(errors='replace')}")
        yield Server(base_url=lines[0].split("=", 1)[1], entity=lines[1].split("=", 1)[1],
                     process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


if __name__ == "__main__":
    main()
