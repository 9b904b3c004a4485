"""Message trees as other apps export them (ChatGPT's `mapping`, Open WebUI's
`history.messages`): nodes that name their parent and list their children. `tree_order`
checks such a tree and puts it in the order chatsite writes messages in.

chatsite's tree has two invariants the order must give it: a parent is written before its
children (a thread is walked upwards by decreasing id), and the versions of a turn are
written in the order the source lists them (the ‹ n / m › pager counts siblings by id).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn


@dataclass(frozen=True)
class Node:
    parent: str | None
    children: list[str]  # as the source lists them; only used for the order


def tree_order(nodes: dict[str, Node], fail: Callable[[str], NoReturn]) -> list[str]:
    """The ids of `nodes`, each parent before its children and siblings in the source's
    order (depth first, iteratively: a 10,000-turn thread is 10,000 levels deep).

    `fail(problem)` is called, and must raise, on a parent that is not in the tree or a
    cycle (nodes that never reach a root), naming the node."""
    children: dict[str | None, list[str]] = {}
    for node_id, node in nodes.items():
        if node.parent is not None and node.parent not in nodes:
            fail(f"node {node_id[:60]!r} names parent {node.parent[:60]!r}, which is not in it")
        children.setdefault(node.parent, []).append(node_id)
    order: list[str] = []
    stack = list(reversed(children.get(None, [])))
    while stack:
        node_id = stack.pop()
        order.append(node_id)
        stack.extend(reversed(_listed_first(nodes[node_id], children.get(node_id, []))))
    if len(order) != len(nodes):
        placed = set(order)
        stuck = next(node_id for node_id in nodes if node_id not in placed)
        fail(f"node {stuck[:60]!r} is in a cycle: following its parents never reaches the root")
    return order


def _listed_first(node: Node, actual: list[str]) -> list[str]:
    """The children that name `node` as parent: those it lists, in its order, then any it
    forgot to list, in the file's order. The parent links are the truth; the lists only
    order them."""
    rank = {child: position for position, child in enumerate(node.children)}
    return sorted(actual, key=lambda child: rank.get(child, len(rank)))
