"""Areas: the configured file, their family (who an update for an area reaches) and postcodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadcast.areas import service as areas
from broadcast.errors import Invalid

AREAS_FILE = Path(__file__).resolve().parents[2] / "config" / "areas.toml"
VILLAGES = ["middelaar", "molenhoek", "mook", "plasmolen"]


def test_the_configured_file_names_a_municipality_and_its_villages():
    loaded = {a.code: a for a in areas.load_file(AREAS_FILE)}
    assert loaded["mook-en-middelaar"].parent is None
    assert sorted(c for c, a in loaded.items() if a.parent == "mook-en-middelaar") == VILLAGES
    assert loaded["mook"].postcodes == ["6585"]


def test_an_update_for_a_village_reaches_its_municipality_and_not_the_neighbours(store):
    with store.db.session_scope() as session:
        assert areas.related(session, ["mook"]) == ["mook", "mook-en-middelaar"]


def test_an_update_for_the_municipality_reaches_every_village(store):
    with store.db.session_scope() as session:
        assert areas.related(session, ["mook-en-middelaar"]) == sorted(
            ["mook-en-middelaar", *VILLAGES]
        )


def test_a_postcode_finds_its_village_whatever_its_letters(store):
    with store.db.session_scope() as session:
        assert areas.for_postcode(session, "6585 AB").code == "mook"
        assert areas.for_postcode(session, "6587").code == "middelaar"
        assert areas.for_postcode(session, "1234") is None  # elsewhere in the country
        assert areas.for_postcode(session, "65") is None  # not a postcode


def test_unknown_area_codes_are_named_in_the_refusal(store):
    with store.db.session_scope() as session:
        assert areas.check_codes(session, ["mook", "mook"]) == ["mook"]  # once each
        with pytest.raises(Invalid) as refused:
            areas.check_codes(session, ["mook", "atlantis"])
    assert "atlantis" in str(refused.value) and "mook" not in str(refused.value)


def test_syncing_the_file_again_changes_a_name_and_keeps_the_rest(store):
    with store.db.session_scope() as session:
        renamed = areas.load_file(AREAS_FILE)
        for area in renamed:
            if area.code == "mook":
                area.name = "Mook (dorp)"
        areas.sync(session, renamed)
    with store.db.session_scope() as session:
        names = {a.code: a.name for a in areas.all_areas(session)}
    assert names["mook"] == "Mook (dorp)"
    assert len(names) == 1 + len(VILLAGES)
    assert list(names)[0] == "mook-en-middelaar"  # the municipality first, then villages by name
