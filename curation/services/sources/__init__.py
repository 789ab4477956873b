"""Import sources beyond server folders, zip/tar uploads and URL lists: WebDataset shards
(local or fsspec URLs), URL tables (CSV, TSV, JSONL, Parquet) and img2dataset folders.

The importers (webdataset, tables, img2dataset) run inside curation.services.datasets'
dataset_import; the create functions (create.py) record the datasets and queue them.
"""
