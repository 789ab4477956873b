"""Write operations of the curation domain, as plain functions with keyword-only arguments."""
