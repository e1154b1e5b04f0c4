"""Shared core of the IMDB sentiment lab: data, text, models, training, tracking, serving.

One module per concern:
    paths         where the repo, data, MLflow store and local servers live
    errors        UserError, the one-line error for a user mistake; the shared parser
    config        typed dataclass configs and the command line made from them
    families      the registry of model families (FAMILIES) and the tags their runs carry: data
    cli           a train/ script's command line: a family's config parsed, then one run
    data          Kaggle / aclImdb files -> rows (id, review, label, rating)
    fetch         `make data`: download or import the data into data/
    text          cleaning, tokens, vocabulary, encoding, on-disk cache
    embeddings    word2vec training and word-vector files
    paragraph_vectors  PV-DBOW document vectors: a review's words, inference the same in any process
    batching      length-bucketed batches with masks
    models        the embedding-family model builders (MODELS registry)
    linear        the TF-IDF n-gram, naive-Bayes and logistic-regression pipeline
    losses        cross-entropy, R-Drop and supervised contrastive losses
    device        device, precision (CPU bf16 detection), processes and seeds
    training      the shared training loop: fit, predict, checkpoints
    runs          the run skeleton every family trains through (run_family)
    recipes/      what each kind of family does inside a run (word vectors, encoder, tfidf, doc2vec, ...)
    encoders/     pretrained encoders: architectures, PEFT methods, loading, tokens
    metrics       accuracy, AUC, Kaggle submission
    reporting     a run's test report, figures and prediction files
    tracking      writing MLflow runs: params, metrics, artifacts; the store checked and opened
    store         reading them: runs in the lab's terms, the run that stands for a family
    combine       stacking finished runs: their predictions, the split they share
    search/       Optuna studies: spaces, storage, budget, the study loop
    serving       the logged pyfunc model of every kind: its writer beside its loader
    model_registry  which runs logged a model, model URIs, the MLflow Model Registry
    pyfunc_model  the file MLflow loads as the model
    serve_app     `make serve`'s HTTP app: MLflow's scoring server behind a request check
    inference     loading a logged model for predict and serve
"""
