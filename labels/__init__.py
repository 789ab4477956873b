"""Labels: what reviewers' verdicts become.

The one place that reads both curation (images, embeddings, prompt versions, scores) and
reviewer (verdicts, review items): training labels and training on them, evaluations of
prompt versions against verdicts, and blocklist exports.
"""
