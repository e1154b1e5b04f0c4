"""Shared core of the IMDB sentiment lab: data, text, models, training, tracking.

One module per concern:
    paths       where the repo, data and MLflow store live
    errors      UserError, the one-line error for a user mistake
    config      typed dataclass configs and the command line made from them
    data        Kaggle / aclImdb files -> rows (id, review, label, rating)
    fetch       `make data`: download or import the data into data/
    text        cleaning, tokens, vocabulary, encoding, on-disk cache
    embeddings  word2vec training and word-vector files
    batching    length-bucketed batches with masks
    models      the embedding-family model builders (MODELS registry)
    training    the shared training / evaluation loop
    metrics     accuracy, AUC, Kaggle submission
    tracking    MLflow runs, params, metrics, artifacts
    pipeline    the end-to-end recipe a train/ script calls
"""
