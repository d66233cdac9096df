"""Relabelling rules: every action, validation messages and Go's template expansion."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from watchkeeper.config.yamlsource import describe_validation_error, parse_yaml
from watchkeeper.model.labels import Labels
from watchkeeper.model.relabel import RelabelConfig, expand, relabel


def L(**kw: str) -> Labels:
    return Labels.from_dict(kw)


def cfg(**kw: Any) -> RelabelConfig:
    return RelabelConfig.model_validate(kw)


CASES: list[tuple[str, Labels, list[dict[str, Any]], Labels | None]] = [
    (
        "replace with a capture group",
        L(a="foo", b="bar", c="baz"),
        [
            {
                "source_labels": ["a"],
                "regex": "f(.*)",
                "target_label": "d",
                "replacement": "ch${1}-ch${1}",
            }
        ],
        L(a="foo", b="bar", c="baz", d="choo-choo"),
    ),
    (
        "replace joins sources with the separator",
        L(a="foo", b="bar", c="baz"),
        [
            {
                "source_labels": ["a", "b"],
                "regex": "f(.*);(.*)r",
                "target_label": "a",
                "replacement": "b${1}${2}m",
            },
            {
                "source_labels": ["c", "a"],
                "regex": "(b).*b(.*)ba(.*)",
                "target_label": "d",
                "replacement": "$1$2$2$3",
            },
        ],
        L(a="boobam", b="bar", c="baz", d="boooom"),
    ),
    (
        "replace does nothing when the regex does not match",
        L(a="foo"),
        [{"source_labels": ["a"], "regex": "o", "target_label": "b", "replacement": "x"}],
        L(a="foo"),
    ),
    (
        "regexes are anchored at both ends",
        L(a="foo"),
        [{"source_labels": ["a"], "regex": "fo", "target_label": "b", "replacement": "x"}],
        L(a="foo"),
    ),
    (
        "an empty replacement deletes the target",
        L(a="foo", b="bar"),
        [{"source_labels": ["a"], "regex": "(.*)", "target_label": "b", "replacement": ""}],
        L(a="foo"),
    ),
    (
        "missing sources join as empty and the default regex sets the literal replacement",
        L(a="foo"),
        [{"source_labels": ["x"], "target_label": "b", "replacement": "static"}],
        L(a="foo", b="static"),
    ),
    (
        "target label can use groups",
        L(a="some-name-value"),
        [
            {
                "source_labels": ["a"],
                "regex": "some-([^-]+)-([^,]+)",
                "target_label": "${1}",
                "replacement": "${2}",
            }
        ],
        L(a="some-name-value", name="value"),
    ),
    (
        "an expanded target that is empty is skipped",
        L(a="foo"),
        [
            {
                "source_labels": ["a"],
                "regex": "(f)(x)?oo",
                "target_label": "${2}",
                "replacement": "z",
            }
        ],
        L(a="foo"),
    ),
    (
        "named groups expand",
        L(a="abc"),
        [
            {
                "source_labels": ["a"],
                "regex": "(?P<first>a)(?P<rest>.*)",
                "target_label": "b",
                "replacement": "$rest-${first}",
            }
        ],
        L(a="abc", b="bc-a"),
    ),
    (
        "dot matches a newline",
        L(a="x\ny"),
        [{"source_labels": ["a"], "regex": "x.y", "action": "keep"}],
        L(a="x\ny"),
    ),
    (
        "keep drops non-matching sets",
        L(a="foo"),
        [{"source_labels": ["a"], "regex": "f.*x", "action": "keep"}],
        None,
    ),
    (
        "keep keeps matching sets",
        L(a="foo"),
        [{"source_labels": ["a"], "regex": "f.*", "action": "keep"}],
        L(a="foo"),
    ),
    (
        "drop drops matching sets",
        L(a="foo"),
        [{"source_labels": ["a"], "regex": ".*o.*", "action": "drop"}],
        None,
    ),
    (
        "drop keeps others",
        L(a="foo"),
        [{"source_labels": ["a"], "regex": "x", "action": "drop"}],
        L(a="foo"),
    ),
    (
        "keep on a missing label matches the empty string",
        L(a="foo"),
        [{"source_labels": ["b"], "regex": "", "action": "keep"}],
        L(a="foo"),
    ),
    (
        "hashmod uses md5 of the value, last 8 bytes big-endian",
        L(a="foo", b="bar"),
        [{"source_labels": ["a"], "target_label": "h", "modulus": 1000, "action": "hashmod"}],
        L(a="foo", b="bar", h=str(int.from_bytes(hashlib.md5(b"foo").digest()[8:], "big") % 1000)),
    ),
    (
        "labelmap copies matching names",
        L(a="foo", b="bar", __meta_x="1", __meta_yy="2"),
        [{"regex": "__meta_(.*)", "action": "labelmap", "replacement": "m_${1}"}],
        L(a="foo", b="bar", __meta_x="1", __meta_yy="2", m_x="1", m_yy="2"),
    ),
    (
        "labeldrop removes matching names",
        L(a="foo", b1="x", b2="y"),
        [{"regex": "b.*", "action": "labeldrop"}],
        L(a="foo"),
    ),
    (
        "labelkeep keeps matching names only",
        L(a="foo", b1="x", b2="y"),
        [{"regex": "b.*", "action": "labelkeep"}],
        L(b1="x", b2="y"),
    ),
    (
        "lowercase and uppercase",
        L(a="AbC", b="dEf"),
        [
            {"source_labels": ["a"], "target_label": "lo", "action": "lowercase"},
            {"source_labels": ["b"], "target_label": "up", "action": "uppercase"},
        ],
        L(a="AbC", b="dEf", lo="abc", up="DEF"),
    ),
    (
        "keepequal keeps when target equals the joined sources",
        L(a="1", b="1"),
        [{"source_labels": ["a"], "target_label": "b", "action": "keepequal"}],
        L(a="1", b="1"),
    ),
    (
        "keepequal drops otherwise",
        L(a="1", b="2"),
        [{"source_labels": ["a"], "target_label": "b", "action": "keepequal"}],
        None,
    ),
    (
        "dropequal drops when equal",
        L(a="1", b="1"),
        [{"source_labels": ["a"], "target_label": "b", "action": "dropequal"}],
        None,
    ),
    (
        "dropequal keeps otherwise",
        L(a="1", b="2"),
        [{"source_labels": ["a"], "target_label": "b", "action": "dropequal"}],
        L(a="1", b="2"),
    ),
    (
        "actions are case-insensitive",
        L(a="foo"),
        [{"source_labels": ["a"], "regex": "foo", "action": "DROP"}],
        None,
    ),
    (
        "rules after a drop do not run",
        L(a="foo"),
        [
            {"source_labels": ["a"], "action": "drop", "regex": "foo"},
            {"target_label": "x", "replacement": "y"},
        ],
        None,
    ),
    (
        "utf-8 target label names are valid in Prometheus 3",
        L(a="foo"),
        [{"source_labels": ["a"], "target_label": "dotted.name"}],
        L(a="foo", **{"dotted.name": "foo"}),
    ),
]


@pytest.mark.parametrize(
    ("name", "labels", "configs", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_relabel_table(
    name: str, labels: Labels, configs: list[dict[str, Any]], expected: Labels | None
) -> None:
    assert relabel(labels, [cfg(**c) for c in configs]) == expected


def test_no_configs_returns_the_same_labels() -> None:
    lbls = L(a="b")
    assert relabel(lbls, []) is lbls


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"action": "hashmod", "target_label": "x"},
            "relabel configuration for hashmod requires non-zero modulus",
        ),
        (
            {"action": "replace"},
            "relabel configuration for replace action requires 'target_label' value",
        ),
        (
            {"action": "lowercase", "target_label": "x", "replacement": "y"},
            "'replacement' can not be set for lowercase action",
        ),
        (
            {"action": "keepequal", "target_label": "x", "regex": "(.*)"},
            "keepequal action requires only 'source_labels' and `target_label`, and no other",
        ),
        (
            {"action": "labeldrop", "regex": "x", "source_labels": ["a"]},
            "labeldrop action requires only 'regex', and no other fields",
        ),
        (
            {"action": "labelmap", "replacement": ""},
            "\"\" is invalid 'replacement' for labelmap action",
        ),
        ({"action": "explode"}, 'unknown relabel action "explode"'),
        ({"regex": "(", "target_label": "x"}, "error parsing regexp"),
        ({"target_label": "x", "unknown": 1}, "Extra inputs are not permitted"),
        ({"source_labels": [""], "target_label": "x"}, '"" is not a valid label name'),
    ],
)
def test_invalid_configs_fail_with_prometheus_messages(
    config: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as info:
        RelabelConfig.model_validate(config)
    assert message in str(info.value)


def test_yaml_errors_name_the_line() -> None:
    text = "- source_labels: [a]\n  target_label: x\n- action: hashmod\n  target_label: y\n"
    doc = parse_yaml(text, "prometheus.yml")
    with pytest.raises(ValidationError) as info:
        [RelabelConfig.model_validate(d) for d in doc]
    lines = describe_validation_error(info.value, doc[1], "prometheus.yml")
    assert lines == [
        "prometheus.yml:3: relabel configuration for hashmod requires non-zero modulus"
    ]


def test_yaml_null_regex_means_empty_and_numbers_are_text() -> None:
    c = RelabelConfig.model_validate(
        {"regex": None, "source_labels": ["a"], "target_label": "b", "replacement": 5}
    )
    assert c.regex == ""
    assert c.replacement == "5"
    assert relabel(L(a=""), [c]) == L(b="5")


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("$1", "a"),
        ("${1}", "a"),
        ("$1x", ""),
        ("${1}x", "ax"),
        ("$$1", "$1"),
        ("$", "$"),
        ("${1", "${1"),
        ("$-", "$-"),
        ("$9", ""),
        ("$01", ""),
        ("$name", "b"),
        ("${name}!", "b!"),
        ("$missing", ""),
        ("x$0y", "x"),
        ("x${0}y", "xaby"),
    ],
)
def test_expand_follows_go_regexp_expand(template: str, expected: str) -> None:
    m = re.fullmatch(r"(a)(?P<name>b)", "ab")
    assert m is not None
    assert expand(template, m) == expected


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20))
def test_literal_replacement_round_trips_through_capture(value: str) -> None:
    c = cfg(source_labels=["a"], target_label="b")
    out = relabel(L(a=value), [c])
    assert out is not None
    assert out.get("b") == value


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20))
def test_escaped_value_as_regex_matches_itself(value: str) -> None:
    c = cfg(source_labels=["a"], regex=re.escape(value), action="keep")
    assert relabel(L(a=value or "x"), [c]) == (L(a=value) if value else None)
