"""make train-deberta-prefix   (or: python train/deberta_prefix.py --help)

Prefix tuning: learned keys and values fed as past_key_values. DeBERTa does not
accept them, so on the default checkpoint this stops with a one-line error
before any weights load; with --model a BERT or RoBERTa checkpoint it trains.
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("deberta-prefix", __doc__)
