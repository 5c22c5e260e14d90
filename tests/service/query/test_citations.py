"""Citation markers: kept when they name a source, renumbered 1.. in order of first use."""

from __future__ import annotations

from service.query.citations import snippet, validate_citations


def test_citations_renumber_in_order_of_first_use() -> None:
    text, order = validate_citations("Backups run nightly [3]. Logs rotate [1][3].", 3)

    assert text == "Backups run nightly [1]. Logs rotate [2][1]."
    assert order == [3, 1]  # new [1] cites source 3, new [2] cites source 1


def test_citations_drop_markers_naming_no_source_and_the_space_they_leave() -> None:
    text, order = validate_citations("Yes [7]. Also [2, 9]，and 对 [2、2]。", 2)

    assert text == "Yes. Also [1]，and 对 [1]。"
    assert order == [2]


def test_citations_without_markers_leave_the_answer_alone() -> None:
    assert validate_citations("No sources were needed.", 4) == ("No sources were needed.", [])


def test_snippet_cuts_long_text_at_a_word() -> None:
    cut = snippet("word " * 100, limit=42)

    assert cut.endswith("…") and len(cut) <= 43
    assert snippet("  short\n text ") == "short text"
