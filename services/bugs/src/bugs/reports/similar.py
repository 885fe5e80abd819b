"""Similar bugs: find the existing reports a new title (and description) probably duplicates.

Players word the same bug differently ("Player falls through floor on bridge" / "fell through
the ground near the bridge, level 3"), so matching is on *concepts*, not words: text is
lowercased, stop words dropped, irregular forms mapped (fell -> fall), words lightly stemmed
(falls, falling -> fall) and synonyms folded into one concept (ground, terrain -> floor).

Two steps, so it stays fast on a project with a million bugs:
1. Candidates (SQL, served by indexes): bugs whose `search_text` holds all of the title's
   telling concepts, then any two concepts, then any rare one (full-text prefix queries on
   the `simple` GIN index, every surface form of a concept ORed; concepts most bugs have are
   left out, by the index's own statistics); when that finds few in a project of moderate
   size, the closest titles by trigram similarity too. At most a couple of hundred rows.
2. Score (Python, on those rows): how much of the query's title the candidate covers, how much
   of the candidate's title the query covers, the overlap of all concepts, and the trigram
   similarity of the titles; a weighted sum in [0, 1]. Concepts weigh by rarity (idf from
   the same statistics), generic ones ("player", "level") and numbers less.

`bench/similar_pairs.py` measures recall@1 / recall@5 on labelled duplicate pairs; change
weights or synonyms only with it.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from ..models import Bug, BugCount

CANDIDATES = 200  # rows fetched by the full-text candidate queries, at most
ENOUGH = 20  # candidates after which no broader candidate query runs
TITLE_NEIGHBOURS = 40  # closest titles by trigram similarity, when concepts found few
TRIGRAM_MAX_BUGS = 50_000  # ... and only in projects up to this size
RETRIEVAL_CONCEPTS = 4  # title concepts used to fetch candidates
PAIRED_CONCEPTS = 4  # concepts whose pairs fetch candidates (6 pairs: each costs index reads)
VERY_COMMON_SHARE = 0.3  # concepts in more bugs than this never fetch candidates
RARE_SHARE = 0.05  # below this a single concept, or a description one, may fetch candidates

_WORD = re.compile(r"[a-z0-9]+")


def _word_list(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOP_WORDS = _word_list("""
a about above after again against all almost also am an and any are as at be because been
before being below between both but by can cannot could did do does doing done down during each
even ever every few for from further had has have having he her here hers him his how i if in
into is it its itself just me more most my near no nor not now of off on once only or other
our out over own same she should so some still such than that the their them then there these
they this those through to too under until up upon very was we were what when where which while
who whom why will with would you your yours yet anyway really keep keeps kept seem seems seemed
sometimes always often randomly random happens happened happen happening occur occurs occurred
issue issues bug bugs problem problems please thing things something anything everything
nothing everyone anyone get gets getting got like one two also instead using use used via unless
despite massive huge constant constantly completely totally literally whenever game games
inside outside behind next around across along onto within without
""")

# Irregular and odd forms -> the word whose stem stands for them.
IRREGULAR = {
    "fell": "fall", "fallen": "fall", "froze": "freeze", "frozen": "freeze", "broke": "break",
    "broken": "break", "ran": "run", "went": "go", "gone": "go", "goes": "go", "died": "die",
    "dies": "die", "dying": "die", "dead": "die", "death": "die", "killed": "kill", "lost": "lose",
    "losing": "lose", "shot": "shoot", "threw": "throw", "thrown": "throw", "flew": "fly",
    "flown": "fly", "flies": "fly", "drove": "drive", "driven": "drive", "stole": "steal",
    "stolen": "steal", "saw": "see", "seen": "see", "fought": "fight", "stuck": "stuck",
    "caught": "catch", "laggy": "lag", "lags": "lag", "lagging": "lag", "lagged": "lag",
    "sank": "sink", "sunk": "sink", "hid": "hide", "hidden": "hide", "won": "win",
    "wont": "not", "doesnt": "not", "dont": "not", "cant": "cannot", "isnt": "not",
    "didnt": "not", "wasnt": "not", "stopped": "stop", "stops": "stop", "began": "begin",
    "twice": "twice", "times": "time",
}

# Phrases (regular expressions on lowercased text) folded into one concept word first.
PHRASES = (
    (r"crash(?:es|ed)? to (?:the )?desktop|ctd", "crash"),
    (r"lock(?:s|ed)? up|not responding", "freeze"),
    (r"frame ?rate|frames per second", "fps"),
    (r"(?:fps|frame|frames|framerate) drops?", "stutter"),
    (r"(?:can ?not|cant|unable to) move", "stuck"),
    (r"(?:walk|walks|walked|go|goes|went|pass|passes|passed) through", "clip"),
    (r"co-?op|co op", "coop"),
    (r"alt[- ]?tab(?:bing|bed)?|tab(?:bing|bed)? out", "alttab"),
    (r"save ?(?:file|game)s?", "save"),
    (r"main menu", "menu"),
    (r"black screen", "blackscreen"),
    (r"loading screen|load screen", "loadscreen"),
    (r"v-?sync|vertical sync", "vsync"),
    (r"two times|2 times|two x", "twice"),
    (r"blows? up|blew up", "explode"),
    (r"health bars?|hp bars?", "healthbar"),
)

# How the phrase concepts above are spelled in stored text (for the full-text candidate query).
PHRASE_SURFACES = {
    "fps": ("fps", "frame"), "stutter": ("fps", "frame"), "alttab": ("alt", "tab"),
    "coop": ("coop", "co"), "blackscreen": ("black",), "loadscreen": ("loading",),
    "vsync": ("vsync", "sync"), "twice": ("twice", "two"), "explode": ("explod", "blow", "blew"),
    "healthbar": ("health", "hp"),
}

# Synonym groups; the first word names the concept.
SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("fall", "drop", "plummet", "sink"),
    ("floor", "ground", "terrain", "surface", "geometry"),
    ("clip", "clipping", "phase", "noclip"),
    ("crash", "segfault", "exception"),
    ("freeze", "hang", "hangs", "unresponsive", "lockup"),
    ("stuck", "trapped", "softlock"),
    ("stutter", "hitch", "choppy", "lag", "jitter"),
    ("disappear", "vanish", "invisible", "missing"),
    ("flicker", "flash", "blink", "strobe"),
    ("sound", "audio", "sfx", "noise"),
    ("music", "soundtrack", "bgm"),
    ("player", "character", "hero", "avatar", "protagonist"),
    ("enemy", "mob", "monster", "creature", "foe"),
    ("npc", "villager"),
    ("merchant", "vendor", "trader", "shopkeeper"),
    ("level", "stage", "chapter"),
    ("button", "key", "keybind", "binding", "hotkey"),
    ("rebind", "remap"),
    ("controller", "gamepad", "joystick", "pad"),
    ("save", "savefile", "progress", "autosave"),
    ("disconnect", "desync", "timeout", "kicked"),
    ("multiplayer", "online", "coop", "lobby"),
    ("camera", "cam"),
    ("weapon", "gun", "sword", "rifle", "pistol"),
    ("quest", "objective", "task", "mission"),
    ("marker", "waypoint"),
    ("achievement", "trophy"),
    ("fullscreen", "borderless"),
    ("inventory", "bag", "backpack"),
    ("door", "gate", "doorway"),
    ("teleport", "warp"),
    ("spawn", "respawn"),
    ("die", "kill"),
    ("duplicate", "dupe", "clone", "twice", "double", "repeat"),
    ("loud", "volume", "deafening"),
    ("texture", "material"),
    ("stretch", "distort", "squash"),
    ("wrong", "incorrect"),
    ("launch", "startup", "boot"),
    ("close", "dismiss"),
    ("reset", "revert", "wipe"),
    ("water", "sea", "ocean", "lake", "river"),
    ("harbor", "harbour", "dock", "pier", "port"),
    ("forest", "woods", "jungle"),
    ("house", "building", "indoor", "interior"),
    ("regenerate", "regen", "refill", "recover", "replenish"),
    ("walk", "move"),
    ("dialogue", "dialog", "conversation"),
    ("cursor", "pointer"),
    ("health", "hp"),
    ("hud", "ui", "interface", "overlay"),
    ("settings", "options", "preferences", "config"),
    ("vehicle", "car", "jeep", "truck"),
    ("boat", "ship"),
    ("guard", "soldier"),
    ("detect", "notice", "spot"),
    ("unlock", "award", "earn", "grant"),
    ("language", "locale"),
)

# Words that say little about which bug it is: counted, but lightly.
GENERIC_WORDS = ("player", "level", "work", "play", "make", "go", "try", "see", "open", "wrong",
                 "screen", "load", "fps", "time", "walk", "show")
GENERIC_WEIGHT = 0.35
NUMBER_WEIGHT = 0.5
COMMON_SHARE = 0.01  # a concept in more bugs than this counts less and less
MIN_WEIGHT = 0.15

W_QUERY_COVERED = 0.40  # share of the query's title concepts the candidate has
W_CANDIDATE_COVERED = 0.30  # share of the candidate's title concepts the query has
W_OVERLAP = 0.15  # weighted Jaccard of all concepts (title and description)
W_TITLE_TRIGRAMS = 0.15  # trigram similarity of the two titles
BODY_MATCH = 0.7  # a concept found in the other's description instead of its title


@lru_cache(maxsize=65_536)
def stem(word: str) -> str:
    """A light suffix stripper: falls/falling/fallen-free forms -> fall, textures -> textur."""
    word = IRREGULAR.get(word, word)
    if len(word) <= 3 or word.isdigit():
        return word
    for suffix in ("ies", "ing", "ed", "es", "ly", "s", "e", "y"):
        if not word.endswith(suffix):
            continue
        base = word[: -len(suffix)]
        if len(base) < 3 or (suffix == "s" and word.endswith(("ss", "us", "is"))) \
                or (suffix == "ed" and word.endswith("eed")):
            continue
        if suffix in ("ies", "y"):
            base += "i"
        elif suffix in ("ing", "ed") and len(base) > 3 and base[-1] == base[-2] \
                and base[-1] not in "lsz":
            base = base[:-1]  # stopped -> stop, but falling -> fall
        elif base.endswith("y") and len(base) > 3:
            base = base[:-1] + "i"  # parrying -> parri, as parry
        return base
    return word


@lru_cache(maxsize=1)
def _concept_of_stem() -> dict[str, str]:
    out: dict[str, str] = {}
    for group in SYNONYMS:
        head = stem(group[0])
        for word in group:
            out[stem(word)] = head
    return out


@lru_cache(maxsize=1)
def _surfaces() -> dict[str, frozenset[str]]:
    """Concept -> the word prefixes that spell it (for full-text prefix queries)."""
    by_concept: dict[str, set[str]] = {}
    concept_of = _concept_of_stem()
    for stem_, concept in concept_of.items():
        by_concept.setdefault(concept, set()).add(stem_)
    for irregular, word in IRREGULAR.items():
        concept = concept_of.get(stem(word), stem(word))
        by_concept.setdefault(concept, {concept}).add(irregular)
    for concept, spellings in PHRASE_SURFACES.items():
        by_concept.setdefault(concept, {concept}).update(spellings)
    return {c: frozenset(_prefix(s) for s in surfaces) for c, surfaces in by_concept.items()}


def _prefix(stem_: str) -> str:
    # A stem that ends in the i of y -> i (enemy -> enemi) must still prefix "enemy".
    return stem_[:-1] if stem_.endswith("i") and len(stem_) > 3 else stem_


@lru_cache(maxsize=1)
def _phrases() -> tuple[re.Pattern[str], dict[str, str]]:
    """One pass over a text for every phrase: an alternation of named groups."""
    alternatives = "|".join(f"(?P<p{i}>{pattern})" for i, (pattern, _) in enumerate(PHRASES))
    return (re.compile(rf"\b(?:{alternatives})\b"),
            {f"p{i}": word for i, (_, word) in enumerate(PHRASES)})


def _fold_phrases(text: str) -> str:
    pattern, words = _phrases()
    text = text.lower().replace("'", "").replace("\u2019", "")
    return pattern.sub(lambda m: words[m.lastgroup or ""], text)


@lru_cache(maxsize=65_536)
def _concept_of_word(word: str) -> str | None:
    if word in STOP_WORDS or (len(word) < 2 and not word.isdigit()):
        return None
    s = stem(word)
    if s in STOP_WORDS:
        return None
    return _concept_of_stem().get(s, s)


def concepts(text: str) -> list[str]:
    """The concepts of a text, in order of appearance, without repeats."""
    out: dict[str, None] = {}
    for word in _WORD.findall(_fold_phrases(text)):
        concept = _concept_of_word(word)
        if concept is not None:
            out.setdefault(concept, None)
    return list(out)


@lru_cache(maxsize=1)
def _generic() -> frozenset[str]:
    concept_of = _concept_of_stem()
    return frozenset(concept_of.get(stem(w), stem(w)) for w in GENERIC_WORDS)


@dataclass(frozen=True)
class Frequencies:
    """Share of bugs whose text has each common word (PostgreSQL's statistics of the full-text
    index: its most common lexemes), for weighting concepts by rarity (idf)."""

    lexemes: tuple[str, ...]  # sorted
    shares: tuple[float, ...]

    def share(self, concept: str) -> float:
        """Upper bound of the share of bugs that spell `concept` some way (0: rare)."""
        best = 0.0
        for prefix in _surfaces().get(concept, frozenset({_prefix(concept)})):
            lo = bisect.bisect_left(self.lexemes, prefix)
            hi = bisect.bisect_left(self.lexemes, prefix + "\uffff")
            best = max(best, sum(self.shares[lo:hi]))
        return min(1.0, best)


NO_FREQUENCIES = Frequencies((), ())
_FREQUENCIES: dict[str, tuple[float, Frequencies]] = {}
FREQUENCIES_TTL = 600.0  # seconds; ANALYZE refreshes the statistics far less often


def frequencies(session: Session) -> Frequencies:
    """The lexeme shares of the full-text index's statistics (cached per database)."""
    key = str(session.get_bind().engine.url)
    cached = _FREQUENCIES.get(key)
    if cached is not None and time.monotonic() - cached[0] < FREQUENCIES_TTL:
        return cached[1]
    row = session.execute(sa.text(
        "SELECT most_common_elems::text::text[], most_common_elem_freqs FROM pg_stats "
        "WHERE tablename = 'ix_bugs_search_fts' LIMIT 1")).first()
    found = NO_FREQUENCIES
    if row is not None and row[0]:
        pairs = sorted(zip(row[0], row[1][:len(row[0])], strict=True))
        found = Frequencies(tuple(p[0] for p in pairs), tuple(float(p[1]) for p in pairs))
    _FREQUENCIES[key] = (time.monotonic(), found)
    return found


