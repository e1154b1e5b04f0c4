"""make train-deberta-prompt   (or: python train/deberta_prompt.py --help)

Prompt tuning on DeBERTa: learned virtual tokens (--num-virtual-tokens,
--prompt-init-text) with the classifier head trainable (the reference left it
frozen and scored 0.52).
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("deberta-prompt", __doc__)
