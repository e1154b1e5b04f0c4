"""make train-rdrop   (or: python train/rdrop.py --help)

R-Drop fine-tuning (BERT by default): each batch runs through the model twice
with different dropout; loss = CE on both + --rdrop-alpha x symmetric KL.
One pass at inference.
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("rdrop", __doc__)