def weight(concept: str, freq: Frequencies = NO_FREQUENCIES) -> float:
    """How much a shared concept says two reports are the same bug: rarer says more."""
    if concept.isdigit():
        return NUMBER_WEIGHT
    value = 1.0
    share = freq.share(concept)
    if share > COMMON_SHARE:
        value = max(MIN_WEIGHT, math.log(1 / share) / math.log(1 / COMMON_SHARE))
    return min(value, GENERIC_WEIGHT) if concept in _generic() else value


def trigrams(text: str) -> frozenset[str]:
    """pg_trgm's trigrams: each word padded with two spaces before and one after."""
    out: set[str] = set()
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        padded = f"  {word} "
        out.update(padded[i:i + 3] for i in range(len(padded) - 2))
    return frozenset(out)


def trigram_similarity(a: str, b: str) -> float:
    ta, tb = trigrams(a), trigrams(b)
    if not ta or not tb:
        return 0.0
    return len(ta & tb) / len(ta | tb)


@dataclass(frozen=True)
class Query:
    title: str
    title_concepts: tuple[str, ...]
    description_concepts: tuple[str, ...]  # those not already in the title

    @classmethod
    def of(cls, title: str, description: str = "") -> Query:
        in_title = concepts(title)
        seen = set(in_title)
        return cls(title=title, title_concepts=tuple(in_title),
                   description_concepts=tuple(c for c in concepts(description) if c not in seen))


