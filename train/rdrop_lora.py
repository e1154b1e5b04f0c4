"""make train-rdrop-lora   (or: python train/rdrop_lora.py --help)

R-Drop with LoRA (BERT by default): two dropout passes per batch, CE on both
plus --rdrop-alpha x their symmetric KL; only the adapters and the head train.
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("rdrop-lora", __doc__)
