"""make train-unsloth-deberta   (or: python train/unsloth_deberta.py --help)

LoRA through unsloth's FastModel on microsoft/deberta-v2-xxlarge. CUDA GPU
only: `make setup-gpu` installs unsloth (requirements-gpu.txt). Without a GPU
it stops before importing unsloth; on CPU use `make train-deberta-lora`.
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("unsloth-deberta", __doc__)
