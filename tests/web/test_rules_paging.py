"""/api/v1/rules pages (group_limit, group_next_token) with the other filters, as Prometheus."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from watchkeeper.model.labels import Labels
from watchkeeper.testing.web import StaticRules, make_api_deps
from watchkeeper.web.api.v1.deps import RuleGroupInfo, RuleInfo
from watchkeeper.web.app import WebOptions, create_app

Client = TestClient[web.Request, web.Application]


def _record(name: str, **labels: str) -> RuleInfo:
    return RuleInfo(type="recording", name=name, query="vector(1)", labels=Labels.from_dict(labels))


def _alert(name: str, **labels: str) -> RuleInfo:
    return RuleInfo(type="alerting", name=name, query="vector(1)", labels=Labels.from_dict(labels))


GROUPS = [
    RuleGroupInfo("g1", "a.yml", 15.0, (_record("r:one", team="a"), _alert("A1", team="b"))),
    RuleGroupInfo("empty", "a.yml", 15.0, ()),
    RuleGroupInfo("g2", "a.yml", 15.0, (_record("r:two"),)),
    RuleGroupInfo("g1", "b.yml", 15.0, (_alert("A2"),)),
    RuleGroupInfo("g3", "b.yml", 15.0, (_record("r:three", team="a"),)),
    RuleGroupInfo("g4", "b.yml", 15.0, (_alert("A3", team="a"), _record("r:four"))),
]
NON_EMPTY = [(g.file, g.name) for g in GROUPS if g.rules]


@pytest.fixture
async def client(aiohttp_client: AiohttpClient) -> Client:
    deps = make_api_deps(rules=StaticRules(list(GROUPS)))
    return await aiohttp_client(create_app(deps, WebOptions()))


async def _get(client: Client, params: list[tuple[str, str]], status: int = 200) -> Any:
    resp = await client.get("/api/v1/rules", params=params)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def _walk(client: Client, limit: int, params: list[tuple[str, str]]) -> list[Any]:
    """Follows groupNextToken from the first page to the last; returns every page's groups."""
    pages: list[Any] = []
    token = ""
    while True:
        paging = [("group_limit", str(limit))] + ([("group_next_token", token)] if token else [])
        data = (await _get(client, params + paging))["data"]
        assert 0 < len(data["groups"]) <= limit
        pages.append(data["groups"])
        token = data.get("groupNextToken", "")
        if not token:
            return pages
        assert len(pages) <= len(GROUPS), "paging does not end"


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 6, 100])
async def test_paging_walks_every_non_empty_group_exactly_once(client: Client, limit: int) -> None:
    pages = await _walk(client, limit, [])
    walked = [(g["file"], g["name"]) for page in pages for g in page]
    assert walked == NON_EMPTY
    assert len(pages) == -(-len(NON_EMPTY) // limit)
    unpaged = (await _get(client, []))["data"]
    assert [(g["file"], g["name"]) for g in unpaged["groups"]] == NON_EMPTY
    assert "groupNextToken" not in unpaged


async def test_the_token_names_the_first_group_of_the_next_page(client: Client) -> None:
    data = (await _get(client, [("group_limit", "2")]))["data"]
    assert data["groupNextToken"] == hashlib.sha1(b"b.yml;g1").hexdigest()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            [("type", "record")],
            [("a.yml", "g1"), ("a.yml", "g2"), ("b.yml", "g3"), ("b.yml", "g4")],
        ),
        ([("type", "ALERT")], [("a.yml", "g1"), ("b.yml", "g1"), ("b.yml", "g4")]),
        ([("rule_group[]", "g1")], [("a.yml", "g1"), ("b.yml", "g1")]),
        ([("file[]", "b.yml")], [("b.yml", "g1"), ("b.yml", "g3"), ("b.yml", "g4")]),
        ([("rule_name[]", "r:two"), ("rule_name[]", "A3")], [("a.yml", "g2"), ("b.yml", "g4")]),
        ([("match[]", '{team="a"}')], [("a.yml", "g1"), ("b.yml", "g3"), ("b.yml", "g4")]),
    ],
)
async def test_paging_applies_the_filters_on_every_page(
    client: Client, params: list[tuple[str, str]], expected: list[tuple[str, str]]
) -> None:
    unpaged = [(g["file"], g["name"]) for g in (await _get(client, params))["data"]["groups"]]
    assert unpaged == expected
    for limit in (1, 2):
        pages = await _walk(client, limit, params)
        assert [(g["file"], g["name"]) for page in pages for g in page] == expected


async def test_a_token_outside_the_filters_still_starts_the_page(client: Client) -> None:
    # Prometheus finds the token among all groups, then filters: the page starts after g2.
    token = hashlib.sha1(b"a.yml;g2").hexdigest()
    params = [("group_limit", "5"), ("group_next_token", token), ("rule_group[]", "g3")]
    data = (await _get(client, params))["data"]
    assert [(g["file"], g["name"]) for g in data["groups"]] == [("b.yml", "g3")]


async def test_excluded_alerts_are_null_as_in_prometheus(client: Client) -> None:
    data = (await _get(client, [("type", "alert"), ("exclude_alerts", "TRUE")]))["data"]
    assert [r["alerts"] for g in data["groups"] for r in g["rules"]] == [None, None, None]


_GROUP_LIMIT = 'invalid parameter "group_limit": '


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ([("group_limit", "0")], _GROUP_LIMIT + "group_limit needs to be greater than 0"),
        ([("group_limit", "-1")], _GROUP_LIMIT + "group_limit needs to be greater than 0"),
        (
            [("group_limit", "abc")],
            _GROUP_LIMIT
            + 'group_limit needs to be a valid number: strconv.ParseInt: parsing "abc":'
            " invalid syntax",
        ),
        (
            [("group_limit", " 3")],
            _GROUP_LIMIT + 'group_limit needs to be a valid number: strconv.ParseInt: parsing " 3":'
            " invalid syntax",
        ),
        (
            [("group_limit", "2147483648")],
            _GROUP_LIMIT + "group_limit needs to be a valid number: strconv.ParseInt: parsing"
            ' "2147483648": value out of range',
        ),
        (
            [("group_next_token", "abc")],
            'invalid parameter "group_next_token": group_limit needs to be present in order to'
            " paginate over the groups",
        ),
        (
            [("group_limit", "1"), ("group_next_token", "abc")],
            "invalid parameter \"group_next_token\": invalid group_next_token 'abc'. were rule"
            " groups changed?",
        ),
        (
            [("type", "Bogus"), ("group_limit", "0")],
            'invalid parameter "type": not supported value "bogus"',
        ),
        (
            [("exclude_alerts", "Maybe"), ("group_limit", "0")],
            'invalid parameter "exclude_alerts": error converting exclude_alerts:'
            ' strconv.ParseBool: parsing "maybe": invalid syntax',
        ),
        (
            [("match[]", "up{"), ("type", "x")],
            "1:4: parse error: unexpected end of input inside braces",
        ),
    ],
)
async def test_bad_paging_parameters_are_refused_as_prometheus_does(
    client: Client, params: list[tuple[str, str]], error: str
) -> None:
    body = await _get(client, params, status=400)
    assert (body["errorType"], body["error"]) == ("bad_data", error)
