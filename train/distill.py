"""make train-distill   (or: python train/distill.py --help)

Distils a teacher (by default the best finished ensemble run; --teacher RUN_ID
for any finished run with a logged model) into a TF-IDF NB-LR student: the
student is fitted to the teacher's probabilities on the training split and the
50,000 unlabelled reviews (--alpha mixes in the true labels, --temperature
softens the teacher). The teacher's probabilities are cached by its run id.
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("distill", __doc__)