def _covered(wanted: Iterable[str], primary: set[str], secondary: set[str],
             freq: Frequencies) -> float:
    total = got = 0.0
    for concept in wanted:
        w = weight(concept, freq)
        total += w
        if concept in primary:
            got += w
        elif concept in secondary:
            got += w * BODY_MATCH
    return got / total if total else 0.0


def _jaccard(a: set[str], b: set[str], freq: Frequencies) -> float:
    union = a | b
    if not union:
        return 0.0
    return sum(weight(c, freq) for c in a & b) / sum(weight(c, freq) for c in union)


def score(query: Query, title: str, body: str, freq: Frequencies = NO_FREQUENCIES) -> float:
    """How likely the bug (`title`, `body` = the rest of its text) duplicates `query`, in [0, 1]."""
    q_title, q_desc = set(query.title_concepts), set(query.description_concepts)
    c_title = set(concepts(title))
    c_body = set(concepts(body)) - c_title
    value = (W_QUERY_COVERED * _covered(query.title_concepts, c_title, c_body, freq)
             + W_CANDIDATE_COVERED * _covered(c_title, q_title, q_desc, freq)
             + W_OVERLAP * _jaccard(q_title | q_desc, c_title | c_body, freq)
             + W_TITLE_TRIGRAMS * trigram_similarity(query.title, title))
    return max(0.0, min(1.0, value))


