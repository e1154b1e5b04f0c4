"""Training losses: cross-entropy, R-Drop and supervised contrastive (SCL).

The loss functions are pure functions of logits / features, tested on
hand-computed inputs. The `*_compute_loss` builders below turn them into what
the training loop calls, compute_loss(model, batch) -> (loss, logits), so a
regulariser changes the loss and never the loop; evaluation always uses the
plain forward.
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


# --- what the training loop calls ---------------------------------------------------

def cross_entropy_loss(forward):
    """Plain CE on forward(model, batch)'s logits: every family's default."""
    def compute_loss(model, batch):
        logits = forward(model, batch)
        return F.cross_entropy(logits.float(), batch["labels"]), logits
    return compute_loss


def pooled_features(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the last hidden states over real tokens; virtual tokens prepended by
    prompt methods make hidden longer than the mask, and count as real."""
    extra = hidden.shape[1] - attention_mask.shape[1]
    if extra > 0:
        attention_mask = torch.cat([attention_mask.new_ones(attention_mask.shape[0], extra), attention_mask], 1)
    mask = attention_mask[:, : hidden.shape[1]].unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def rdrop_compute_loss(forward, config):
    """Two dropout passes as one doubled batch (each row draws its own dropout mask)."""
    def compute_loss(model, batch):
        doubled = {key: torch.cat([batch[key], batch[key]]) for key in ("input_ids", "attention_mask")}
        logits_a, logits_b = forward(model, doubled).chunk(2)
        return rdrop_loss(logits_a, logits_b, batch["labels"], config.rdrop_alpha), logits_a
    return compute_loss


def scl_compute_loss(forward, config):
    """CE plus lambda times SupCon on the L2-normalised mean-pooled features, as [batch, 1 view, dim]."""
    def compute_loss(model, batch):
        output = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       output_hidden_states=True)
        features = F.normalize(pooled_features(output.hidden_states[-1].float(), batch["attention_mask"]), dim=-1)
        contrastive = supcon_loss(features.unsqueeze(1), batch["labels"], config.scl_temperature)
        loss = F.cross_entropy(output.logits.float(), batch["labels"]) + config.scl_lambda * contrastive
        return loss, output.logits
    return compute_loss


# regulariser name -> builder(forward, config) of the training loss
COMPUTE_LOSSES = {"none": lambda forward, config: cross_entropy_loss(forward),
                  "rdrop": rdrop_compute_loss, "scl": scl_compute_loss}
