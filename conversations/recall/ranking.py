"""Fusing recall's two rankings and choosing what fits the budget.

Reciprocal rank fusion: a chunk's score is the sum over the rankings it appears in of
1 / (K + its rank there), so agreement between meaning and words wins, and neither
ranking's raw scores (cosine, ts_rank) need to be comparable. A message counts once, by its
best chunk.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from conversations.recall.rankings import Candidate

# The usual constant of reciprocal rank fusion: damps the weight of the very first ranks.
K = 60


@dataclass(frozen=True)
class Ranked:
    chunk_id: int
    message_id: int
    score: float


def fuse(*rankings: Sequence[Candidate]) -> list[Ranked]:
    """The rankings fused, best first, one entry per message (its best chunk)."""
    scores: dict[int, float] = {}
    owners: dict[int, int] = {}
    for ranking in rankings:
        for rank, candidate in enumerate(ranking, start=1):
            scores[candidate.chunk_id] = scores.get(candidate.chunk_id, 0.0) + 1.0 / (K + rank)
            owners[candidate.chunk_id] = candidate.message_id
    best: dict[int, Ranked] = {}
    for chunk_id, score in scores.items():
        message_id = owners[chunk_id]
        if message_id not in best or score > best[message_id].score:
            best[message_id] = Ranked(chunk_id, message_id, score)
    return sorted(best.values(), key=lambda r: (-r.score, -r.message_id))


def within_budget(
    ranked: Sequence[Ranked], cost: Callable[[Ranked], int], budget: int
) -> list[Ranked]:
    """The best entries whose costs fit `budget` together (a big one that does not fit is
    passed over for smaller ones below it)."""
    chosen: list[Ranked] = []
    spent = 0
    for entry in ranked:
        price = cost(entry)
        if spent + price <= budget:
            chosen.append(entry)
            spent += price
    return chosen
