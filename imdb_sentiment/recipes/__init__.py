"""The recipes: what is special about each kind of family (see imdb_sentiment/runs.py)."""
