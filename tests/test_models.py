"""Every registered embedding-family model: padding never changes a review's output (in
training and eval mode), a tiny instance can overfit a tiny batch, and the masked helpers."""

import pytest
import torch

from imdb_sentiment import models
from imdb_sentiment.batching import length_mask
from imdb_sentiment.errors import UserError
from imdb_sentiment.config import EmbeddingConfig

VOCAB = 50


def tiny_config(name: str, **overrides) -> EmbeddingConfig:
    settings = dict(model=name, data_dir=".", embeddings="random", embedding_dim=16, hidden_size=16,
                    num_filters=8, filter_sizes="2,3,5", attention_dim=8, num_capsules=4, capsule_dim=6,
                    num_heads=2, feedforward_dim=32, dropout=0.0, embedding_dropout=0.0)
    settings.update(overrides)
    return EmbeddingConfig(**settings)


def tiny_model(name: str, seed: int = 0, **overrides) -> torch.nn.Module:
    torch.manual_seed(seed)
    config = tiny_config(name, **overrides)
    embedding = models.make_embedding(None, VOCAB, config.embedding_dim, freeze=False)
    return models.build_model(name, config, embedding)


def random_batch(lengths, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    ids = torch.randint(2, VOCAB, (len(lengths), int(lengths.max())), generator=generator)
    ids[~length_mask(lengths, ids.shape[1])] = 0
    return ids, lengths


ALL_MODELS = sorted(models.MODELS)


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny tensors: extra threads only add synchronisation, and the CI cores are shared.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_registry_has_every_family():
    assert set(models.MODELS) == {"lstm", "gru", "cnn", "cnn-lstm", "attention-lstm", "capsule-lstm",
                                  "transformer"}


@pytest.mark.parametrize("name", ALL_MODELS)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_output_does_not_depend_on_trailing_padding(name, mode):
    # Dropout off, so train mode is deterministic; eval mode checks the inference paths
    # (e.g. the Transformer's CPU fast path), train mode the paths that get gradients.
    model = tiny_model(name)
    model.train(mode == "train")
    ids, lengths = random_batch([7, 3, 1, 12])
    padded = torch.cat([ids, torch.zeros(len(ids), 9, dtype=torch.long)], dim=1)
    with torch.no_grad():
        tight = model(ids, lengths)
        loose = model(padded, lengths)
        alone = torch.cat([model(ids[i:i + 1, : lengths[i]], lengths[i:i + 1]) for i in range(len(ids))])
    assert tight.shape == (4, 2)
    torch.testing.assert_close(loose, tight, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(alone, tight, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_padding_tokens_are_never_read(name):
    # Garbage ids past a review's end (not just pad ids) must not change its output either.
    model = tiny_model(name).eval()
    ids, lengths = random_batch([6, 10, 2])
    noisy = ids.clone()
    noisy[~length_mask(lengths, ids.shape[1])] = 7
    with torch.no_grad():
        torch.testing.assert_close(model(noisy, lengths), model(ids, lengths), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_tiny_model_overfits_a_tiny_batch(name):
    model = tiny_model(name)
    ids, lengths = random_batch([9, 4, 12, 6, 2, 11, 7, 5], seed=3)
    labels = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1])
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
    model.train()
    first = None
    for _ in range(60):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(ids, lengths), labels)
        loss.backward()
        optimizer.step()
        first = loss.item() if first is None else first
    model.eval()
    with torch.no_grad():
        predictions = model(ids, lengths).argmax(-1)
    assert loss.item() < 0.1 * first
    assert predictions.tolist() == labels.tolist()


@pytest.mark.parametrize("name", ALL_MODELS)
def test_dropout_is_off_in_eval_mode(name):
    model = tiny_model(name, dropout=0.5, embedding_dropout=0.5).eval()
    ids, lengths = random_batch([5, 8])
    with torch.no_grad():
        torch.testing.assert_close(model(ids, lengths), model(ids, lengths))


def test_masked_max_and_mean_ignore_padding():
    values = torch.tensor([[[1.0], [5.0], [100.0]], [[-2.0], [-100.0], [100.0]]])
    mask = length_mask(torch.tensor([2, 1]), 3)
    assert models.masked_max(values, mask).squeeze(-1).tolist() == [5.0, -2.0]
    assert models.masked_mean(values, mask).squeeze(-1).tolist() == [3.0, -2.0]


def test_reverse_within_length_leaves_padding_in_place():
    values = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])[..., None]
    reversed_ = models.reverse_within_length(values, torch.tensor([3, 2])).squeeze(-1)
    assert reversed_.tolist() == [[3, 2, 1, 0], [5, 4, 0, 0]]


