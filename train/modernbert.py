"""make train-modernbert   (or: python train/modernbert.py --help)

Full fine-tuning of ModernBERT (answerdotai/ModernBERT-base by default).
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("modernbert", __doc__)
