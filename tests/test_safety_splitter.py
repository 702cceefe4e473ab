"""The instruction splitter cuts where its docstring says, spaced dashes included (run first by
scripts/mutation_test.py)."""

import pytest

from model_runtime.instructions import parse_instruction



@pytest.mark.parametrize("text, texts", [
    ("smile - frown", ["smile", "frown"]),
    ("smile – frown — relax", ["smile", "frown", "neutral"]),
    ("smile -> frown", ["smile", "frown"]),
    ("smile then frown", ["smile", "frown"]),
    ("smile, frown", ["smile", "frown"]),
    ("smile; frown. pout", ["smile", "frown", "pout"]),
    ("smile , , then frown", ["smile", "frown"]),
    ("  smile  ", ["smile"]),
    ("...smile!!!", ["smile"]),
    ("a sad and tired look", ["sad and tired look"]),
    ("half-smile", ["half-smile"]),
])
def test_splitter_cuts_where_the_docs_say(text, texts):
    parsed = parse_instruction(text)
    assert [s.text for s in parsed.segments] == texts


def test_splitter_separator_kinds():
    from model_runtime.instructions import _split

    work = "smile, then frown after pout"
    frags = _split(work)
    assert [work[f.start:f.end] for f in frags] == ["smile", "frown", "pout"]
    assert [f.sep_before for f in frags] == ["none", "hard", "after"]
    assert [f.sep_after for f in frags] == ["hard", "after", "none"]
    frags = _split("smile, frown")
    assert [f.sep_before for f in frags] == ["none", "soft"]
    frags = _split("from a smile, to a frown")
    assert len(frags) == 1
    assert _split(" ,; ") == []


@pytest.mark.parametrize("work, fragments", [
    ("from a smile, to a frown", ["from a smile, to a frown"]),  # a comma inside "from X, to Y" does not cut
    ("from a smile then to a frown", ["from a smile", "to a frown"]),  # only a comma is kept, not a hard separator
    ("from a smile, a frown", ["from a smile", "a frown"]),  # only before "to"
    ("smile, to a frown", ["smile", "to a frown"]),  # only after "from"
])
def test_a_comma_inside_from_to_is_kept_only_there(work, fragments):
    from model_runtime.instructions import _split

    assert [work[f.start:f.end] for f in _split(work)] == fragments