def test_cnn_takes_the_max_over_real_positions_only():
    # One filter of width 2 computing 5 - (sum of the first embedding coordinate in its window):
    # windows over padding alone would give 5 and a planted id 40 would give -35, so only a max over
    # the windows that hold a review's tokens gives its own value (5 - 3 = 2 for the window [pad, 3]).
    model = tiny_model("cnn", filter_sizes="2", num_filters=1).eval()
    with torch.no_grad():
        model.embedding.weight.zero_()
        model.embedding.weight[2:, 0] = torch.arange(2, VOCAB, dtype=torch.float32)
        conv = model.convs[0]
        conv.weight.zero_()
        conv.weight[0, 0, :] = -1.0
        conv.bias.fill_(5.0)
        features = {}
        model.head.register_forward_hook(lambda module, inputs, output: features.update(pooled=inputs[0]))
        model(torch.tensor([[3, 4, 0, 0, 0]]), torch.tensor([2]))
        assert features["pooled"].flatten().tolist() == [2.0]
        model(torch.tensor([[3, 4, 40, 0, 0]]), torch.tensor([2]))
        assert features["pooled"].flatten().tolist() == [2.0]


def test_attention_weights_are_a_distribution_over_real_time_steps():
    attention = models.AdditiveAttention(4, 3)
    states = torch.randn(2, 5, 4)
    mask = length_mask(torch.tensor([5, 2]), 5)
    _, weights = attention(states, mask)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(2))
    assert weights[1, 2:].abs().max() < 1e-4  # padding gets no weight: softmax over time, not batch


def test_squash_keeps_direction_and_maps_norm_below_one():
    vectors = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]])
    squashed = models.squash(vectors)
    norms = squashed.norm(dim=-1)
    torch.testing.assert_close(norms[:2], torch.tensor([25 / 26, 0.25 / 1.25]))
    torch.testing.assert_close(squashed[0] / norms[0], torch.tensor([0.6, 0.8]))
    assert norms[2] == 0.0


def test_capsule_routing_ignores_padded_steps():
    layer = models.CapsuleLayer(input_size=4, num_capsules=3, capsule_dim=2, routing_iterations=3)
    states = torch.randn(1, 6, 4)
    mask = length_mask(torch.tensor([4]), 6)
    with torch.no_grad():
        full = layer(states, mask)
        cut = layer(states[:, :4], mask[:, :4])
    torch.testing.assert_close(full, cut)
    assert full.norm(dim=-1).max() < 1.0


def test_transformer_is_word_level_with_positions():
    # Word order matters (positions are encoded) and the model reads token ids, not characters.
    model = tiny_model("transformer").eval()
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        forward = model(ids, torch.tensor([4]))
        backward = model(ids.flip(1), torch.tensor([4]))
    assert not torch.allclose(forward, backward)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(UserError, match="capsule-lstm"):
        models.build_model("rnn", tiny_config("lstm"), torch.nn.Embedding(4, 4))


def test_config_rejects_heads_that_do_not_divide_the_width():
    with pytest.raises(UserError, match="--num-heads"):
        tiny_config("transformer", hidden_size=10, num_heads=4)
    with pytest.raises(UserError, match="--filter-sizes"):
        tiny_config("cnn", filter_sizes="3,x")


def test_the_lstm_batching_benchmark_times_both_sides_and_names_the_run_that_stands_for_lstm(
        tiny_data_dir, mlflow_store, capsys):
    """make bench-lstm on tiny settings: both epochs timed and logged as one benchmark run; the
    LSTM line comes from the store reader (no full-data run here, so it says so)."""
    from mlflow.tracking import MlflowClient

    from tests.support import script_main

    script_main("lstm_batching")(["--data-dir", str(tiny_data_dir), "--reviews", "40", "--hidden-size", "8",
                                  "--embedding-dim", "16", "--embeddings", "random", "--batch-size", "8",
                                  "--no-progress"])
    out = capsys.readouterr().out
    assert "speed-up: " in out
    assert "full-data LSTM test accuracy: no finished full-data LSTM run in the MLflow store yet" in out
    client = MlflowClient(mlflow_store)
    [run] = client.search_runs([client.get_experiment_by_name("test").experiment_id], "tags.benchmark = 'lstm_batching'")
    assert {"ours_seconds", "reference_seconds", "speedup"} <= set(run.data.metrics)
