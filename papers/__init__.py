"""One subpackage per paper: `python -m papers.<slug> ...`. Papers never import each other."""
