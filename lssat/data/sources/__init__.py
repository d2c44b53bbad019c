"""Dataset sources for ``python -m lssat.data.prepare``: one module per raw layout."""

from lssat.data.sources.base import Exclude, ImageSource, Item, Output, Source

__all__ = ["Exclude", "ImageSource", "Item", "Output", "Source"]
