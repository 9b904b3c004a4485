"""The order recall takes the nearest chunks in: close to the query, unlike each other."""

import numpy as np

from conversations.recall.diversity import diverse_order


def _unit(*values):
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_near_copies_of_the_nearest_are_passed_over_for_the_next_thing():
    # As close as embeddings of chat turns are: the copies a little nearer than the other.
    query = _unit(1, 0, 0)
    copy = _unit(0.96, 0.28, 0)
    other = _unit(0.94, 0, 0.34)
    vectors = np.stack([copy, _unit(0.955, 0.29, 0.01), copy, other])
    order = diverse_order(query, vectors, 2)
    assert order == [0, 3], "the nearest first, then the one unlike it"


def test_without_copies_the_order_is_the_nearest_order():
    query = _unit(1, 0, 0)
    vectors = np.stack([_unit(1, 0.1, 0), _unit(1, 0, 0.5), _unit(0.2, 1, 0)])
    assert diverse_order(query, vectors, 3) == [0, 1, 2]


def test_vectors_of_any_length_count_by_direction_and_none_gives_nothing():
    query = _unit(1, 0, 0)
    vectors = np.stack([_unit(0, 1, 0) * 5, _unit(1, 0.1, 0) * 0.1])
    assert diverse_order(query, vectors, 1) == [1]
    assert diverse_order(query, np.empty((0, 3), dtype=np.float32), 5) == []
