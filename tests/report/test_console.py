"""The terminal summary's long explanations are wrapped without splitting an estimate from
its standard error."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from uplift.report.console import LINE_WIDTH, wrapped

words = st.lists(st.one_of(
    st.text("abcdefghij(),:;%", min_size=1, max_size=14),
    st.builds(lambda a, b: f"{a:.2f} +- {b:.2f}", st.floats(-9, 9), st.floats(0, 9))),
    min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(words)
def test_wrapped_lines_keep_every_word_and_each_estimate_whole(parts):
    text = " ".join(parts)
    lines = wrapped(text)
    assert all(len(line) <= LINE_WIDTH for line in lines)
    assert lines[0].startswith("  ") and all(line.startswith("      ") for line in lines[1:])
    assert " ".join(line.strip() for line in lines) == " ".join(text.split())
    for line in lines:
        assert not line.rstrip().endswith(" +-") and not line.strip().startswith("+-")
