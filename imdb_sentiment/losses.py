"""Training losses beyond plain cross-entropy: R-Drop and supervised contrastive (SCL).

Pure functions of logits / features, so they are tested on hand-computed
inputs; the encoders module decides when to call them (training only).
"""

import torch
import torch.nn.functional as F


def symmetric_kl(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """(KL(p_a || p_b) + KL(p_b || p_a)) / 2, each summed over classes and averaged over the batch."""
    log_a = F.log_softmax(logits_a.float(), dim=-1)
    log_b = F.log_softmax(logits_b.float(), dim=-1)
    # kl_div(input, target) = KL(target || input); log_target keeps both in log space.
    kl_a_b = F.kl_div(log_b, log_a, reduction="batchmean", log_target=True)
    kl_b_a = F.kl_div(log_a, log_b, reduction="batchmean", log_target=True)
    return 0.5 * (kl_a_b + kl_b_a)


def rdrop_loss(logits_a: torch.Tensor, logits_b: torch.Tensor, labels: torch.Tensor,
               alpha: float) -> torch.Tensor:
    """R-Drop (Liang et al. 2021): CE on both dropout passes plus alpha times their symmetric KL.

    The CE is the mean of the two passes, so alpha = 0 is exactly plain CE.
    """
    ce = 0.5 * (F.cross_entropy(logits_a.float(), labels) + F.cross_entropy(logits_b.float(), labels))
    return ce + alpha * symmetric_kl(logits_a, logits_b)


def supcon_loss(features: torch.Tensor, labels: torch.Tensor, temperature: float = 0.3) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020, the "L_out" form).

    features: [batch, views, dim], already L2-normalised; labels: [batch].
    Every (sample, view) is an anchor; its positives are the other entries of
    the same label (other views of itself included); the denominator runs over
    every entry but the anchor. Anchors without a positive are left out; a
    batch with none gives 0 (still differentiable).
    """
    batch, views, dim = features.shape
    flat = features.float().reshape(batch * views, dim)
    flat_labels = labels.repeat_interleave(views)
    similarity = flat @ flat.T / temperature
    self_mask = torch.eye(batch * views, dtype=torch.bool, device=features.device)
    similarity = similarity.masked_fill(self_mask, float("-inf"))
    log_prob = similarity - torch.logsumexp(similarity, dim=1, keepdim=True)
    positives = (flat_labels[:, None] == flat_labels[None, :]) & ~self_mask
    positive_count = positives.sum(dim=1)
    has_positive = positive_count > 0
    if not has_positive.any():
        return flat.sum() * 0.0
    mean_log_prob = log_prob.masked_fill(~positives, 0.0).sum(dim=1)[has_positive] / positive_count[has_positive]
    return -mean_log_prob.mean()
