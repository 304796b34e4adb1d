"""Reports: atomic JSON/text writers, Markdown tables and PNG figures."""

from asc_edge.report.io import markdown_table, write_json_atomic, write_text_atomic

__all__ = ["markdown_table", "write_json_atomic", "write_text_atomic"]
