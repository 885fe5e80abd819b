"""GET /bugs: the filtered, sorted, searched list and its total, fast on a million bugs.

How each part stays cheap on a big project:
- Sorts read an index in order (`(project_id, number)`, `ix_bugs_project_priority|votes|
  updated`), so LIMIT stops after a page instead of sorting the project.
- Totals over status, priority, category, platform and assignee are sums over `bug_counts`
  (kept exact by triggers), not counts of rows; `label` and `game_version` count their
  (indexed, smaller) slice. A total of 0 or a page past the end skips the row query.
- `search` words of three characters or more match anywhere in a word (ILIKE, served by the
  trigram index on `search_text`); shorter ones match the start of a word (full-text prefix,
  served by the `simple` full-text index) because a trigram index cannot serve them. Every
  word must match.
  Stop words ("the", "is") are dropped when the search has other words.
- Relevance: up to SEARCH_RANK_CAP matches are ranked by a score (whole query in the title,
  each word in the title, trigram word similarity to the title), counted and cut to the page
  in the same pass. A broader search, where counting and scoring every match would read tens
  of thousands of rows, ranks title matches first, newest first within each tier (index
  scans that stop after the page), and reports an estimated total (`exact` False) from a
  sample of the table.
- While searching, the other filters are residual (`_dimension_conditions(residual=True)`)
  for the scoring pass, so the search index drives it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, func, select

from bugnet_common.web import Page

from ..models import Bug, BugCount, BugLabel, Label
from . import similar as similar_mod
from .schemas import BugFilters, is_uuid

# The very expression of the ix_bugs_project_priority index (migration 0003): spelled the same
# (with literals, not bound parameters) or the planner cannot use the index.
PRIORITY_RANK_SQL = ("(CASE priority WHEN 'critical' THEN 4 WHEN 'high' THEN 3 "
                     "WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END)")
PRIORITY_RANK: Any = sa.literal_column(PRIORITY_RANK_SQL)

SEARCH_RANK_CAP = 500  # matches beyond which relevance falls back to title-first, newest first
SAMPLE_ROWS = 5_000  # rows sampled to estimate the total of a broader search
MAX_TERMS = 8
SHORT_TERM = 3  # below this many characters a word matches as a word prefix
_WORD = re.compile(r"\w+", re.UNICODE)

_ORDER: dict[str, tuple[Any, ...]] = {
    "newest": (col(Bug.number).desc(),),
    "oldest": (col(Bug.number).asc(),),
    "priority": (PRIORITY_RANK.desc(), col(Bug.number).desc()),
    "votes": (col(Bug.votes).desc(), col(Bug.number).desc()),
    "updated": (col(Bug.updated_at).desc(), col(Bug.number).desc()),
}


@dataclass(frozen=True)
class ListResult:
    bugs: list[Bug]
    total: int
    exact: bool = True


# Words that match nearly every bug (and, short, the widest index scans): left out of a
# search that has other words.
SEARCH_STOP_WORDS = frozenset({
    "a", "an", "the", "and", "or", "of", "in", "on", "at", "to", "is", "are", "was", "were",
    "be", "it", "its", "this", "that", "with", "for", "from", "by", "as", "when", "then", "do",
    "does", "has", "have", "had", "not", "no", "i", "my", "me", "we", "you", "but", "if", "so",
})


def search_terms(text: str) -> list[str]:
    """The words of a search, lowercased, deduplicated, at most MAX_TERMS; stop words only
    when there is nothing else."""
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(text)))
    return ([w for w in words if w not in SEARCH_STOP_WORDS] or words)[:MAX_TERMS]


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _prefix_query(term: str) -> Any:
    return func.to_tsquery("simple", sa.literal("'" + term.replace("'", "''") + "':*"))


def _term_matches(column: Any, term: str) -> Any:
    """`term` in `column`: anywhere (trigram-indexable ILIKE) or, when short, as a word prefix
    (`'simple'::regconfig` spelled as in the full-text index expression, so it can serve it)."""
    if len(term) >= SHORT_TERM:
        return column.ilike(_like(term), escape="\\")
    vector = func.to_tsvector(sa.literal_column("'simple'::regconfig"), column)
    return vector.op("@@")(_prefix_query(term))


def _search_conditions(terms: list[str], model: Any = Bug) -> list[Any]:
    return [_term_matches(col(model.search_text), t) for t in terms]


def _title_matches(terms: list[str]) -> Any:
    return sa.and_(*(_term_matches(col(Bug.title), t) for t in terms))


def _relevance(query: str, terms: list[str]) -> Any:
    """A bug's score for a search: the whole query in the title, then the share of its words
    in the title, then trigram word similarity to the title (all cheap on the title alone:
    this is computed for up to SEARCH_RANK_CAP rows per search)."""
    score: Any = sa.case((col(Bug.title).ilike(_like(query)), 3.0), else_=0.0)
    for term in terms:
        score = score + sa.case((_term_matches(col(Bug.title), term), 2.0 / len(terms)),
                                else_=0.0)
    return score + func.word_similarity(query, col(Bug.title))


def _resolve_label(session: Session, project_id: str, label: str) -> str | None:
    query = select(Label.id).where(Label.project_id == project_id)
    if is_uuid(label):
        query = query.where(Label.id == label.lower())
    else:
        query = query.where(func.lower(Label.name) == label.lower())
    return session.exec(query).first()


def _dimension_conditions(model: Any, filters: BugFilters, *, counts: bool = False,
                          residual: bool = False) -> list[Any]:
    """Filters on the columns `bug_counts` also has (there NULL is stored as ''). `residual`:
    spelled so that no index serves them (`column || ''`), for searches, where the search
    index must drive and a status index scan would read a third of a big project for a
    BitmapAnd the LIMIT never needed."""

    def c(column: Any) -> Any:
        return col(column).concat("") if residual else col(column)

    out: list[Any] = []
    if filters.statuses:
        out.append(c(model.status).in_(filters.statuses))
    if filters.priorities:
        out.append(c(model.priority).in_(filters.priorities))
    if filters.categories:
        out.append(c(model.category).in_(filters.categories))
    if filters.platform is not None:
        out.append(func.lower(c(model.platform)) == filters.platform.lower())
    if filters.assignee == "none":
        out.append(c(model.assignee_id) == "" if counts else c(model.assignee_id).is_(None))
    elif filters.assignee is not None:
        out.append(c(model.assignee_id) == filters.assignee)
    if filters.game_version is not None and not counts:
        out.append(c(model.game_version) == filters.game_version)
    return out


def _filters(model: Any, project_id: str, filters: BugFilters, label_id: str | None,
             *, residual: bool) -> list[Any]:
    """Every filter but the search words, on `model` (Bug, or an alias of it)."""
    out = [col(model.project_id) == project_id,
           *_dimension_conditions(model, filters, residual=residual)]
    if label_id is not None:
        out.append(sa.exists().where(col(BugLabel.bug_id) == col(model.id),
                                     col(BugLabel.label_id) == label_id))
    return out


def _sampled_total(session: Session, project_id: str, filters: BugFilters,
                   label_id: str | None, terms: list[str]) -> int:
    """An estimate of how many bugs match: the matches among a sample of the table's pages
    (about SAMPLE_ROWS rows), scaled up. The planner's own estimate for ILIKE on long text is
    no good (it swung from 100 to 10,000 for one word between two ANALYZE runs). REPEATABLE:
    the same answer for every page of one search."""
    rows = session.execute(sa.text(
        "SELECT reltuples FROM pg_class WHERE oid = 'bugs'::regclass")).scalar() or 0
    percent = min(100.0, 100.0 * SAMPLE_ROWS / max(float(rows), 1.0))
    sample = aliased(Bug, sa.tablesample(Bug.__table__, func.system(percent), name="sample",  # type: ignore[attr-defined]
                                         seed=sa.literal(7)))
    found = session.exec(select(func.count()).select_from(sample).where(
        *_filters(sample, project_id, filters, label_id, residual=True),
        *_search_conditions(terms, sample))).one()
    return round(int(found) * 100.0 / percent)


def list_bugs(session: Session, *, project_id: str, filters: BugFilters, page: Page) -> ListResult:
    """One page of a project's bugs matching `filters`, and how many match."""
    terms = search_terms(filters.search or "")
    label_id = None
    if filters.label is not None:
        label_id = _resolve_label(session, project_id, filters.label)
        if label_id is None:
            return ListResult([], 0)
    conditions = _filters(Bug, project_id, filters, label_id, residual=False)
    if terms:
        return _search(session, project_id, filters, label_id, terms, page)

    dimensions = _dimension_conditions(BugCount, filters, counts=True)  # no game_version
    if filters.label is None and filters.game_version is None:
        total = session.exec(select(func.coalesce(func.sum(BugCount.n), 0)).where(
            col(BugCount.project_id) == project_id, *dimensions)).one()
    elif filters.game_version is None and not dimensions:
        # A label belongs to one project: its links are the project's bugs that have it.
        total = session.exec(select(func.count()).select_from(BugLabel)
                             .where(col(BugLabel.label_id) == label_id)).one()
    else:
        total = session.exec(select(func.count()).select_from(Bug).where(*conditions)).one()
    total = int(total)
    if total <= page.offset:
        return ListResult([], total)
    order = _ORDER[filters.sort or "newest"]
    rows = session.exec(select(Bug).where(*conditions).order_by(*order)
                        .offset(page.offset).limit(page.limit)).all()
    return ListResult(list(rows), total)


