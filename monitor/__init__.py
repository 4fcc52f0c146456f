"""monitor: a news-monitoring daemon.

Polls RSS/Atom feeds, fetches and extracts each new article, matches it against watchlists,
stores the hits and emails a daily digest.
"""

import sys

__version__ = "0.1.0"

# httpx's package imports its command-line client whenever click, rich and pygments are
# installed, as they are here for monitor's own CLI: about 45 ms of every command's start-up,
# for a client monitor never runs (encode/httpx#3547). A module that is None in sys.modules
# cannot be imported, and httpx then takes its own fallback for a missing CLI.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
