from pipelines.xml_prolog import declares_entities, without_internal_dtd

BOMB = b'<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY a "x"><!ENTITY b "&a;&a;">]><urlset>&b;</urlset>'
PLAIN = b'<?xml version="1.0"?><urlset><url><loc>http://example.org/</loc></url></urlset>'


def test_entity_declarations_are_detected_in_the_prolog_only():
    assert declares_entities(BOMB)
    assert not declares_entities(PLAIN)
    assert not declares_entities(b'<?xml version="1.0"?><!DOCTYPE html><p>&lt;!ENTITY</p>')
    late = PLAIN + b" " * 5000 + b"<!DOCTYPE x [<!ENTITY a 'b'>]>"
    assert not declares_entities(late)


def test_without_internal_dtd_drops_the_subset_and_keeps_the_rest():
    body, had = without_internal_dtd(BOMB)
    assert had and body == b'<?xml version="1.0"?><urlset>&b;</urlset>'
    assert without_internal_dtd(PLAIN) == (PLAIN, False)
