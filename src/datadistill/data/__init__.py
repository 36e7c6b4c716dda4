"""Reading and writing examples (TSV, JSON Lines, plain text) and the label map."""
from .io import DataError, Example, ExampleReader, ReadStats, atomic_write, read_examples, write_examples
from .labels import LabelMap

__all__ = ["DataError", "Example", "ExampleReader", "ReadStats", "atomic_write", "read_examples",
           "write_examples", "LabelMap"]
