"""Sentence splitting and structure-aware chunking."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from indexer.chunking import chunk_document, with_char_budget
from indexer.providers.local import HashingEmbedder
from indexer.records import ChunkDraft, ParsedDocument, Section
from indexer.sentences import split_sentences

ZH_SAMPLE = Path(__file__).parent.parent / "data" / "zh_sample.txt"

Counter = Callable[[str], int]
COUNTERS: dict[str, Counter] = {
    "quarter_chars": lambda s: len(s) // 4,
    "chars": len,
    "hashing": HashingEmbedder().count_tokens,
}

EN_PARAGRAPH = (
    "Dr. Smith measured 3.14 units in v2.3.1 of the tool. The U.S. team, e.g. Jones et al. "
    "in Fig. 2, disagreed! Ticket PPR-9087 tracks it at https://example.com/a.b?x=1. "
    "Was that right? Nobody knows. The results were reproduced twice. Finally it shipped."
)


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


def make_doc(blocks: Sequence[tuple[tuple[str, ...], int | None, str]]) -> ParsedDocument:
    """Markdown-ish text: a heading line whenever the path changes, blocks joined by blank lines."""
    parts: list[str] = []
    sections: list[Section] = []
    pos = 0
    last: tuple[str, ...] | None = None
    for path, page, body in blocks:
        if path != last and path:
            heading = "#" * len(path) + " " + path[-1] + "\n\n"
            parts.append(heading)
            pos += len(heading)
        last = path
        sections.append(Section(body, pos, pos + len(body), path, page))
        parts.append(body + "\n\n")
        pos += len(body) + 2
    return ParsedDocument(text="".join(parts), sections=tuple(sections), media_type="text/plain")


def zh_paragraphs() -> list[str]:
    return [p for p in ZH_SAMPLE.read_text(encoding="utf-8").split("\n\n") if p.strip()]


def check_invariants(
    doc: ParsedDocument,
    chunks: list[ChunkDraft],
    count: Counter,
    limit: int,
    upper_bound: bool = False,
) -> None:
    """`upper_bound`: a chunk's `tokens` may exceed its real count (sums of a sub-additive
    counter), never fall below it. Counts include the character budget (`with_char_budget`)."""
    count = with_char_budget(count)
    assert chunks
    for i, c in enumerate(chunks):
        assert c.ordinal == i
        assert doc.text[c.start : c.end] == c.text
        assert c.text.strip() == c.text and c.text
        if upper_bound:
            assert count(c.text) <= c.tokens <= limit
        else:
            assert c.tokens == count(c.text) <= limit
        heading_cost = count(" > ".join(c.heading_path) + "\n") if c.heading_path else 0
        if heading_cost <= limit // 2:  # else the heading is capped and only text is held
            assert count(c.embed_text) <= limit
        # Every section the chunk touches shares its heading path and page.
        for s in doc.sections:
            if s.start < c.end and c.start < s.end:
                assert (s.heading_path, s.page) == (c.heading_path, c.page)


# -- sentences ------------------------------------------------------------------------------


def test_english_abbreviations_decimals_versions_identifiers_urls() -> None:
    assert sentences(EN_PARAGRAPH) == [
        "Dr. Smith measured 3.14 units in v2.3.1 of the tool.",
        "The U.S. team, e.g. Jones et al. in Fig. 2, disagreed!",
        "Ticket PPR-9087 tracks it at https://example.com/a.b?x=1.",
        "Was that right?",
        "Nobody knows.",
        "The results were reproduced twice.",
        "Finally it shipped.",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mr. and Mrs. Lee met i.e. twice.", ["Mr. and Mrs. Lee met i.e. twice."]),
        ("Pi is 3.14159. It is irrational.", ["Pi is 3.14159.", "It is irrational."]),
        ("Upgrade to v2.3.1 now. Then restart.", ["Upgrade to v2.3.1 now.", "Then restart."]),
        ("J. K. Rowling wrote it. Fine.", ["J. K. Rowling wrote it.", "Fine."]),
        ('He said "Go." Then left.', ['He said "Go."', "Then left."]),
        ("lower case. continues here", ["lower case. continues here"]),
        ("1. First item\n2. Second item", ["1. First item", "2. Second item"]),
        ("Wait... Then it came.", ["Wait...", "Then it came."]),
        ("See file.py. 2 more follow.", ["See file.py.", "2 more follow."]),
    ],
)
def test_english_cases(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_chinese_terminators_and_closing_quotes() -> None:
    text = "他说：“你好。”然后走了……真的吗？是的！「好！」分号；结束"
    assert sentences(text) == [
        "他说：“你好。”",
        "然后走了……",
        "真的吗？",
        "是的！",
        "「好！」",
        "分号；",
        "结束",
    ]


def test_lines_end_sentences_and_spans_exclude_whitespace() -> None:
    text = "  Title line\nsecond line without period\n\n   Para one. Para two.  \n"
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == [
        "Title line",
        "second line without period",
        "Para one.",
        "Para two.",
    ]
    assert split_sentences("") == [] and split_sentences(" \n\n\t") == []


# -- chunking -------------------------------------------------------------------------------


# floor(len/4) is super-additive, so it cannot promise `additive`; the others can.
@pytest.mark.parametrize(
    ("counter", "additive"),
    [(name, False) for name in COUNTERS] + [("chars", True), ("hashing", True)],
)
@pytest.mark.parametrize("limit", [12, 40, 200])
def test_spans_and_budget_hold(counter: str, limit: int, additive: bool) -> None:
    count = COUNTERS[counter]
    zh = zh_paragraphs()
    doc = make_doc(
        [
            (("Guide",), 1, "Short intro."),
            (("Guide",), 1, "Another short one."),
            (("Guide", "Details"), 1, EN_PARAGRAPH),
            (("Guide", "Details"), 2, EN_PARAGRAPH + " " + EN_PARAGRAPH),
            (("指南", "中文"), 2, zh[0]),
            (("指南", "中文"), 2, zh[1]),
            ((), None, "No heading at all. " * 30),
        ]
    )

    def run() -> list[ChunkDraft]:
        return chunk_document(
            doc, max_tokens=limit, overlap_sentences=1, count_tokens=count, additive=additive
        )

    chunks = run()
    check_invariants(doc, chunks, count, limit, upper_bound=additive)  # real counts
    assert chunks == run()


def test_small_sections_pack_within_heading_only() -> None:
    doc = make_doc(
        [
            (("A",), None, "One."),
            (("A",), None, "Two."),
            (("B",), None, "Three."),
            (("B",), 2, "Four."),
        ]
    )
    chunks = chunk_document(doc, max_tokens=100, overlap_sentences=1, count_tokens=len)
    assert [(c.text, c.heading_path, c.page) for c in chunks] == [
        ("One.\n\nTwo.", ("A",), None),
        ("Three.", ("B",), None),
        ("Four.", ("B",), 2),
    ]
    check_invariants(doc, chunks, len, 100)


def test_no_packing_across_skipped_content() -> None:
    text = "First part.\n[figure]\nSecond part."
    doc = ParsedDocument(
        text=text,
        sections=(Section("First part.", 0, 11), Section("Second part.", 21, 33)),
        media_type="text/plain",
    )
    chunks = chunk_document(doc, max_tokens=100, overlap_sentences=0, count_tokens=len)
    assert [c.text for c in chunks] == ["First part.", "Second part."]


def test_overlap_repeats_last_sentence_within_a_section() -> None:
    body = " ".join(f"Sentence number {i} is here." for i in range(20))
    doc = make_doc([(("H",), None, body)])
    chunks = chunk_document(doc, max_tokens=80, overlap_sentences=1, count_tokens=len)
    assert len(chunks) > 3
    for prev, nxt in itertools.pairwise(chunks):
        last = sentences(prev.text)[-1]
        assert nxt.text.startswith(last)
        assert nxt.start < prev.end  # the spans overlap in the document too
    check_invariants(doc, chunks, len, 80)
    plain = chunk_document(doc, max_tokens=80, overlap_sentences=0, count_tokens=len)
    assert all(a.end < b.start for a, b in itertools.pairwise(plain))


def test_no_overlap_across_headings() -> None:
    body = " ".join(f"Fact {i} holds." for i in range(10))
    doc = make_doc([(("A",), None, body), (("B",), None, body)])
    chunks = chunk_document(doc, max_tokens=40, overlap_sentences=2, count_tokens=len)
    first_b = next(c for c in chunks if c.heading_path == ("B",))
    assert first_b.text.startswith("Fact 0 holds.")
    check_invariants(doc, chunks, len, 40)


def test_heading_cost_is_taken_from_the_budget() -> None:
    body = " ".join(f"Item {i} is fine." for i in range(30))
    path = ("A fairly long chapter heading", "And a section")
    doc = make_doc([(path, None, body)])
    chunks = chunk_document(doc, max_tokens=100, overlap_sentences=0, count_tokens=len)
    assert all(len(c.embed_text) <= 100 for c in chunks)
    assert any(len(c.text) > 40 for c in chunks)


def test_absurd_heading_is_capped_at_half_the_budget() -> None:
    path = ("x" * 500,)
    doc = make_doc([(path, None, "Word " * 200)])
    chunks = chunk_document(doc, max_tokens=100, overlap_sentences=0, count_tokens=len)
    assert chunks and all(0 < len(c.text) <= 50 for c in chunks)
    assert doc.text[chunks[0].start : chunks[-1].end].split() == ["Word"] * 200


@pytest.mark.parametrize("counter", list(COUNTERS))
def test_chinese_chunks_end_at_sentence_terminators(counter: str) -> None:
    count = COUNTERS[counter]
    limit = {"chars": 60, "quarter_chars": 20, "hashing": 50}[counter]
    doc = make_doc([(("中文",), None, p) for p in zh_paragraphs()])
    chunks = chunk_document(doc, max_tokens=limit, overlap_sentences=1, count_tokens=count)
    check_invariants(doc, chunks, count, limit)
    ends = {s.start + e for s in doc.sections for _, e in split_sentences(s.text)}
    long_sentences = [
        (s.start + a, s.start + b)
        for s in doc.sections
        for a, b in split_sentences(s.text)
        if count(s.text[a:b]) > limit - count("中文\n") or count("中文\n" + s.text[a:b]) > limit
    ]
    at_terminator = 0
    for c in chunks:
        if c.end in ends:
            at_terminator += c.text[-1] in "。！？；…”」』）"
        else:
            # Mid-sentence only when the sentence alone is over budget.
            assert any(a <= c.start and c.end <= b for a, b in long_sentences), c.text
    assert at_terminator >= len(chunks) // 2


def test_giant_sentence_is_split_under_budget() -> None:
    en = "word " * 3000
    zh = "这是一个没有标点的非常长的句子" * 200
    blob = "x" * 5000  # one unbreakable token
    doc = make_doc([(("E",), None, en.strip()), (("Z",), None, zh), (("X",), None, blob)])
    for name, count in COUNTERS.items():
        limit = 50
        chunks = chunk_document(doc, max_tokens=limit, overlap_sentences=1, count_tokens=count)
        check_invariants(doc, chunks, count, limit)
        en_chunks = [c for c in chunks if c.heading_path == ("E",)]
        assert " ".join(c.text for c in en_chunks).split() == ["word"] * 3000, name
        assert "".join(c.text for c in chunks if c.heading_path == ("Z",)) == zh, name
        assert "".join(c.text for c in chunks if c.heading_path == ("X",)) == blob, name


def test_empty_and_whitespace_sections_give_no_chunks() -> None:
    text = "   \n\n\t\nReal text."
    doc = ParsedDocument(
        text=text,
        sections=(Section("   ", 0, 3), Section("\t", 5, 6), Section(text, 0, len(text))),
        media_type="text/plain",
    )
    chunks = chunk_document(doc, max_tokens=10, overlap_sentences=0, count_tokens=len)
    assert [c.text for c in chunks] == ["Real text."]
    empty = ParsedDocument(text="", sections=(), media_type="text/plain")
    assert chunk_document(empty, max_tokens=10, overlap_sentences=0, count_tokens=len) == []


def test_rejects_bad_arguments() -> None:
    doc = make_doc([((), None, "Text.")])
    with pytest.raises(ValueError):
        chunk_document(doc, max_tokens=0, overlap_sentences=0, count_tokens=len)
    with pytest.raises(ValueError):
        chunk_document(doc, max_tokens=10, overlap_sentences=-1, count_tokens=len)


def test_table_over_budget_splits_at_rows_with_the_header_as_context() -> None:
    header = "| Region | Revenue |\n|---|---|"
    rows = [f"| region {i} | {i * 100} |" for i in range(40)]
    table = "## Sales\n\n" + header + "\n" + "\n".join(rows)
    doc = ParsedDocument(
        text=table,
        sections=(
            Section("## Sales", 0, 8, ("Sales",), None, "heading"),
            Section(table[10:], 10, len(table), ("Sales",), None, "table"),
        ),
        media_type="text/markdown",
    )
    count = HashingEmbedder().count_tokens

    drafts = chunk_document(doc, max_tokens=60, overlap_sentences=1, count_tokens=count)

    assert len(drafts) > 2
    assert drafts[0].text.startswith("## Sales\n\n" + header) and drafts[0].context == ""
    body = [line for d in drafts for line in d.text.splitlines() if line.startswith("| region")]
    assert body == rows  # every row exactly once, in order, never cut
    for draft in drafts[1:]:
        assert draft.context == "## Sales\n\n" + header
        assert draft.embed_text == f"Sales\n## Sales\n\n{header}\n{draft.text}"
        assert count(draft.embed_text) <= 60
        assert doc.text[draft.start : draft.end] == draft.text


def test_heading_followed_by_subheading_opens_the_next_chunk() -> None:
    text = "# Guide\n\n## Install\n\nRun the installer."
    doc = ParsedDocument(
        text=text,
        sections=(
            Section("# Guide", 0, 7, ("Guide",), None, "heading"),
            Section("## Install", 9, 19, ("Guide", "Install"), None, "heading"),
            Section("Run the installer.", 21, 39, ("Guide", "Install"), None, "text"),
        ),
        media_type="text/markdown",
    )

    drafts = chunk_document(doc, max_tokens=100, overlap_sentences=0, count_tokens=len)

    assert [(d.text, d.heading_path) for d in drafts] == [(text, ("Guide", "Install"))]
