"""Embedding-family models and their registry.

Every model takes (ids [B, T], lengths [B]) and returns logits [B, 2]. None
reads past a review's end: recurrent layers run each direction within a
review's length, and pooling, attention, routing and convolutions mask
padded positions, so a review's output does not depend on how much padding
follows it (tests check this, in training and in eval mode).

MODELS maps a family name to a builder `build(config, embedding) -> nn.Module`.
"""

import math

import torch
from torch import nn

from .batching import length_mask
from .errors import UserError

NEG_INF = -1e4  # large enough to vanish in softmax / max, safe in half precision


def make_embedding(matrix: torch.Tensor | None, vocab_size: int, dim: int, freeze: bool) -> nn.Embedding:
    embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
    if matrix is not None:
        embedding.weight.data.copy_(matrix)
    embedding.weight.requires_grad = not freeze
    return embedding


def masked_max(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over time [B, T, H] -> [B, H], real positions only."""
    return values.masked_fill(~mask[..., None], NEG_INF).max(dim=1).values


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask[..., None].to(values.dtype)
    return (values * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def reverse_within_length(values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence's real part in place, padding left where it is: [B, T, ...]."""
    positions = torch.arange(values.shape[1], device=values.device)[None, :]
    flipped = lengths[:, None] - 1 - positions
    index = torch.where(flipped >= 0, flipped, positions)
    return values.gather(1, index[..., None].expand_as(values))


class MaskedBiRNN(nn.Module):
    """A bidirectional LSTM/GRU that never reads padding, without packing.

    The forward direction runs on the padded batch as it is (padding comes
    after a review, so real positions never see it). The backward direction
    runs on each review reversed within its own length, so it too starts at
    the review's last real token. Packed sequences would do the same, but on
    CPU their backward pass is quadratic in the length (a full-size zero
    fill per time step) and ran 30x slower here.
    Outputs at padded positions are arbitrary: callers mask them.
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 dropout: float = 0.0):
        super().__init__()
        rnn_cls = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.forward_layers = nn.ModuleList()
        self.backward_layers = nn.ModuleList()
        for layer in range(num_layers):
            size = input_size if layer == 0 else 2 * hidden_size
            self.forward_layers.append(rnn_cls(size, hidden_size, batch_first=True))
            self.backward_layers.append(rnn_cls(size, hidden_size, batch_first=True))
        self.dropout = nn.Dropout(dropout)
        self.output_size = 2 * hidden_size

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        outputs = inputs
        for layer, (forward_rnn, backward_rnn) in enumerate(zip(self.forward_layers, self.backward_layers)):
            if layer > 0:
                outputs = self.dropout(outputs)
            ahead, _ = forward_rnn(outputs)
            behind, _ = backward_rnn(reverse_within_length(outputs, lengths))
            outputs = torch.cat([ahead, reverse_within_length(behind, lengths)], dim=-1)
        return outputs


class RecurrentClassifier(nn.Module):
    """Bidirectional LSTM or GRU over word vectors; masked max+mean pooling over time.

    Pooling both ways uses every time step (a last hidden state forgets the
    start of a 400-word review); the masks keep padding out of both.
    """

    def __init__(self, embedding: nn.Embedding, cell: str, hidden_size: int, num_layers: int,
                 dropout: float, embedding_dropout: float):
        super().__init__()
        self.embedding = embedding
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.rnn = MaskedBiRNN(cell, embedding.embedding_dim, hidden_size, num_layers, dropout)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * hidden_size, 2))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = length_mask(lengths, ids.shape[1])
        states = self.rnn(self.embedding_dropout(self.embedding(ids)), lengths)
        pooled = torch.cat([masked_max(states, mask), masked_mean(states, mask)], dim=-1)
        return self.head(pooled)


def zero_padding(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B, T, H] with padded positions set to 0, so a conv window reaching past a review reads zeros."""
    return values * mask[..., None].to(values.dtype)


class ConvClassifier(nn.Module):
    """Kim (2014): parallel convolutions of several widths, masked max-over-time, one linear layer.

    Each convolution pads a review with width-1 zeros on both sides and its
    padded positions are zeroed first, so a window reaching past the end
    reads the same zeros however much padding follows; outputs of windows
    that hold no real token are masked before the max.
    """

    def __init__(self, embedding: nn.Embedding, filter_sizes: list[int], num_filters: int, dropout: float,
                 embedding_dropout: float):
        super().__init__()
        self.embedding = embedding
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.convs = nn.ModuleList(nn.Conv1d(embedding.embedding_dim, num_filters, width, padding=width - 1)
                                   for width in filter_sizes)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(num_filters * len(filter_sizes), 2))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = length_mask(lengths, ids.shape[1])
        inputs = zero_padding(self.embedding_dropout(self.embedding(ids)), mask).transpose(1, 2)
        pooled = []
        for conv in self.convs:
            features = torch.relu(conv(inputs)).transpose(1, 2)  # [B, T + width - 1, F]
            # Output j covers inputs j-width+1 .. j: it holds a real token while j < length + width - 1.
            pooled.append(masked_max(features, length_mask(lengths + conv.kernel_size[0] - 1, features.shape[1])))
        return self.head(torch.cat(pooled, dim=-1))


