"""The README's commands and examples, run as written: docs that rot fail CI."""

from __future__ import annotations

import json
import re
from pathlib import Path

from starlette.applications import Starlette

from tests.support import GraphQLClient, LiveEvents, subscribers_registered, token

README = (Path(__file__).parent.parent / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.DOTALL)


def _blocks(language: str) -> list[str]:
    return [body for lang, body in BLOCKS if lang == language]


def test_the_readme_opens_with_the_run_and_test_commands() -> None:
    first, second = BLOCKS[0], BLOCKS[1]
    assert README.index("```") < README.index("## ")  # before any other section
    assert first[0] == second[0] == "bash"
    assert first[1].strip().endswith("pip install -e . && workflow-runs serve")
    assert second[1].strip().endswith('pip install -e ".[test]" && pytest')
    assert first[1].startswith("python3 -m venv .venv") and second[1].startswith("python3 -m venv")


async def test_the_readme_graphql_examples_run(app: Starlette, server: str) -> None:
    mutation, query, subscription = _blocks("graphql")
    client = GraphQLClient(server, token(["demo"]))
    async with LiveEvents(server, token(["demo"]), workspace="demo", query=subscription) as live:
        await subscribers_registered(app, 1)
        created = (await client.data(mutation))["createWorkflowRun"]
        [event] = await live.wait_for_count(1)
    listed = await client.data(query)
    await client.aclose()
    assert created["status"] == "PENDING"
    assert event["run"]["id"] == created["id"] and event["status"] == "PENDING"
    assert listed["workflowRuns"]["totalCount"] == 1
    assert len(listed["workflowRunStatusCounts"]) == 8


async def test_the_readme_curl_example_sends_a_valid_request(server: str) -> None:
    curl = next(b for b in _blocks("bash") if b.lstrip().startswith("curl"))
    body = json.loads(re.search(r"-d '(.*)'", curl, flags=re.DOTALL)[1])  # type: ignore[index]
    client = GraphQLClient(server, token(["demo"]))
    data = await client.data(body["query"])
    await client.aclose()
    assert [c["count"] for c in data["workflowRunStatusCounts"]] == [0] * 8
