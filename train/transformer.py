"""make train-transformer   (or: python train/transformer.py --help)

Word-level Transformer encoder on word2vec vectors: sinusoidal positions,
padding mask in self-attention, masked mean pooling, linear warm-up then decay.
"""

from imdb_sentiment.config import parse_config
from imdb_sentiment.errors import run_main
from imdb_sentiment.pipeline import EmbeddingConfig, run_embedding_family

DEFAULTS = {"model": "transformer", "epochs": 3, "num_layers": 2, "hidden_size": 128, "num_heads": 4,
            "feedforward_dim": 256, "lr": 5e-4, "warmup_ratio": 0.1, "weight_decay": 0.01, "dropout": 0.1,
            "embedding_dropout": 0.1}


def main(argv=None):
    config = parse_config(EmbeddingConfig, argv, prog="train/transformer.py", description=__doc__, defaults=DEFAULTS)
    run_embedding_family(config, family="transformer")


if __name__ == "__main__":
    run_main(main)
