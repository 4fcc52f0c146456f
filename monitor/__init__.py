"""monitor: a news-monitoring daemon.

Polls RSS/Atom feeds, fetches and extracts each new article, matches it against watchlists,
stores the hits and emails a daily digest.
"""

__version__ = "0.1.0"
