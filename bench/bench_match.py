"""Matching speed: per-article cost and throughput for watchlists of 10, 1,000 and 10,000 queries.

Two sets of 1,000 seeded articles, 600-1,200 words each, written by the sample sites' Markov
chains (monitor/sitegen_text.py, trained on the demo's articles):

- a day's news: 97% from the general chain (weather, the Met Gala, the opera, other forces:
  the noise a Met Police watchlist must ignore) and 3% from the Met Police chain. Each article
  quotes three people ("Hannah Okafor, a spokesperson for Barnet Council, said ..."), nearly
  all of them people no query names. A few percent are hits.
- all hits: articles from the Met Police chain that the shipped watchlist matches, quoting
  people the same way: every article gets a snippet, the costliest case.

Watchlists: the shipped met-police watchlist (its match queries cut to 10, and its ignore
list), topped up to 1,000 and 10,000 with queries of the kinds people write: a person's full
name, a surname NEAR role words, an organisation, an organisation or a place NEAR an OR-group
of subject words (some of them prefixes), a name AND subject words, title: terms, AND NOT.
Their names and places come from the same lists as the articles' quotes, so queries are
triggered by words they share with an article (a first name, a town) far more often than
they match.

Figures are CPU time of this process (other work on the machine does not count): microseconds
per article and MB of article text (UTF-8) per second, the median of five rounds with min and
max, and compile time. In each round the three watchlist sizes run one after the other, so
drift in the machine's speed (it is shared) weighs on all of them alike. Targets: at 10,000
queries at most 3x the cost per article of 10, and at least 10 MB/s. Then reading the words
alone (the floor under every figure), and one pathological article (a single pair of words
repeated) at 1 and 4 MB: time per MB must not grow with the text.

Run: .venv/bin/python -m bench.bench_match
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

from bench.common import Row, repeat, spread
from bench.report import Outcome
from monitor.match import Matcher, compile_watchlists
from monitor.models import Document
from monitor.query import Query, parse_query
from monitor.sitegen_bench import REFERENCE_NOW
from monitor.sitegen_demo import parse_demo_article, read_demo_texts
from monitor.sitegen_text import TextModel, build_model, generate_paragraphs, generate_title
from monitor.textindex import index_text
from monitor.watchlist import Watchlist, load_watchlist

ROOT = Path(__file__).resolve().parent.parent
SIZES = (10, 1_000, 10_000)
ARTICLES = 1_000
MET_SHARE = 0.03  # of a day's news
WATCHED_SHARE = 0.01  # of the people quoted, the share whose surname some query names
QUOTES = 3  # people quoted per article
RUNS = 5  # rounds of every watchlist size
TARGET_RATIO = 3.0
TARGET_RATE = 10.0  # MB/s

# names and places: lists written as text, one word each
FIRST = """Hannah David Sunita Tom Grace Owen Leah Marcus Ruth Imran Sarah James Priya Daniel Emma
Mohammed Olivia Adam Chloe Ben Fatima Jack Aisha Liam Zoe Ryan Amira Sam Helen Patrick Nadia Luke
Rachel Kwame Laura Joseph Yasmin Harry Ellie Ravi Megan Tariq Sophie Connor Bethan Arjun Hollie
Matthew Niamh Kofi Jessica Andrew Shreya Callum Lucy Rhys Anita Josh Claire Dominic Eilidh Simon
Farah Gareth Lydia Omar Caroline Nathan Rosie Hamza Victoria Isla Dev Catherine Alex Joanne Peter
Katie Usman Natalie Stephen Freya Rebecca Paul Gemma Hassan Amelia Neil Zara Ian Alice Karim
Bronwen Steven Esther Ade Frances""".split()  # noqa: SIM905
SURNAMES = """Okafor Pryce Bhatt Ellery Mwangi Harcourt Fischer Adebayo Callan Sheikh Smith Jones
Taylor Wilson Johnson Davies Robinson Wright Thompson Evans Jackson Clarke Patel
Khan Lewis Phillips Mitchell Davis Cooper Turner Morris Harris Baker Allen Edwards Hughes
Begum Ahmed Hussain Singh Kaur Chowdhury Nwosu Owusu Boateng Achebe Eze Kowalski Nowak
Murphy Kelly Byrne Walsh OBrien Doyle Campbell Stewart Macdonald Murray Fraser Paterson Morrison
Hamilton Kerr Sinclair Barker Fletcher Lloyd Bennett Griffiths Rees Jenkins Powell Howells
Probert Vaughan Gibson Marshall Palmer Holland Lawson Chapman Stevens Dixon Atkinson Hudson
Ferguson Pearce Barnes Gordon Hayes Hodgson Newton Osborne Parker Quinn Saunders Tucker Underwood
Vincent Warren Yates Abbott Ashworth Bradshaw Carver Eastwood Fairbanks Gillespie
Ingram Jarvis Kendrick Lockwood Merriman Northcott Oakley Pennington Radcliffe Sutcliffe
Thornton Upton Wainwright Yeardley Acheampong Balogun Danso Ogunleye Oyelaran Kapoor Malhotra
Mehta Iyer Nair Reddy Varma Zaman Qureshi Siddiqui Haque Mirza Nazir Farouk Karimi Moradi
Tehrani Rossi Bianchi Romano Costa Silva Santos Pereira Ferreira Novak Horvat Kovacs Nagy Popescu
Ionescu Petrov Ivanova Sokolov Lindqvist Johansson Nielsen Jensen Hansen Dubois Lefebvre Moreau
Adeyemi Okonkwo Olawale Mahmood Chaudhry Dhillon Sandhu Gill Grewal Bains Kumar Sharma Gupta
Banerjee Chatterjee Ghosh Das Rao Pillai Menon Fernandes Dsouza Tran Nguyen Pham Chen Wang Zhang
Liu Huang Zhao Yamamoto Tanaka Sato Kim Park Choi Okoro Eboh Nnamdi Uchenna Abara""".split()  # noqa: SIM905
PLACES = """Barnet Camden Croydon Ealing Enfield Hackney Haringey Harrow Hillingdon Hounslow
Islington Lambeth Lewisham Merton Newham Redbridge Southwark Sutton Wandsworth Bexley Bromley
Brent Havering Kingston Greenwich Wembley Walthamstow Dagenham Luton Slough Reading Watford
Guildford Crawley Brighton Dover Canterbury Maidstone Chelmsford Colchester Ipswich Norwich
Cambridge Oxford Swindon Bristol Exeter Plymouth Cardiff Swansea Newport Birmingham Coventry
Leicester Nottingham Derby Stoke Wolverhampton Walsall Salford Bolton Wigan Liverpool Preston
Blackpool Leeds Bradford Wakefield Sheffield Hull Durham Sunderland Newcastle Carlisle Lancaster
Glasgow Edinburgh Dundee Aberdeen Inverness Belfast Derry Lisburn Gloucester Worcester Hereford
Shrewsbury Telford Peterborough Lincoln Grimsby Doncaster Rotherham Barnsley Halifax Huddersfield
Rochdale Oldham Stockport Warrington Chester Wrexham Bangor Aylesbury Basingstoke Winchester
Southampton Portsmouth Bournemouth Poole Salisbury""".split()  # noqa: SIM905
ORGS = """Council|Borough Council|City Council|Hospital|NHS Trust|Housing Association|Crown Court|
Magistrates' Court|University|College|Academy Trust|Football Club|Chamber of Commerce|Fire and
Rescue Service|Police|Water|Airport|Foodbank|Mosque|Cathedral|Community Trust|Tenants
Association""".replace("\n", " ").split("|")
ROLES = """spokesperson spokesman spokeswoman leader councillor executive director chairman
chairwoman manager officer superintendent inspector detective sergeant constable coroner judge
barrister solicitor headteacher professor lecturer surgeon nurse campaigner founder secretary
treasurer member minister MP mayor trustee""".split()  # noqa: SIM905
TOPICS = [
    "fraud bribery corruption embezzlement misconduct",
    "planning development demolition regeneration housing",
    "strike walkout redundancies pay pensions",
    "flooding sewage pollution drought spill",
    "stabbing shooting assault robbery burglary",
    "inquest coroner inquiry investigation review",
    "fine penalty sanction ban suspension",
    "school pupils exclusion Ofsted teachers",
    "hospital waiting ambulance patients beds",
    "closure cuts budget deficit funding",
]
TEMPLATES = [
    "{person}, {role} of {org}, said the decision had been taken after careful thought.",
    "Speaking in {place}, {person} said: “We will not be commenting further at this stage.”",
    "{person}, a {role} at {org}, told reporters that {topic} remained a concern.",
    "A statement from {person} of {org} said the {topic} would be looked at again.",
    "“This is not the end of it,” said {person}, who has worked in {place} for years.",
]


@cache
def chains() -> tuple[TextModel, TextModel]:
    """(Met Police chain, general chain), trained once on the demo's articles."""
    met: list[str] = []
    other: list[str] = []
    for slug, text in read_demo_texts().items():
        _, article = parse_demo_article(text, slug, REFERENCE_NOW)
        (met if article.met_police else other).append("\n".join(article.paragraphs))
    return build_model(met), build_model(other)


