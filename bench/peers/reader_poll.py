"""reader (lemon24) as a user of the library runs it; runs inside bench/.peers.

python reader_poll.py add DB URLS_FILE     add every feed in the file (one URL a line)
python reader_poll.py update DB WORKERS    update_feeds(workers=WORKERS, scheduled=False)
python reader_poll.py count DB             print the number of feeds and entries
"""

import sys

from reader import make_reader


def main() -> None:
    command, database = sys.argv[1], sys.argv[2]
    reader = make_reader(database)
    try:
        if command == "add":
            with open(sys.argv[3], encoding="utf-8") as urls:
                for url in urls.read().split():
                    reader.add_feed(url, exist_ok=True)
        elif command == "update":
            reader.update_feeds(workers=int(sys.argv[3]), scheduled=False)
        elif command == "count":
            feeds = reader.get_feed_counts()
            entries = reader.get_entry_counts()
            print(f"{feeds.total} {feeds.broken} {entries.total}")
        else:
            raise SystemExit(f"unknown command {command!r}")
    finally:
        reader.close()


if __name__ == "__main__":
    main()
