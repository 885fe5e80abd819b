"""The text side of similar bugs: stemming, synonyms, concepts and the score."""

from __future__ import annotations

import pytest

from bugs.reports.similar import Query, concepts, score, stem, trigram_similarity, tsqueries


@pytest.mark.parametrize(("words", "same"), [
    (("falls", "falling", "fell", "fallen", "fall"), "fall"),
    (("textures", "texture", "texturing"), "textur"),
    (("crashes", "crashed", "crashing", "crash"), "crash"),
    (("stopped", "stops", "stop"), "stop"),
    (("enemies", "enemy"), "enemi"),
    (("parrying", "parry", "parried", "parries"), "parri"),
    (("flickering", "flickers", "flicker"), "flicker"),
])
def test_inflections_share_one_stem(words, same) -> None:  # type: ignore[no-untyped-def]
    assert {stem(w) for w in words} == {same}


def test_short_and_double_letter_words_are_left_alone() -> None:
    assert stem("pass") == "pass" and stem("bus") == "bus" and stem("gas") == "gas"
    assert stem("speed") == "speed" and stem("ui") == "ui"


def test_synonyms_and_phrases_fold_into_one_concept() -> None:
    assert concepts("Player fell through the ground") == concepts("character falls through floor")
    assert concepts("CTD when opening the bag") == concepts("crash opening inventory")
    assert concepts("No sound after alt tab") == concepts("no audio after alt-tabbing")


def test_stop_words_do_not_count() -> None:
    assert concepts("It is the game and it happens sometimes") == []
    assert concepts("Level 3 bridge") == ["level", "3", "bridg"]


def test_the_reworded_duplicate_outscores_a_bug_sharing_only_the_place() -> None:
    query = Query.of("fell through the ground near the bridge, level 3")
    duplicate = score(query, "Player falls through floor on bridge", "drops through the floor")
    same_place = score(query, "Bridge texture is missing on low settings", "")
    assert 0 <= same_place < duplicate <= 1


def test_identical_reports_score_close_to_one() -> None:
    query = Query.of("Music too loud", "The music is louder than voices")
    assert score(query, "Music too loud", "The music is louder than voices") > 0.95


def test_trigram_similarity_matches_pg_trgm_on_simple_cases() -> None:
    assert trigram_similarity("word", "word") == 1.0
    assert trigram_similarity("word", "") == 0.0
    assert trigram_similarity("word", "two words") == pytest.approx(4 / 11)


def test_candidate_queries_go_from_narrow_to_broad() -> None:
    queries = tsqueries(Query.of("Dragon stuck inside castle wall"))
    every, pairs, anyone = queries
    assert every.count(") & (") == 3 and ") | (" not in every  # dragon, stuck, castle, wall
    assert pairs.count(") | (") == 5  # six pairs of four concepts
    assert "&" not in anyone and "'trap':*" in anyone  # a concept's synonyms are ORed
    assert tsqueries(Query.of("the and of")) == []
