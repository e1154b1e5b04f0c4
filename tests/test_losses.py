"""R-Drop and SupCon against values computed by hand."""

import math

import pytest
import torch
import torch.nn.functional as F

from imdb_sentiment.losses import rdrop_loss, supcon_loss, symmetric_kl


def kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


def test_symmetric_kl_is_symmetric_and_a_batch_mean():
    a = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    b = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    p = torch.softmax(a, -1).tolist()
    q = torch.softmax(b, -1).tolist()
    # Row 2 is identical in both: 0. The mean over the batch halves row 1's value.
    expected = 0.5 * (kl(p[0], q[0]) + kl(q[0], p[0])) / 2
    assert symmetric_kl(a, b).item() == pytest.approx(expected, rel=1e-6)
    assert symmetric_kl(b, a).item() == pytest.approx(expected, rel=1e-6)
    assert symmetric_kl(a, a).item() == pytest.approx(0.0, abs=1e-7)


def test_rdrop_is_mean_ce_plus_alpha_times_kl():
    a = torch.tensor([[1.0, -1.0], [0.5, 0.2], [0.0, 3.0]])
    b = torch.tensor([[0.5, -0.5], [0.1, 0.4], [1.0, 2.0]])
    labels = torch.tensor([0, 1, 1])
    ce = 0.5 * (F.cross_entropy(a, labels) + F.cross_entropy(b, labels))
    assert rdrop_loss(a, b, labels, 0.0).item() == pytest.approx(ce.item(), rel=1e-6)
    assert rdrop_loss(a, b, labels, 4.0).item() == pytest.approx(
        ce.item() + 4.0 * symmetric_kl(a, b).item(), rel=1e-6)


def test_supcon_on_a_hand_computed_batch():
    # Three unit vectors, one view each; samples 0 and 1 share label 0.
    features = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]], [[-1.0, 0.0]]])
    labels = torch.tensor([0, 0, 1])
    t = 0.5
    # Anchor 0: positive 1 (sim 0), other 2 (sim -1). Anchor 1: positive 0 (0), other 2 (0).
    # Anchor 2 has no positive: left out.
    anchor0 = -(0 / t - math.log(math.exp(0 / t) + math.exp(-1 / t)))
    anchor1 = -(0 / t - math.log(math.exp(0 / t) + math.exp(0 / t)))
    assert supcon_loss(features, labels, t).item() == pytest.approx((anchor0 + anchor1) / 2, rel=1e-6)


def test_supcon_with_two_views_counts_the_other_view_as_positive():
    # One sample, two views: each view's only other entry is its positive -> loss 0.
    features = F.normalize(torch.tensor([[[1.0, 0.2], [0.3, 1.0]]]), dim=-1)
    assert supcon_loss(features, torch.tensor([1]), 0.1).item() == pytest.approx(0.0, abs=1e-6)


def test_supcon_without_positives_is_zero_and_differentiable():
    features = F.normalize(torch.randn(2, 1, 4), dim=-1).requires_grad_(True)
    loss = supcon_loss(features, torch.tensor([0, 1]))
    loss.backward()
    assert loss.item() == 0.0 and features.grad is not None


def test_supcon_gradient_pulls_same_label_together():
    features = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]], [[-1.0, 0.0]]], requires_grad=True)
    supcon_loss(features, torch.tensor([0, 0, 1]), 0.5).backward()
    # Descending the gradient moves sample 0 toward sample 1 (+y).
    assert features.grad[0, 0, 1] < 0
