"""Export files: blocklists, keep-lists and hash lists in every format, with provenance, and
cleaned copies of datasets. An export is recorded (and queued) by curation.services.exports;
the worker builds it here.

- rows: which images a scope and its filters select, and their columns;
- formats: rows as CSV, JSON, JSONL, Parquet, hash lists and the hash-bank CSV;
- provenance: what each file says about itself;
- cleaned: WebDataset, ImageFolder and URL-table copies without the blocked images;
- build: the task's entry point, with progress on the export row.
"""

from labels.exports.build import export_build
from labels.exports.rows import ROW_COLUMNS, export_rows, export_select

__all__ = ["ROW_COLUMNS", "export_build", "export_rows", "export_select"]
