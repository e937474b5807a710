"""mamlpriv: privacy of the task gradient in MAML (Rafiei, Maheri, Rabiee 2024, arXiv 2406.00249)."""

__version__ = "0.1.0"
