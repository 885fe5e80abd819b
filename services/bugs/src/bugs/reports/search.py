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
- Relevance: up to SEARCH_RANK_CAP matches are ranked by a score (whole query in the title,
  each word in the title, each word at the start of a word, trigram word similarity to the
  title). A broader search, where counting and scoring every match would cost a scan of tens
  of thousands of rows, ranks title matches first, newest first within each tier (two index
  scans that stop after the page), and reports an estimated total (`exact` False).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
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

SEARCH_RANK_CAP = 1000  # matches beyond which relevance falls back to title-first, newest first
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


def search_terms(text: str) -> list[str]:
    """The words of a search, lowercased, deduplicated, at most MAX_TERMS."""
    return list(dict.fromkeys(w.lower() for w in _WORD.findall(text)))[:MAX_TERMS]


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


def _search_conditions(terms: list[str]) -> list[Any]:
    return [_term_matches(col(Bug.search_text), t) for t in terms]


def _title_matches(terms: list[str]) -> Any:
    return sa.and_(*(_term_matches(col(Bug.title), t) for t in terms))


def _relevance(query: str, terms: list[str]) -> Any:
    """A bug's score for a search: the whole query in the title, then each word in the title,
    then each word at the start of a word, then trigram similarity to the title."""
    per_term = 1.0 / len(terms)
    score: Any = sa.case((col(Bug.title).ilike(_like(query)), 3.0), else_=0.0)
    for term in terms:
        score = score + sa.case((_term_matches(col(Bug.title), term),
                                 2.0 * per_term), else_=0.0)
        score = score + sa.case((col(Bug.search_text).op("~*")(r"\m" + re.escape(term)),
                                 per_term), else_=0.0)
    return score + func.word_similarity(query, col(Bug.title))


def _resolve_label(session: Session, project_id: str, label: str) -> str | None:
    query = select(Label.id).where(Label.project_id == project_id)
    if is_uuid(label):
        query = query.where(Label.id == label.lower())
    else:
        query = query.where(func.lower(Label.name) == label.lower())
    return session.exec(query).first()


def _dimension_conditions(model: Any, filters: BugFilters, *, counts: bool) -> list[Any]:
    """Filters on the columns `bug_counts` also has (there NULL is stored as '')."""
    out: list[Any] = []
    if filters.statuses:
        out.append(col(model.status).in_(filters.statuses))
    if filters.priorities:
        out.append(col(model.priority).in_(filters.priorities))
    if filters.categories:
        out.append(col(model.category).in_(filters.categories))
    if filters.platform is not None:
        out.append(func.lower(model.platform) == filters.platform.lower())
    if filters.assignee == "none":
        out.append(col(model.assignee_id) == "" if counts else col(model.assignee_id).is_(None))
    elif filters.assignee is not None:
        out.append(col(model.assignee_id) == filters.assignee)
    return out


def _estimate(session: Session, statement: Any) -> int:
    """The planner's row estimate for `statement` (no rows are read)."""
    compiled = statement.compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
    raw = session.connection().exec_driver_sql(
        f"EXPLAIN (FORMAT JSON) {compiled}", compiled.params).scalar_one()
    plan = raw if isinstance(raw, list) else json.loads(raw)
    return int(plan[0]["Plan"]["Plan Rows"])


def list_bugs(session: Session, *, project_id: str, filters: BugFilters, page: Page) -> ListResult:
    """One page of a project's bugs matching `filters`, and how many match."""
    conditions: list[Any] = [col(Bug.project_id) == project_id,
                             *_dimension_conditions(Bug, filters, counts=False)]
    label_id = None
    if filters.label is not None:
        label_id = _resolve_label(session, project_id, filters.label)
        if label_id is None:
            return ListResult([], 0)
        conditions.append(sa.exists().where(col(BugLabel.bug_id) == col(Bug.id),
                                            col(BugLabel.label_id) == label_id))
    if filters.game_version is not None:
        conditions.append(col(Bug.game_version) == filters.game_version)
    terms = search_terms(filters.search or "")
    if terms:
        return _search(session, conditions, filters, terms, page)

    dimensions = _dimension_conditions(BugCount, filters, counts=True)
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


def _search(session: Session, conditions: list[Any], filters: BugFilters, terms: list[str],
            page: Page) -> ListResult:
    conditions = [*conditions, *_search_conditions(terms)]
    capped = select(col(Bug.id)).where(*conditions).limit(SEARCH_RANK_CAP + 1).subquery()
    count = int(session.exec(select(func.count()).select_from(capped)).one())
    if count <= SEARCH_RANK_CAP:
        if count <= page.offset:
            return ListResult([], count)
        query = " ".join(terms)
        order = (_ORDER[filters.sort] if filters.sort else
                 (_relevance(query, terms).desc(), col(Bug.number).desc()))
        rows = session.exec(select(Bug).where(*conditions).order_by(*order)
                            .offset(page.offset).limit(page.limit)).all()
        return ListResult(list(rows), count)

    total = max(SEARCH_RANK_CAP + 1, _estimate(session, select(col(Bug.id)).where(*conditions)))
    if filters.sort:
        rows = session.exec(select(Bug).where(*conditions).order_by(*_ORDER[filters.sort])
                            .offset(page.offset).limit(page.limit)).all()
        return ListResult(list(rows), total, exact=False)
    # Broad search: title matches first, then the rest, each newest first and each an index
    # scan in `number` order that stops once the page is full.
    in_title = _title_matches(terms)
    wanted = page.offset + page.limit
    first = list(session.exec(select(Bug).where(*conditions, in_title)
                              .order_by(col(Bug.number).desc()).limit(wanted)).all())
    bugs = first[page.offset:]
    if len(first) < wanted:
        skip = max(0, page.offset - len(first))
        bugs += session.exec(select(Bug).where(*conditions, sa.not_(in_title))
                             .order_by(col(Bug.number).desc())
                             .offset(skip).limit(page.limit - len(bugs))).all()
    return ListResult(bugs, total, exact=False)


def similar(session: Session, *, project_id: str, title: str, description: str,
            limit: int) -> list[tuple[Bug, float]]:
    """The project's bugs most like `title` + `description`, best first (see similar.py)."""
    return similar_mod.rank(session, project_id=project_id, title=title,
                            description=description, limit=limit)
