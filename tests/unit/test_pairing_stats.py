"""bench/pairing_stats: offers split by the node the citizen was connected to."""

from __future__ import annotations

from bench.pairing_stats import offer_latencies_by_node


def _join(index: int, sent: float, phase: str = "steady") -> dict[str, object]:
    return {"citizen": f"bench-{index:05d}", "phase": phase, "sent": sent,
            "ticket_id": f"t{index}"}


def test_offers_are_split_by_the_citizens_node() -> None:
    # 4 citizen processes on 2 nodes: processes 0 and 2 on node 1, 1 and 3 on node 2
    joins = [_join(i, 10.0) for i in range(8)] + [_join(8, 10.0, phase="backlog")]
    first = {f"t{i}": 10.0 + (i + 1) / 1000 for i in range(9)}
    del first["t5"]  # never offered
    node1, node2 = offer_latencies_by_node(joins, first, "steady", 4, 2)
    assert [round(x * 1000) for x in node1] == [1, 3, 5, 7]
    assert [round(x * 1000) for x in node2] == [2, 4, 8]
    [everyone] = offer_latencies_by_node(joins, first, "steady", 2, 1)
    assert sorted(round(x * 1000) for x in everyone) == [1, 2, 3, 4, 5, 7, 8]
