"""The review app's services: items, queue, decisions, settings (one module each)."""