def _capped_count(session: Session, conditions: list[Any]) -> int:
    """How many bugs match, counting no further than SEARCH_RANK_CAP + 1."""
    capped = select(col(Bug.id)).where(*conditions).limit(SEARCH_RANK_CAP + 1).subquery()
    return int(session.exec(select(func.count()).select_from(capped)).one())


def _search(session: Session, project_id: str, filters: BugFilters, label_id: str | None,
             terms: list[str], page: Page) -> ListResult:
    # Scoring and counting read the search index's matches: the other filters must not drive
    # (residual). The newest-first scans of a broad search want their indexes: not residual.
    conditions = [*_filters(Bug, project_id, filters, label_id, residual=True),
                  *_search_conditions(terms)]
    filters_only = _filters(Bug, project_id, filters, label_id, residual=False)
    if filters.sort:
        count = _capped_count(session, conditions)
        if count <= SEARCH_RANK_CAP:
            rows = session.exec(select(Bug).where(*conditions).order_by(*_ORDER[filters.sort])
                                .offset(page.offset).limit(page.limit)).all()
            return ListResult(list(rows), count)
    else:
        # One pass over at most SEARCH_RANK_CAP + 1 matches: scored, counted (a window over
        # the capped set) and the page cut, instead of a count and then a second read.
        scored = select(Bug, _relevance(" ".join(terms), terms).label("relevance")).where(
            *conditions).limit(SEARCH_RANK_CAP + 1).subquery()
        hit = aliased(Bug, scored)
        page_rows = session.exec(select(hit, func.count().over())
                                 .order_by(scored.c.relevance.desc(), scored.c.number.desc())
                                 .offset(page.offset).limit(page.limit)).all()
        if page_rows:
            count = int(page_rows[0][1])
        else:
            count = 0 if page.offset == 0 else _capped_count(session, conditions)
        if count <= SEARCH_RANK_CAP:
            return ListResult([bug for bug, _ in page_rows], count)

    in_project = session.exec(select(func.coalesce(func.sum(BugCount.n), 0))
                              .where(col(BugCount.project_id) == project_id)).one()
    estimate = _sampled_total(session, project_id, filters, label_id, terms)
    total = max(SEARCH_RANK_CAP + 1, min(estimate, int(in_project)))
    if filters.sort:
        rows = session.exec(select(Bug).where(*filters_only, *_search_conditions(terms))
                            .order_by(*_ORDER[filters.sort])
                            .offset(page.offset).limit(page.limit)).all()
        return ListResult(list(rows), total, exact=False)
    # Broad search: title matches first, then the rest, each newest first: index scans in
    # `number` order that stop once the page is full. The title tier names only the title
    # (search_text begins with it): repeating the search_text conditions would make the
    # planner multiply two correlated selectivities and read every match instead.
    in_title = _title_matches(terms)
    wanted = page.offset + page.limit
    first = list(session.exec(select(Bug).where(*filters_only, in_title)
                              .order_by(col(Bug.number).desc()).limit(wanted)).all())
    bugs = first[page.offset:]
    if len(first) < wanted:
        skip = max(0, page.offset - len(first))
        bugs += session.exec(select(Bug).where(*filters_only, *_search_conditions(terms),
                                               sa.not_(in_title))
                             .order_by(col(Bug.number).desc())
                             .offset(skip).limit(page.limit - len(bugs))).all()
    return ListResult(bugs, total, exact=False)


def similar(session: Session, *, project_id: str, title: str, description: str,
            limit: int) -> list[tuple[Bug, float]]:
    """The project's bugs most like `title` + `description`, best first (see similar.py)."""
    return similar_mod.rank(session, project_id=project_id, title=title,
                            description=description, limit=limit)