def _group(concept: str) -> str:
    surfaces = _surfaces().get(concept, frozenset({_prefix(concept)}))
    return "(" + " | ".join(f"'{s}':*" for s in sorted(surfaces)) + ")"


def _pairs(found: list[str]) -> str:
    return " | ".join(f"({_group(a)} & {_group(b)})" for a, b in itertools.combinations(found, 2))


def _rarest(found: Iterable[str], freq: Frequencies, most: int, below: float) -> list[str]:
    """Up to `most` concepts in fewer than `below` of the bugs, rarest first (stable), generic
    ones and numbers last."""
    ranked = sorted(((c in _generic() or c.isdigit(),
                      freq.share(c), i, c) for i, c in enumerate(found)))
    return [c for _, share, _, c in ranked if share < below][:most]


def tsqueries(query: Query, freq: Frequencies = NO_FREQUENCIES) -> list[str]:
    """Candidate queries, narrowest first: the title's telling concepts all together, then any
    two of them and of the description's rare ones, then any one rare title concept. Concepts
    most bugs have are left out: the index would read them for nothing."""
    title = _rarest(query.title_concepts, freq, RETRIEVAL_CONCEPTS, VERY_COMMON_SHARE)
    extra = [c for c in _rarest(query.description_concepts, freq, 2, RARE_SHARE)
             if c not in title][:1]
    both = [*title[:PAIRED_CONCEPTS - len(extra)], *extra]
    out: list[str] = []
    if len(title) > 1:
        out.append(" & ".join(_group(c) for c in title))
    if len(both) > 2:
        out.append(_pairs(both))
    singles = [c for c in title if freq.share(c) < RARE_SHARE] or title[:1]
    if singles:
        out.append(" | ".join(_group(c) for c in singles))
    return out


