"""make train-deberta-ptuning   (or: python train/deberta_ptuning.py --help)

P-tuning on DeBERTa: virtual tokens produced by a small prompt encoder
(--num-virtual-tokens, --encoder-hidden-size), the classifier head trained.
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("deberta-ptuning", __doc__)
