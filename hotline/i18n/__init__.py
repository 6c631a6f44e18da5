"""Languages: prompt catalogs and per-channel rendering of typed values."""

from hotline.i18n.catalog import Catalog, CatalogSet, ValueFormatter, load_catalogs
from hotline.i18n.text import TextFormatter

__all__ = ["Catalog", "CatalogSet", "TextFormatter", "ValueFormatter", "load_catalogs"]
