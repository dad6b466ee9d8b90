"""One-command reproduction of the papers' comparison tables: ``keyless reproduce``."""

from keyless.reproduce._driver import reproduce, write_results
from keyless.reproduce._tables import BUDGETS, TABLES, Row, base_config, table_rows

__all__ = ["BUDGETS", "TABLES", "Row", "base_config", "reproduce", "table_rows", "write_results"]
