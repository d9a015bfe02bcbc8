"""A W&B project's lineage in pages: every run's input and output artifacts, 50 runs a request.

For runs without breadcrumbs (plain wandb code, the Trainer, Lightning), the lineage is
each run's used and logged artifacts, and who logged each one it used. Asked run by run,
that is about four requests a run (``used_artifacts``, ``logged_by`` per input,
``logged_artifacts``). ``lineage_pages`` asks for it all in one paged query,
``RunchainLineage``: the project's runs, ``PER_PAGE`` a request, each with its
``inputArtifacts`` (and each one's ``createdBy`` run) and its ``outputArtifacts``, up to
``PER_RUN`` of each.

The query is made of the installed wandb's own query text, so it asks only for fields
wandb itself asks for on those types, less those the server lacks (``omit_artifact_fields``,
as wandb's own artifact queries leave them out). The artifact fields are ``RunInputArtifacts``'s
fragments (``ArtifactFragment`` and those it uses), and ``createdBy`` is
``ArtifactCreatedBy``'s selection. Each artifact is built as wandb builds it
(``Artifact._from_attrs``), so a ``checkpoint.json`` is read through it as before. A run
with more than ``PER_RUN`` inputs or outputs is left to the run-by-run calls. A server that
refuses the query (an older W&B server, or a changed schema) raises ``LineageRefused``, and
``from_project`` then reads run by run and says so once (docs/chains.md, "Reading from W&B").

Example:
    >>> pages = lineage_pages(api, "acme", "llm", {"1a2b3c4d"})  # doctest: +SKIP
    >>> inputs, outputs = pages["1a2b3c4d"]  # [(artifact, producer run id)], [artifact]
"""

from __future__ import annotations

import functools
import re
from typing import Any, Collection

PER_PAGE = 50  # runs per request
PER_RUN = 100  # input and output artifacts asked for per run; more: that run's own calls

Edges = tuple[list[tuple[Any, str | None]], list[Any]]  # [(input, its producer's id)], outputs


class LineageRefused(Exception):
    """The server answered the paged lineage query with an error, or wandb lacks what it
    is built from; the caller reads run by run instead."""


@functools.lru_cache(maxsize=1)
def lineage_query() -> str:
    """``RunchainLineage``: a page of runs, each with its inputs (and their producer) and
    outputs, from the installed wandb's own fragments."""
    from wandb.sdk.artifacts._generated import operations

    def fragments(text: str) -> dict[str, str]:
        found = re.findall(r"(fragment (\w+) on \w+ \{.*?\n\})", text, re.S)
        return {name: body for body, name in found}

    used = fragments(operations.RUN_INPUT_ARTIFACTS_GQL)
    used.update(fragments(operations.ARTIFACT_CREATED_BY_GQL))
    creator = re.search(r"createdBy \{.*?\n    \}", operations.ARTIFACT_CREATED_BY_GQL, re.S)
    if "ArtifactFragment" not in used or creator is None:
        raise LineageRefused("the installed wandb has no ArtifactFragment or createdBy")
    return ("query RunchainLineage($entity: String!, $project: String!, $cursor: String, "
            "$perPage: Int, $perRun: Int, $includeAliases: Boolean = true) {\n"
            "  project(entityName: $entity, name: $project) {\n"
            "    runs(after: $cursor, first: $perPage) {\n"
            "      pageInfo { ...PageInfoFragment }\n"
            "      edges { node { name\n"
            "        inputs: inputArtifacts(first: $perRun) { pageInfo { ...PageInfoFragment }\n"
            f"          edges {{ node {{ ...ArtifactFragment {creator[0]} }} }} }}\n"
            "        outputs: outputArtifacts(first: $perRun) { pageInfo { ...PageInfoFragment }\n"
            "          edges { node { ...ArtifactFragment } } }\n"
            "      } }\n    }\n  }\n}\n\n" + "\n\n".join(used.values()))


def _artifact(node: dict[str, Any], service_api: Any) -> Any:
    """A wandb ``Artifact`` of a node holding ``ArtifactFragment``, as wandb's own
    ``RunArtifacts`` pages build it; None for one whose project W&B does not say."""
    from wandb.sdk.artifacts._generated import ArtifactFragment
    from wandb.sdk.artifacts._validators import FullArtifactPath
    from wandb.sdk.artifacts.artifact import Artifact

    fragment = ArtifactFragment.model_validate({k: v for k, v in node.items() if k != "createdBy"})
    sequence = fragment.artifact_sequence
    if sequence.project is None:
        return None
    return Artifact._from_attrs(
        path=FullArtifactPath(prefix=sequence.project.entity.name, project=sequence.project.name,
                              name=f"{sequence.name}:v{fragment.version_index}"),
        src_art=fragment, service_api=service_api)


def _producer(node: dict[str, Any]) -> str | None:
    creator = node.get("createdBy") or {}
    return creator.get("name") if creator.get("__typename") == "Run" else None


def lineage_pages(api: Any, entity: str, project: str, names: Collection[str]) -> dict[str, Edges]:
    """Run id -> its (inputs with each one's producer run id, outputs), for each run in
    ``names`` whose inputs and outputs fit in one page each; the others are not in the
    result.

    Raises:
        LineageRefused: the server refused the query, or answered something else.
    """
    service_api = getattr(api, "_service_api", None)
    if service_api is None:
        raise LineageRefused("this wandb.Api has no GraphQL client to send it with")
    query, out, cursor = lineage_query(), {}, None
    try:  # the fields this server lacks, left out as wandb's own artifact queries do
        from wandb.sdk.artifacts._gqlutils import omit_artifact_fields
        omit = omit_artifact_fields(service_api)
    except Exception as e:
        raise LineageRefused(f"{type(e).__name__}: {e}") from e
    while True:
        try:
            data = service_api.execute_graphql(query, omit_fields=omit, variables={
                "entity": entity, "project": project, "cursor": cursor, "perPage": PER_PAGE,
                "perRun": PER_RUN})
            page = data["project"]["runs"]
        except Exception as e:  # any refusal: the run-by-run calls still work
            raise LineageRefused(f"{type(e).__name__}: {' '.join(str(e).split())[:300]}") from e
        for edge in page["edges"]:
            node = edge["node"]
            if node["name"] not in names:
                continue
            if node["inputs"]["pageInfo"]["hasNextPage"] or node["outputs"]["pageInfo"]["hasNextPage"]:
                continue  # more than a page: that run's own calls read them all
            inputs = [(_artifact(e["node"], service_api), _producer(e["node"]))
                      for e in node["inputs"]["edges"]]
            outputs = [_artifact(e["node"], service_api) for e in node["outputs"]["edges"]]
            out[node["name"]] = ([(a, p) for a, p in inputs if a is not None],
                                 [a for a in outputs if a is not None])
        if not page["pageInfo"]["hasNextPage"]:
            return out
        cursor = page["pageInfo"]["endCursor"]
