"""make train-unsloth-modernbert   (or: python train/unsloth_modernbert.py --help)

LoRA through unsloth's FastModel on answerdotai/ModernBERT-large. CUDA GPU
only: `make setup-gpu` installs unsloth (requirements-gpu.txt). Without a GPU
it stops before importing unsloth; on CPU use `make train-bert --method lora`
with --model a ModernBERT folder.
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("unsloth-modernbert", __doc__)
