"""Reading a report in order: transitions fitted from labelled reports, forward-backward
posteriors that move uncertain units and keep confident ones."""

import numpy as np
import pytest

from sectioncls.sequence import Transitions, fit_transitions, smooth, smooth_groups

ACH, PRO, PLA, OTH = range(4)


@pytest.fixture
def transitions() -> Transitions:
    # Reports as they are written: framing, results, a few problems, plans, a closing line.
    docs = [[OTH, OTH] + [ACH] * 30 + [PRO] * 4 + [PLA] * 10 + [OTH]] * 5
    docs.append([OTH] + [ACH] * 10 + [PRO] + [ACH] * 10 + [PLA] * 5)  # a problem inside the review
    return fit_transitions(docs, 4)


def test_fit_counts_and_normalises(transitions):
    m = np.array(transitions.matrix)
    assert np.allclose(m.sum(axis=1), 1, atol=1e-4)
    assert np.isclose(sum(transitions.start), 1, atol=1e-4)
    assert transitions.counts == {"documents": 6, "pairs": 5 * 46 + 26}
    assert m[ACH, ACH] > 0.9 and m[PLA, ACH] < 0.05
    assert (m > 0).all()  # add-one: nothing is impossible
    again = Transitions.from_dict(transitions.to_dict())
    assert again == transitions


def test_an_uncertain_unit_follows_its_run(transitions):
    # A measure without 了/已 in the middle of the results: the encoder leans to plan.
    probs = np.array(
        [[0.9, 0.02, 0.05, 0.03]] * 5 + [[0.35, 0.02, 0.6, 0.03]] + [[0.9, 0.02, 0.05, 0.03]] * 5
    )
    out = smooth(probs, transitions)
    assert out.shape == probs.shape and np.allclose(out.sum(1), 1, atol=1e-5)
    assert out[5].argmax() == ACH
    assert probs.argmax(1)[5] == PLA


def test_a_confident_unit_keeps_its_own_label(transitions):
    # A problem stated inside the review, clearly worded: it stays a problem. (One sentence
    # against runs of results on both sides needs odds of a few hundred to one.)
    probs = np.array(
        [[0.95, 0.02, 0.02, 0.01]] * 5
        + [[0.0015, 0.998, 0.0004, 0.0001]]
        + [[0.95, 0.02, 0.02, 0.01]] * 5
    )
    assert smooth(probs, transitions)[5].argmax() == PRO


def test_off_and_short_inputs_are_unchanged(transitions):
    probs = np.array([[0.35, 0.02, 0.6, 0.03], [0.9, 0.02, 0.05, 0.03]], dtype=np.float32)
    assert np.array_equal(smooth(probs, None), probs)
    off = Transitions(transitions.start, transitions.matrix, weight=0.0)
    assert np.array_equal(smooth(probs, off), probs)
    assert np.allclose(smooth(probs[:1], transitions), probs[:1])


def test_transitions_of_another_schema_are_refused(transitions):
    with pytest.raises(ValueError, match="transitions are for 4 categories, the model has 3"):
        smooth(np.full((3, 3), 1 / 3), transitions)


def test_groups_are_read_per_report_in_unit_order(transitions):
    rng = np.random.default_rng(0)
    a = rng.dirichlet(np.ones(4), size=7)
    b = rng.dirichlet(np.ones(4), size=5)
    flat = np.concatenate([a, b])
    docs = ["a"] * 7 + ["b"] * 5
    order = list(range(7)) + list(range(5))
    perm = rng.permutation(len(flat))
    out = smooth_groups(flat[perm], [docs[i] for i in perm], [order[i] for i in perm], transitions)
    expected = np.concatenate([smooth(a, transitions), smooth(b, transitions)])
    assert np.allclose(out, expected[perm], atol=1e-6)
