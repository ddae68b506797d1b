from push_core.identifiers import (
    is_sortable_id,
    new_key_id,
    new_secret,
    new_sortable_id,
    sortable_id_time_ms,
)


def test_sortable_ids_sort_by_creation_time():
    # Given ids made a millisecond apart, in random order of randomness
    ids = [new_sortable_id(now_ms=1_700_000_000_000 + i) for i in range(50)]

    # Then sorting them as text keeps creation order
    assert sorted(ids) == ids


def test_sortable_id_has_ulid_shape_and_carries_its_timestamp():
    made = new_sortable_id(now_ms=1_795_435_200_123)
    assert is_sortable_id(made)
    assert len(made) == 26
    assert sortable_id_time_ms(made) == 1_795_435_200_123


def test_sortable_ids_made_in_the_same_millisecond_differ():
    assert len({new_sortable_id(now_ms=1) for _ in range(1000)}) == 1000


def test_is_sortable_id_rejects_other_shapes():
    assert not is_sortable_id("not-an-id")
    assert not is_sortable_id("01JD000000000000000000APPU")  # U is not Crockford base32
    assert not is_sortable_id("01jd000000000000000000app0")


def test_key_material_shapes():
    assert len(new_key_id()) == 16
    assert len(new_secret()) == 40
    assert new_secret() != new_secret()
