"""All five groupings of master-api.md 7.2, with data and directory items."""

from __future__ import annotations

import pytest

from disco.master.grouping import DataItem, DirItem, TaskInput, group_items, url_host

ITEMS = [
    DataItem(1, 0, ("disco://b/x",)),
    DataItem(0, 0, ("raw://a",)),
    DirItem("dir://a/idx", ((0, 5), (2, 7), (0, 1))),
    DataItem(0, 0, ()),  # no replicas: ignored
    DirItem("dir://c/empty", ()),  # no labels: ignored
]


def test_url_host():
    assert url_host("raw://hello") == "hello"
    assert url_host("http://files.example:8000/a") == "files.example"
    assert url_host("dir://n1/disco/x") == "n1"
    assert url_host("/local/path") == ""
    assert url_host("tag://name") == "name"


@pytest.mark.parametrize(
    "grouping, expected",
    [
        (
            "split",
            [
                ((1, "b"), [TaskInput(1, ("disco://b/x",))]),
                ((0, "a"), [TaskInput(0, ("raw://a",))]),
                ((0, "a"), [TaskInput(0, ("dir://a/idx",))]),
                ((2, "a"), [TaskInput(2, ("dir://a/idx",))]),
            ],
        ),
        (
            "group_label",
            [
                ((0, ""), [TaskInput(0, ("raw://a",)), TaskInput(0, ("dir://a/idx",))]),
                ((1, ""), [TaskInput(1, ("disco://b/x",))]),
                ((2, ""), [TaskInput(2, ("dir://a/idx",))]),
            ],
        ),
        (
            "group_node",
            [
                ((0, "a"), [TaskInput(0, ("raw://a",)), TaskInput("all", ("dir://a/idx",))]),
                ((0, "b"), [TaskInput(1, ("disco://b/x",))]),
            ],
        ),
        (
            "group_node_label",
            [
                ((0, "a"), [TaskInput(0, ("raw://a",)), TaskInput(0, ("dir://a/idx",))]),
                ((1, "b"), [TaskInput(1, ("disco://b/x",))]),
                ((2, "a"), [TaskInput(2, ("dir://a/idx",))]),
            ],
        ),
        (
            "group_all",
            [
                (
                    (0, ""),
                    [
                        TaskInput(1, ("disco://b/x",)),
                        TaskInput(0, ("raw://a",)),
                        TaskInput("all", ("dir://a/idx",)),
                    ],
                ),
            ],
        ),
    ],
)
def test_groupings(grouping, expected):
    assert group_items(grouping, ITEMS) == expected


def test_no_items_no_tasks():
    for grouping in ("split", "group_label", "group_node", "group_node_label", "group_all"):
        assert group_items(grouping, []) == []


def test_hosts_outside_the_cluster_form_one_node() -> None:
    items = [
        DataItem(0, 0, ("http://files.example/a",)),
        DataItem(0, 0, ("raw://text",)),
        DataItem(1, 0, ("disco://n1/x",)),
        DirItem("dir://n1/idx", ((1, 3),)),
    ]
    cluster = frozenset({"n1", "n2"})
    assert group_items("group_node", items, cluster) == [
        ((0, ""), [TaskInput(0, ("http://files.example/a",)), TaskInput(0, ("raw://text",))]),
        ((0, "n1"), [TaskInput(1, ("disco://n1/x",)), TaskInput("all", ("dir://n1/idx",))]),
    ]
    assert [g for g, _ in group_items("group_node_label", items, cluster)] == [
        (0, ""),
        (1, "n1"),
    ]
    # split keeps each input's own host; without a cluster every URL host is a node
    assert [g for g, _ in group_items("split", items[:2], cluster)] == [
        (0, "files.example"),
        (0, "text"),
    ]
    assert len(group_items("group_node", items[:2])) == 2
