"""make train-deberta-lora   (or: python train/deberta_lora.py --help)

LoRA on DeBERTa (microsoft/deberta-v3-base by default; the reference used
microsoft/deberta-v2-xxlarge with --quantize 8bit): low-rank adapters on the
attention projections, the classifier head trained in full.
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("deberta-lora", __doc__)
