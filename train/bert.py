"""make train-bert   (or: python train/bert.py --help)

Full fine-tuning of BERT (bert-base-uncased by default; any encoder via --model):
dynamic padding, length-grouped batches, head+tail truncation, best epoch restored.
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("bert", __doc__)
