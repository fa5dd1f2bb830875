"""Data: TFDS builders over raw files, vocabularies and batch pipelines."""