class ConvRecurrentClassifier(nn.Module):
    """Convolution along time, max-pooled by `pool_size`, then a BiLSTM over the pooled time steps.

    The convolution ("same" padding, odd width) turns each position into an
    n-gram feature; the pooling shortens the sequence the LSTM must walk.
    ReLU features are >= 0 and padded ones are set to 0, so a pooling window
    that straddles a review's end takes its real maximum.
    """

    def __init__(self, embedding: nn.Embedding, filter_width: int, num_filters: int, pool_size: int,
                 hidden_size: int, num_layers: int, dropout: float, embedding_dropout: float):
        super().__init__()
        self.embedding = embedding
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.conv = nn.Conv1d(embedding.embedding_dim, num_filters, filter_width, padding=filter_width // 2)
        # An even width gives one output more than inputs: it is cropped, output t then covers
        # inputs t - width/2 .. t + width/2 - 1.
        self.pool_size = pool_size
        self.rnn = MaskedBiRNN("lstm", num_filters, hidden_size, num_layers, dropout)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * hidden_size, 2))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = length_mask(lengths, ids.shape[1])
        inputs = zero_padding(self.embedding_dropout(self.embedding(ids)), mask)
        features = torch.relu(self.conv(inputs.transpose(1, 2)))[..., : ids.shape[1]]
        features = zero_padding(features.transpose(1, 2), mask)
        if self.pool_size > 1:
            features = nn.functional.max_pool1d(features.transpose(1, 2), self.pool_size, self.pool_size,
                                                ceil_mode=True).transpose(1, 2)
            lengths = torch.div(lengths + self.pool_size - 1, self.pool_size, rounding_mode="floor")
            mask = length_mask(lengths, features.shape[1])
        states = self.rnn(features, lengths)  # [B, T', 2H]: time stays the LSTM's sequence axis
        return self.head(torch.cat([masked_max(states, mask), masked_mean(states, mask)], dim=-1))


class AdditiveAttention(nn.Module):
    """Bahdanau-style scores v^T tanh(W h_t), softmax over time with padding masked out."""

    def __init__(self, input_size: int, attention_dim: int):
        super().__init__()
        self.project = nn.Linear(input_size, attention_dim)
        self.score = nn.Linear(attention_dim, 1, bias=False)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.score(torch.tanh(self.project(states))).squeeze(-1)  # [B, T]
        weights = torch.softmax(scores.masked_fill(~mask, NEG_INF), dim=1)
        return torch.einsum("bt,bth->bh", weights, states), weights


class AttentionRecurrentClassifier(nn.Module):
    """BiLSTM whose states are summed with additive attention weights over time."""

    def __init__(self, embedding: nn.Embedding, hidden_size: int, num_layers: int, attention_dim: int,
                 dropout: float, embedding_dropout: float):
        super().__init__()
        self.embedding = embedding
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.rnn = MaskedBiRNN("lstm", embedding.embedding_dim, hidden_size, num_layers, dropout)
        self.attention = AdditiveAttention(2 * hidden_size, attention_dim)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden_size, 2))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = length_mask(lengths, ids.shape[1])
        states = self.rnn(self.embedding_dropout(self.embedding(ids)), lengths)
        context, _ = self.attention(states, mask)
        return self.head(context)


def squash(vectors: torch.Tensor, dim: int = -1, eps: float = 1e-7) -> torch.Tensor:
    """Sabour et al. (2017): keep the direction, map the norm n to n^2 / (1 + n^2) < 1."""
    squared = (vectors * vectors).sum(dim=dim, keepdim=True)
    return vectors * (squared / (1.0 + squared)) / torch.sqrt(squared + eps)


class CapsuleLayer(nn.Module):
    """Primary capsules (one per time step) routed to `num_capsules` output capsules.

    Every time step's state predicts each output capsule through a weight
    shared across time; dynamic routing (Sabour et al. 2017) then sets the
    coupling coefficients by agreement. Padded time steps get coupling 0,
    so they add nothing to any capsule.
    """

    def __init__(self, input_size: int, num_capsules: int, capsule_dim: int, routing_iterations: int):
        super().__init__()
        self.num_capsules, self.capsule_dim = num_capsules, capsule_dim
        self.routing_iterations = routing_iterations
        self.predict = nn.Linear(input_size, num_capsules * capsule_dim, bias=False)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, steps, _ = states.shape
        predictions = self.predict(states).view(batch, steps, self.num_capsules, self.capsule_dim)
        logits = states.new_zeros(batch, steps, self.num_capsules)
        keep = mask[..., None].to(states.dtype)
        for iteration in range(self.routing_iterations):
            coupling = torch.softmax(logits, dim=-1) * keep  # each time step shares itself among capsules
            capsules = squash(torch.einsum("btj,btjd->bjd", coupling, predictions))
            if iteration < self.routing_iterations - 1:
                logits = logits + torch.einsum("btjd,bjd->btj", predictions, capsules)
        return capsules  # [B, J, D]


