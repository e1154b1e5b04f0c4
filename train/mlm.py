"""make train-mlm   (or: python train/mlm.py --help)

`make pretrain-minilm` runs it on all-MiniLM-L6-v2.

Masked-LM pretraining of an encoder on the training split and the unlabelled reviews (never
validation or test text), logged as one MLflow run whose model `encoder` any encoder family
fine-tunes with --model runs:/<run id>/encoder. A killed run goes on with --resume RUN_ID.
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("mlm", __doc__)
