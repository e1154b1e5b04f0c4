"""make train-tfidf   (or: python train/tfidf.py --help)

TF-IDF over word 1-3-grams with naive-Bayes feature weights and logistic
regression (NB-LR): the strong linear baseline, trained in about a minute.
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("tfidf", __doc__)
