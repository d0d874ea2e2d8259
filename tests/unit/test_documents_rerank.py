"""Candidates fitted to the full image are scored again before one is finished (``rerank``)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from media.documents.detect import Candidates, candidates, contenders, rerank
from tests.unit.document_photos import document_frame


def _found(scores: list[float]) -> tuple[Candidates, NDArray[np.float32]]:
    """Real cues of a printed page on a dark pad, as two candidates with the given scores."""
    frame, quad = document_frame(700, 500, size=(1280, 960), seed=3)
    found = candidates(frame)
    assert found is not None
    two = Candidates(
        found.factor,
        found.quads[[0, 0]],
        found.features[[0, 0]],
        np.array(scores),
        found.maps,
        found.density,
        found.probability,
        found.overlap[[0, 0]],
        found.scale,
    )
    return two, quad


def _off_the_page(quad: NDArray[np.float32]) -> NDArray[np.float64]:
    """The page's outline moved by 40 % of its width: two sides on the bare pad."""
    q = np.asarray(quad, np.float64).copy()
    q[:, 0] += 0.4 * (q[1, 0] - q[0, 0])
    return q


def test_a_later_candidate_that_fits_the_page_goes_first() -> None:
    found, quad = _found([5.0, 4.0])
    wrong, right = _off_the_page(quad), np.asarray(quad, np.float64)
    assert rerank(found, [0, 1], [wrong, right]) == [1, 0]


def test_the_first_keeps_its_place_when_it_fits_as_well() -> None:
    found, quad = _found([5.0, 4.0])
    right = np.asarray(quad, np.float64)
    assert rerank(found, [0, 1], [right, right + 0.3]) == [0, 1]
    assert rerank(found, [0, 1], [right, _off_the_page(quad)]) == [0, 1]


def test_an_outline_that_nesting_put_first_is_not_reranked() -> None:
    # The first scores below the second: ``nesting`` chose it as the outline around it.
    found, quad = _found([3.0, 4.0])
    wrong, right = _off_the_page(quad), np.asarray(quad, np.float64)
    assert rerank(found, [0, 1], [wrong, right]) == [0, 1]


def test_a_single_candidate_is_its_own_order() -> None:
    found, quad = _found([5.0, 4.0])
    assert rerank(found, [0], [_off_the_page(quad)]) == [0]


def test_only_runners_up_close_to_the_first_contend() -> None:
    scores = np.array([5.0, 4.5, -9.0, 3.2, 2.9])
    assert contenders(scores, [0, 1, 3, 4]) == [0, 1, 3]
    assert contenders(scores, [0, 4]) == [0]
    assert contenders(scores, [1, 3]) == [1, 3]


def test_an_outline_put_first_by_nesting_has_no_contenders() -> None:
    # Candidate 2 holds the better-scoring 0 and 1 across a uniform margin (see ``nesting``).
    scores = np.array([5.0, 4.5, 4.0])
    assert contenders(scores, [2, 0, 1]) == [2]