class CapsuleRecurrentClassifier(nn.Module):
    """BiLSTM states as primary capsules, dynamic routing to output capsules, linear on their poses."""

    def __init__(self, embedding: nn.Embedding, hidden_size: int, num_layers: int, num_capsules: int,
                 capsule_dim: int, routing_iterations: int, dropout: float, embedding_dropout: float):
        super().__init__()
        self.embedding = embedding
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.rnn = MaskedBiRNN("lstm", embedding.embedding_dim, hidden_size, num_layers, dropout)
        self.capsules = CapsuleLayer(2 * hidden_size, num_capsules, capsule_dim, routing_iterations)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(num_capsules * capsule_dim, 2))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = length_mask(lengths, ids.shape[1])
        states = self.rnn(self.embedding_dropout(self.embedding(ids)), lengths)
        return self.head(self.capsules(states, mask))


def sinusoidal_positions(max_len: int, dim: int) -> torch.Tensor:
    """Vaswani et al. (2017) position encodings, [max_len, dim]."""
    position = torch.arange(max_len, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(max_len, dim)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)[:, : dim // 2]
    return table


class TransformerClassifier(nn.Module):
    """Word-level Transformer encoder: word vectors + sinusoidal positions, padding-masked
    self-attention, masked mean pooling.

    Pre-norm layers train stably from scratch with the loop's warm-up. The
    encoder is built without nested tensors, so eval mode computes the same
    function as training mode (the CPU fast path with nested tensors drops
    padded rows and returns zeros there instead).
    """

    def __init__(self, embedding: nn.Embedding, model_dim: int, num_heads: int, num_layers: int,
                 feedforward_dim: int, dropout: float, embedding_dropout: float):
        super().__init__()
        self.embedding = embedding
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        dim = embedding.embedding_dim
        self.project = nn.Identity() if dim == model_dim else nn.Linear(dim, model_dim)
        self.model_dim = model_dim
        layer = nn.TransformerEncoderLayer(model_dim, num_heads, feedforward_dim, dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(model_dim),
                                             enable_nested_tensor=False)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(model_dim, 2))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = length_mask(lengths, ids.shape[1])
        positions = sinusoidal_positions(ids.shape[1], self.model_dim).to(ids.device)
        inputs = self.project(self.embedding_dropout(self.embedding(ids))) + positions
        states = self.encoder(inputs, src_key_padding_mask=~mask)
        return self.head(masked_mean(states, mask))


def build_lstm(config, embedding):
    return RecurrentClassifier(embedding, "lstm", config.hidden_size, config.num_layers,
                               config.dropout, config.embedding_dropout)


def build_gru(config, embedding):
    return RecurrentClassifier(embedding, "gru", config.hidden_size, config.num_layers,
                               config.dropout, config.embedding_dropout)


def build_cnn(config, embedding):
    return ConvClassifier(embedding, config.filter_size_list, config.num_filters, config.dropout,
                          config.embedding_dropout)


def build_cnn_lstm(config, embedding):
    return ConvRecurrentClassifier(embedding, config.filter_size_list[0], config.num_filters, config.pool_size,
                                   config.hidden_size, config.num_layers, config.dropout,
                                   config.embedding_dropout)


def build_attention_lstm(config, embedding):
    return AttentionRecurrentClassifier(embedding, config.hidden_size, config.num_layers, config.attention_dim,
                                        config.dropout, config.embedding_dropout)


def build_capsule_lstm(config, embedding):
    return CapsuleRecurrentClassifier(embedding, config.hidden_size, config.num_layers, config.num_capsules,
                                      config.capsule_dim, config.routing_iterations, config.dropout,
                                      config.embedding_dropout)


def build_transformer(config, embedding):
    return TransformerClassifier(embedding, config.hidden_size, config.num_heads, config.num_layers,
                                 config.feedforward_dim, config.dropout, config.embedding_dropout)


MODELS = {
    "lstm": build_lstm,
    "gru": build_gru,
    "cnn": build_cnn,
    "cnn-lstm": build_cnn_lstm,
    "attention-lstm": build_attention_lstm,
    "capsule-lstm": build_capsule_lstm,
    "transformer": build_transformer,
}


def build_model(name: str, config, embedding: nn.Embedding) -> nn.Module:
    if name not in MODELS:
        raise UserError(f"--model {name}: unknown; known models: {', '.join(sorted(MODELS))}")
    return MODELS[name](config, embedding)


def forward_batch(model, batch):
    """How the training loop calls an embedding-family model."""
    return model(batch["ids"], batch["lengths"])


def count_trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
