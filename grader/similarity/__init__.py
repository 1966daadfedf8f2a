"""Similarity detection between students' submissions (issue 14). ``code``: pairwise similarity of source files
by winnowing (copydetect's fingerprints, an inverted index over them to find the candidate pairs).

Pure Python, no Flask or database: ``server/services/similarity.py`` reads the submissions from the server's
storage and ``autograder similarity`` prints and exports the pairs. Needs ``copydetect`` (the server extra).
"""

from grader.similarity.code import (
    FileMatch,
    Pair,
    Params,
    Progress,
    find_pairs,
    notebook_text,
    sources_in,
    template_sources,
)

__all__ = ["FileMatch", "Pair", "Params", "Progress", "find_pairs", "notebook_text", "sources_in", "template_sources"]
