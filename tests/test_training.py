"""The shared loop: it learns, evaluates without dropout, keeps order, restores the best epoch;
and batching buckets by length without losing or repeating a review."""

import numpy as np
import torch

from imdb_sentiment.batching import BucketBatchSampler, TokenIds, make_loader, pad_batch
from imdb_sentiment.models import RecurrentClassifier, forward_batch, make_embedding
from imdb_sentiment.training import FitSettings, fit, predict


def toy_data(n=32, seed=0):
    """Label 1 reviews contain token 2 ("good"), label 0 contain token 3 ("bad"); lengths vary."""
    rng = np.random.default_rng(seed)
    sequences, labels = [], []
    for i in range(n):
        label = i % 2
        seq = rng.integers(4, 20, size=rng.integers(3, 15)).astype(np.int32)
        seq[rng.integers(len(seq))] = 2 if label else 3
        sequences.append(seq)
        labels.append(label)
    return sequences, np.array(labels)


def tiny_lstm(dropout=0.0, seed=0):
    torch.manual_seed(seed)
    return RecurrentClassifier(make_embedding(None, 20, 8, False), "lstm", 8, 1, dropout, dropout)


def loaders(n=32):
    sequences, labels = toy_data(n)
    train = make_loader(TokenIds(sequences, labels), 8, True, 0)
    val = make_loader(TokenIds(sequences, labels), 8, False, 0)
    return train, val


def test_bucket_sampler_covers_every_item_once_in_similar_lengths():
    lengths = np.random.default_rng(1).integers(1, 500, size=1000)
    sampler = BucketBatchSampler(lengths, batch_size=32, shuffle=True, seed=0)
    batches = list(sampler)
    flat = sorted(i for batch in batches for i in batch)
    assert flat == list(range(1000)) and len(batches) == len(sampler)
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in batches])
    assert spread < 60  # random batches would spread ~450
    sampler.set_epoch(1)
    assert list(sampler) != batches  # a new order each epoch


def test_pad_batch_pads_with_pad_id_and_keeps_lengths():
    dataset = TokenIds([np.array([5, 6, 7]), np.array([8])], [1, 0])
    batch = pad_batch([dataset[0], dataset[1]])
    assert batch["ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["lengths"].tolist() == [3, 1] and batch["index"].tolist() == [0, 1]


def test_a_tiny_model_overfits_a_tiny_set():
    train, val = loaders()
    model = tiny_lstm()
    result = fit(model, train, val, FitSettings(epochs=40, lr=0.02, patience=0, progress=False),
                 torch.device("cpu"), forward=forward_batch)
    assert result.history[-1]["train_acc"] == 1.0
    assert result.best_val_acc == 1.0


def test_predict_is_in_dataset_order_and_without_dropout():
    sequences, labels = toy_data(40)
    model = tiny_lstm(dropout=0.9)
    loader = make_loader(TokenIds(sequences, labels), 7, False, 0)  # batches sorted by length
    first, _ = predict(model, loader, forward_batch, torch.device("cpu"))
    second, _ = predict(model, loader, forward_batch, torch.device("cpu"))
    assert np.array_equal(first, second)  # eval mode: dropout off
    model.eval()
    with torch.no_grad():
        one_by_one = [torch.softmax(model(torch.tensor(s[None], dtype=torch.long),
                                          torch.tensor([len(s)])), -1)[0, 1].item() for s in sequences]
    assert np.allclose(first, one_by_one, atol=1e-5)
    assert model.training is False


def test_best_epoch_weights_are_restored():
    train, val = loaders()
    model = tiny_lstm()
    settings = FitSettings(epochs=6, lr=0.02, patience=0, progress=False)

    def sabotage(epoch, metrics):
        if epoch == settings.epochs:  # after the last evaluation: flip every prediction
            with torch.no_grad():
                model.head[-1].weight.mul_(-1)
                model.head[-1].bias.mul_(-1)

    result = fit(model, train, val, settings, torch.device("cpu"), forward=forward_batch, on_epoch=sabotage)
    probs, _ = predict(model, val, forward_batch, torch.device("cpu"))
    assert result.best_val_acc > 0.6
    assert np.mean((probs >= 0.5) == val.dataset.labels) == result.best_val_acc


def test_early_stopping_stops_after_patience():
    train, val = loaders()
    model = tiny_lstm()
    # lr 0: nothing improves after epoch 1, so patience 2 stops at epoch 3
    result = fit(model, train, val, FitSettings(epochs=10, lr=1e-12, patience=2, progress=False),
                 torch.device("cpu"), forward=forward_batch)
    assert len(result.history) == 3 and result.best_epoch == 1