def _project_size(session: Session, project_id: str) -> int:
    return int(session.exec(select(func.coalesce(func.sum(BugCount.n), 0))
                            .where(col(BugCount.project_id) == project_id)).one())


def _body(bug_title: str, search_text: str) -> str:
    return search_text[len(bug_title):] if search_text.startswith(bug_title) else search_text


def rank(session: Session, *, project_id: str, title: str, description: str,
         limit: int) -> list[tuple[Bug, float]]:
    """The project's bugs most like `title` + `description`, best first, scored in [0, 1]."""
    query = Query.of(title, description)
    freq = frequencies(session)
    vector = func.to_tsvector(sa.literal_column("'simple'::regconfig"), col(Bug.search_text))
    candidates: dict[str, tuple[str, str]] = {}
    for tsq in tsqueries(query, freq):
        rows = session.exec(select(col(Bug.id), col(Bug.title), col(Bug.search_text)).where(
            col(Bug.project_id) == project_id,
            vector.op("@@")(func.to_tsquery("simple", tsq)),
            col(Bug.id).not_in(candidates) if candidates else sa.true(),
        ).limit(CANDIDATES - len(candidates))).all()
        candidates.update((r[0], (r[1], r[2])) for r in rows)
        if len(candidates) >= ENOUGH:  # a broader tier would read more of the index for less
            break
    if len(candidates) < ENOUGH and _project_size(session, project_id) <= TRIGRAM_MAX_BUGS:
        # Few concept matches (misspelt words, words no concept knows): add the closest titles
        # by trigrams. Not on a big project: there the trigram index reads the long posting
        # lists of every common trigram of the title (seconds at a million bugs).
        similarity = func.similarity(col(Bug.title), title)
        rows = session.exec(select(col(Bug.id), col(Bug.title), col(Bug.search_text)).where(
            col(Bug.project_id) == project_id, col(Bug.title).op("%")(title),
        ).order_by(similarity.desc()).limit(TITLE_NEIGHBOURS)).all()
        candidates.update((r[0], (r[1], r[2])) for r in rows)
    if not candidates:
        return []
    scored = sorted(((score(query, t, _body(t, text), freq), bug_id)
                     for bug_id, (t, text) in candidates.items()), reverse=True)[:limit]
    scored = [(s, i) for s, i in scored if s > 0]
    bugs = {b.id: b for b in session.exec(select(Bug).where(
        col(Bug.id).in_([i for _, i in scored])))}
    ordered = sorted(scored, key=lambda si: (-si[0], -bugs[si[1]].number))
    return [(bugs[i], round(s, 4)) for s, i in ordered]