class Cast:
    """Who and what the articles name and the queries look for: the same lists for both.

    Half the surnames and half the places are watched: queries name only those, and an
    article quotes a watched one with probability WATCHED_SHARE.
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.surnames = self._halves(SURNAMES)
        self.places = self._halves(PLACES)

    def _halves(self, names: list[str]) -> tuple[list[str], list[str]]:
        shuffled = names[:]
        self.rng.shuffle(shuffled)
        half = len(shuffled) // 2
        return shuffled[:half], shuffled[half:]

    def pick(self, pools: tuple[list[str], list[str]], watched: bool | None = None) -> str:
        """A watched name, another one, or (None) either as an article would quote them."""
        if watched is None:
            watched = self.rng.random() < WATCHED_SHARE
        return self.rng.choice(pools[0] if watched else pools[1])

    def person(self, watched: bool | None = None) -> str:
        """A first name and a surname."""
        return f"{self.rng.choice(FIRST)} {self.pick(self.surnames, watched)}"

    def org(self, watched: bool | None = None) -> str:
        """An organisation: a place and a kind of body."""
        return f"{self.pick(self.places, watched)} {self.rng.choice(ORGS)}"

    def quote(self) -> str:
        """A sentence quoting someone, as news copy does."""
        rng = self.rng
        return rng.choice(TEMPLATES).format(
            person=self.person(),
            role=rng.choice(ROLES),
            org=self.org(),
            place=self.pick(self.places),
            topic=rng.choice(rng.choice(TOPICS).split()),
        )

    def query(self) -> str:
        """One query of a kind people write."""
        rng = self.rng
        first, surname = rng.choice(FIRST), self.pick(self.surnames, True)
        org, place = self.org(True), self.pick(self.places, True)
        topic = rng.choice(TOPICS).split()
        words = rng.sample(topic, 3)
        subject = f"({words[0]} OR {words[1]} OR {words[2][:5]}*)"
        roles = " OR ".join(rng.sample(ROLES, 3))
        forms = [
            (f'"{first} {surname}"', 35),
            (f"{surname} NEAR/5 ({roles})", 15),
            (f'"{org}"', 15),
            (f'"{org}" NEAR/15 {subject}', 10),
            (f"{subject} NEAR/10 {place}", 10),
            (f'"{first} {surname}" AND NOT title:obituary', 5),
            (f'title:({surname} OR "{org}")', 5),
            (f"{surname} AND ({words[0]} OR {words[1]})", 5),
        ]
        return rng.choices([f for f, _ in forms], [w for _, w in forms])[0]


def make_article(chain: TextModel, cast: Cast) -> Document:
    """One article: a headline, 600-1,200 words of the chain, people quoted between paragraphs."""
    rng = cast.rng
    paragraphs = list(generate_paragraphs(chain, rng, 600, 1200))
    for _ in range(QUOTES):
        paragraphs.insert(rng.randrange(1, len(paragraphs) + 1), cast.quote())
    return Document(generate_title(chain, rng), "\n".join(paragraphs))


def day_of_news(cast: Cast, count: int, shipped: Matcher) -> list[Document]:
    """MET_SHARE from the Met Police chain, the rest from the general chain that the shipped
    watchlist does not match (the chain splices sentences of different articles, so a few
    read like Met Police news; a day's news has fewer of those)."""
    met, other = chains()
    docs = []
    while len(docs) < count:
        if cast.rng.random() < MET_SHARE:
            docs.append(make_article(met, cast))
            continue
        doc = make_article(other, cast)
        if not shipped.match(doc):
            docs.append(doc)
    return docs


def all_hits(cast: Cast, count: int, shipped: Matcher) -> list[Document]:
    """Articles of the Met Police chain that the shipped watchlist matches."""
    met, _ = chains()
    docs: list[Document] = []
    while len(docs) < count:
        doc = make_article(met, cast)
        if shipped.match(doc):
            docs.append(doc)
    return docs


def make_watchlist(size: int, cast: Cast) -> Watchlist:
    """The shipped watchlist cut or topped up to `size` match queries."""
    shipped = load_watchlist(ROOT / "watchlists" / "met-police.toml")
    queries: list[Query] = list(shipped.match[:size])
    while len(queries) < size:
        queries.append(parse_query(cast.query()))
    return Watchlist(f"bench-{size}", shipped.path, match=tuple(queries), ignore=shipped.ignore)


def timed(fn: Callable[[], object]) -> float:
    """CPU time of one call, in seconds: the cost on one core, whatever else the machine runs."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def match_all(matcher: Matcher, docs: list[Document]) -> int:
    """Match every article; the number of hits."""
    return sum(len(matcher.match(doc)) for doc in docs)


def megabytes(docs: list[Document]) -> float:
    """The size of the articles' titles and texts, in MB of UTF-8."""
    return sum(len(d.title.encode()) + len(d.text.encode()) for d in docs) / 1e6


def measure(
    kind: str, docs: list[Document], watchlists: dict[int, Watchlist], runs: int = RUNS
) -> list[Row]:
    """Rows for one set of articles and every watchlist size, and the cost ratio.

    The sizes take turns (10, 1,000, 10,000, then again), so a machine that slows down or
    speeds up during the measurement weighs on every size alike, and the cost ratio is taken
    within each round, then its median.
    """
    matchers = {size: compile_watchlists([w]) for size, w in watchlists.items()}
    hits = {size: match_all(m, docs) for size, m in matchers.items()}  # warm caches first
    seconds: dict[int, list[float]] = {size: [] for size in matchers}
    for _ in range(runs):
        for size, matcher in matchers.items():
            seconds[size].append(timed(lambda matcher=matcher: match_all(matcher, docs)))
    rows = []
    for size, values in seconds.items():
        per_article = [s / len(docs) * 1e6 for s in values]
        rate = [megabytes(docs) / s for s in values]
        label = f"{kind}, {size:,} queries"
        note = f"{hits[size]} hits in {len(docs):,} articles"
        target = f"target >= {TARGET_RATE:g} MB/s"
        rows += [
            Row("match", f"{label}: per article", *spread(per_article), "us", note),
            Row("match", f"{label}: throughput", *spread(rate), "MB/s", target),
        ]
    small, large = SIZES[0], SIZES[-1]
    ratios = [b / a for a, b in zip(seconds[small], seconds[large], strict=True)]
    label = f"{kind}: cost ratio {large:,} / {small} queries"
    note = f"target <= {TARGET_RATIO}x; each round's ratio, sizes measured in turn"
    rows.append(Row("match", label, *spread(ratios), "x", note))
    return rows


def measure_compile(watchlist: Watchlist) -> Row:
    """Building the term index of a watchlist, as at start and on every reload."""
    ms = repeat(lambda: timed(lambda: compile_watchlists([watchlist])) * 1e3)
    return Row("match", f"{len(watchlist.match):,} queries: compile", *ms, "ms")


def measure_reading(kind: str, docs: list[Document]) -> Row:
    """Reading the words alone (index_text): the floor under every figure above."""
    seconds = repeat(lambda: timed(lambda: [index_text(d.title, d.text) for d in docs]))
    rate = tuple(megabytes(docs) / s for s in seconds)
    return Row("match", f"{kind}: reading the words only", rate[0], min(rate), max(rate), "MB/s")


def measure_linear(watchlist: Watchlist) -> list[Row]:
    """One article of a repeated pair of words at 1 and 4 MB: the time per MB should not grow."""
    matcher = compile_watchlists([watchlist])
    rows = []
    for size in (1, 4):
        doc = Document("Met", "Met police " * (size * 1_000_000 // 11))
        seconds = repeat(lambda doc=doc, size=size: timed(lambda: matcher.match(doc)) / size)
        rows.append(Row("match", f"'Met police' repeated, {size} MB", *seconds, "s/MB"))
    return rows


def run(quick: bool = False) -> Outcome:
    """Every figure of this benchmark."""
    count = 100 if quick else ARTICLES
    cast = Cast(random.Random(20261122))
    watchlists = {size: make_watchlist(size, cast) for size in SIZES}
    # the whole shipped watchlist tells hits from the rest, however many queries it has
    shipped = compile_watchlists([load_watchlist(ROOT / "watchlists" / "met-police.toml")])
    sets = {
        "day's news": day_of_news(cast, count, shipped),
        "all hits": all_hits(cast, count, shipped),
    }
    rows = [measure_compile(w) for w in watchlists.values()]
    notes = []
    for kind, docs in sets.items():
        rows += measure(kind, docs, watchlists)
        rows.append(measure_reading(kind, docs))
        kb = megabytes(docs) * 1e3 / len(docs)
        notes.append(f"{kind}: {len(docs):,} articles of {kb:.1f} KB on average")
    rows += measure_linear(watchlists[SIZES[0]])
    return Outcome(rows, notes)


if __name__ == "__main__":
    outcome = run()
    for r in outcome.rows:
        print(f"{r.label:52s} {r.median:10.2f} {r.unit:5s} [{r.low:.2f} .. {r.high:.2f}] {r.note}")
    for note in outcome.notes:
        print(note)
