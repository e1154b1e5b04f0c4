"""make train-transformer   (or: python train/transformer.py --help)

Word-level Transformer encoder on word2vec vectors: sinusoidal positions,
padding mask in self-attention, masked mean pooling, linear warm-up then decay.
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("transformer", __doc__)
