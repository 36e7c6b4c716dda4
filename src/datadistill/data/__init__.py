"""Reading and writing examples (TSV, JSON Lines, plain text), the label map, digests and caches."""

from .io import DataError, Example, ExampleReader, ExampleWriter, ReadStats, atomic_write, read_examples, write_examples
from .labels import LabelMap

__all__ = [
    "DataError",
    "Example",
    "ExampleReader",
    "ExampleWriter",
    "ReadStats",
    "atomic_write",
    "read_examples",
    "write_examples",
    "LabelMap",
]
