"""Maximal marginal relevance: the order in which to take the nearest chunks so that each
one taken is close to the query and unlike those taken before it.

Without it a conversation that said one thing many times (the same question each morning,
a pasted log repeated) fills the nearest ranks with copies of it, and the excerpt that
answers the question, a little less close, is pushed past the ranks recall looks at.
"""

from collections.abc import Sequence

import numpy as np

# Weight of closeness to the query against unlikeness to what is already taken: 1 is the
# plain nearest order. 0.7 keeps the nearest first and passes over near-copies of it.
RELEVANCE_WEIGHT = 0.7


def diverse_order(
    query: Sequence[float], vectors: np.ndarray, count: int, weight: float = RELEVANCE_WEIGHT
) -> list[int]:
    """Indexes into `vectors` (one row each, nearest first), `count` of them in MMR order.
    Closeness is cosine, as the index ranks by."""
    if len(vectors) == 0:
        return []
    vectors = _unit(np.asarray(vectors, dtype=np.float32))
    relevance = vectors @ _unit(np.asarray(query, dtype=np.float32))
    likeness = vectors @ vectors.T
    taken: list[int] = []
    # The closest each candidate is to anything taken so far.
    closest_taken = np.full(len(vectors), -np.inf, dtype=np.float32)
    available = np.ones(len(vectors), dtype=bool)
    for _ in range(min(count, len(vectors))):
        redundancy = np.where(np.isfinite(closest_taken), closest_taken, 0.0)
        score = weight * relevance - (1 - weight) * redundancy
        score[~available] = -np.inf
        chosen = int(np.argmax(score))
        taken.append(chosen)
        available[chosen] = False
        closest_taken = np.maximum(closest_taken, likeness[chosen])
    return taken


def _unit(array: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(array, axis=-1, keepdims=True)
    return array / np.where(norms == 0, 1, norms)
