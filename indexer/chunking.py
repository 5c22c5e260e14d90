"""Structure-aware chunking: pack small sections, split big ones at sentence boundaries.

Every chunk is a contiguous slice of `ParsedDocument.text` and fits the token budget, both
as text and as `embed_text` (heading path + text). Token counts are taken once per section
or sentence and summed; the final chunk is counted once more to verify the estimate, and in
the rare case the sum underestimated (non-additive tokenizers), the chunk is shrunk.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from indexer.errors import PayloadTooLarge
from indexer.records import ChunkDraft, ParsedDocument, Section
from indexer.sentences import CJK_CHARS, split_sentences

CountTokens = Callable[[str], int]

# The character budget beside the token budget: a chunk of N tokens holds at most
# N * CHARS_PER_TOKEN characters. Tokenizers saturate on a giant "word" (WordPiece turns any
# word over 100 characters into one [UNK]), so a token count alone let a 2 MB line of one
# word through as a single 2 MB chunk. English runs ~4.5 characters per token, so real text
# still meets the token budget first.
CHARS_PER_TOKEN = 8


def with_char_budget(count_tokens: CountTokens, max_tokens: int | None = None) -> CountTokens:
    """`count_tokens`, raised to at least ceil(characters / CHARS_PER_TOKEN).

    Sub-additive when `count_tokens` is (a maximum of sub-additive counts is). Text whose
    characters alone exceed `max_tokens` is over any budget whatever its tokens: it is not
    tokenized (a 2 MB line would cost the tokenizer seconds for nothing).
    """

    def count(text: str) -> int:
        by_chars = -(-len(text) // CHARS_PER_TOKEN)
        if max_tokens is not None and by_chars > max_tokens:
            return by_chars
        return max(count_tokens(text), by_chars)

    return count


# Last-resort split units for a sentence over budget: one CJK character with any punctuation
# after it (so `。` is never cut off alone), or a run of other non-space characters (a word, a
# URL, an identifier).
_ATOM = re.compile(rf"[{CJK_CHARS}][^\w\s]*|[^\s{CJK_CHARS}]+")


@dataclass(frozen=True, slots=True)
class _Unit:
    start: int
    end: int
    tokens: int


class _Chunker:
    """State for one heading/page group: the document, the budgets and the output list."""

    def __init__(
        self,
        text: str,
        count_tokens: CountTokens,
        max_tokens: int,
        heading_path: tuple[str, ...],
        page: int | None,
        out: list[ChunkDraft],
        trust_sums: bool = False,
        max_chunks: int | None = None,
    ) -> None:
        self.text = text
        self.trust_sums = trust_sums
        self.count = count_tokens
        self.max_tokens = max_tokens
        self.heading_path = heading_path
        self.page = page
        self.out = out
        self.max_chunks = max_chunks
        self.prefix = " > ".join(heading_path) + "\n" if heading_path else ""
        heading_cost = count_tokens(self.prefix) if self.prefix else 0
        # An absurdly long heading path would leave the text almost no room; it is counted
        # as at most half the budget, and for such chunks only the text is held to the
        # budget (the embedder then truncates part of embed_text: a deliberate trade-off).
        self.check_embed = heading_cost <= max_tokens // 2
        self.budget = max(1, max_tokens - heading_cost if self.check_embed else max_tokens // 2)
        self._gap_cache: dict[str, int] = {}
        # While a table is split: where its header rows end, and their text (the context
        # repeated with every later piece of the table).
        self._table_header: tuple[int, str] | None = None

    # -- counting -------------------------------------------------------------------------

    def gap(self, end: int, start: int) -> int:
        """Tokens of the whitespace between two units (cached: the same few strings recur)."""
        if end >= start:
            return 0
        s = self.text[end:start]
        n = self._gap_cache.get(s)
        if n is None:
            n = self._gap_cache[s] = self.count(s)
        return n

    def fits(self, start: int, end: int) -> int | None:
        """Exact token count of `text[start:end]` if it and its embed_text fit, else None."""
        chunk = self.text[start:end]
        n = self.count(chunk)
        if n > self.budget:
            return None
        if self.check_embed and self.prefix and self.count(self.prefix + chunk) > self.max_tokens:
            return None
        return n

    def emit(self, start: int, end: int, tokens: int) -> None:
        if self.max_chunks is not None and len(self.out) >= self.max_chunks:
            raise PayloadTooLarge(
                f"document makes more than {self.max_chunks:,} chunks "
                "(the limit is RAGSEARCH_MAX_CHUNKS_PER_DOCUMENT)"
            )
        context = ""
        if self._table_header is not None and start >= self._table_header[0]:
            context = self._table_header[1]
        self.out.append(
            ChunkDraft(
                ordinal=len(self.out),
                text=self.text[start:end],
                start=start,
                end=end,
                heading_path=self.heading_path,
                page=self.page,
                tokens=tokens,
                context=context,
            )
        )

    # -- packing --------------------------------------------------------------------------

    def pack(
        self,
        units: Sequence[_Unit],
        overlap: int,
        too_big: Callable[[_Unit], None],
    ) -> None:
        """Greedily pack consecutive units into chunks, repeating `overlap` units between them.

        A unit that does not fit on its own is handed to `too_big` (a finer split), and no
        overlap is carried across it.
        """
        n = len(units)
        i = 0
        fresh = 0  # first unit not yet in any chunk: a chunk must add at least one
        while i < n:
            first = units[i]
            if first.tokens > self.budget:
                too_big(first)
                i = fresh = i + 1
                continue
            j, total = i, first.tokens
            while j + 1 < n:
                nxt = units[j + 1]
                extra = self.gap(units[j].end, nxt.start) + nxt.tokens
                if total + extra > self.budget:
                    break
                j += 1
                total += extra
            # With a sub-additive counter the sum is an exact count or an upper bound, so the
            # chunk needs no second pass through the tokenizer (the costliest part of ingest).
            exact = total if self.trust_sums else self.fits(first.start, units[j].end)
            if exact is None and j > i:
                # The summed estimate was low (rare; a non-additive tokenizer): binary search
                # the longest run from unit i whose real count fits.
                good, bad = i - 1, j
                while bad - good > 1:
                    mid = (good + bad) // 2
                    if self.fits(first.start, units[mid].end) is None:
                        bad = mid
                    else:
                        good = mid
                if good >= i:
                    j = good
                    exact = self.fits(first.start, units[j].end)
            if exact is None:
                too_big(first)
                i = fresh = i + 1
                continue
            if j < fresh:
                # Only repeated (overlap) units fitted: drop the overlap and start afresh.
                i = fresh
                continue
            self.emit(first.start, units[j].end, exact)
            if j + 1 >= n:
                return
            fresh = j + 1
            i = fresh - self._overlap_size(units, i, j, overlap)

    def _overlap_size(self, units: Sequence[_Unit], i: int, j: int, overlap: int) -> int:
        """How many trailing units of chunk [i, j] can open the next chunk with unit j + 1."""
        k = min(overlap, j - i)  # at least one unit of the chunk stays unrepeated
        if k <= 0:
            return 0
        nxt = units[j + 1]
        total = nxt.tokens
        for m in range(j, j - k, -1):
            total += units[m].tokens + self.gap(units[m].end, units[m + 1].start)
        while k > 0 and total > self.budget:
            m = j - k + 1
            total -= units[m].tokens + self.gap(units[m].end, units[m + 1].start)
            k -= 1
        return k

    # -- levels ---------------------------------------------------------------------------

    def sections(self, sections: Sequence[Section], overlap: int) -> None:
        """Pack runs of small sections; split a section over budget at sentences (tables at
        rows, with the header repeated as context)."""
        run: list[_Unit] = []
        heading_start: int | None = None  # heading lines waiting for the block they title
        heading_end = 0
        for index, sec in enumerate(sections):
            start, end = _trim(self.text, sec.start, sec.end)
            if start >= end:
                continue
            if sec.kind == "heading" and index + 1 < len(sections):
                # A heading travels with the block after it, never ends a chunk alone.
                heading_start = start if heading_start is None else heading_start
                heading_end = end
                continue
            if heading_start is not None:
                if _blank(self.text, heading_end, start):
                    start = heading_start
                else:
                    run.append(self._unit(heading_start, start))
                heading_start = None
            unit = self._unit(start, end)
            # Pack only across whitespace: anything else between sections (a skipped
            # figure, a code fence) was left out by the parser on purpose.
            if run and (unit.tokens > self.budget or not _blank(self.text, run[-1].end, start)):
                self.pack(run, 0, lambda u: self.sentences(u, overlap))
                run = []
            if unit.tokens > self.budget:
                if sec.kind == "table":
                    self.table_rows(unit, overlap)
                else:
                    self.sentences(unit, overlap)
            else:
                run.append(unit)
        if run:
            self.pack(run, 0, lambda u: self.sentences(u, overlap))

    def _unit(self, start: int, end: int) -> _Unit:
        start, end = _trim(self.text, start, end)
        return _Unit(start, end, self.count(self.text[start:end]))

    def sentences(self, section: _Unit, overlap: int) -> None:
        """Split one section at sentence boundaries, with `overlap` sentences repeated."""
        base = section.start
        body = self.text[base : section.end]
        units = [_Unit(base + s, base + e, self.count(body[s:e])) for s, e in split_sentences(body)]
        # Heading lines glued to this block open its first chunk rather than end one alone,
        # unless that would cut the first sentence.
        headings = 0
        while headings < len(units) - 1 and self.text.startswith("#", units[headings].start):
            headings += 1
        glued = 0
        if headings:
            glued = sum(u.tokens for u in units[: headings + 1]) + sum(
                self.gap(a.end, b.start) for a, b in itertools.pairwise(units)
            )
        if headings and glued <= self.budget:
            units[: headings + 1] = [_Unit(units[0].start, units[headings].end, glued)]
        if len(units) <= 1:
            self.words(section)
            return
        self.pack(units, overlap, self.words)

    def table_rows(self, table: _Unit, overlap: int) -> None:
        """Split a Markdown table at rows; pieces after the first repeat its header rows in
        `context` (outside the span, inside `embed_text`), so every piece keeps its columns."""
        lines = _line_units(self.text, table.start, table.end)
        # Heading lines glued to the table travel in its header.
        first = next((i for i, (s, _) in enumerate(lines) if self.text[s] != "#"), 0)
        header_lines = first + 1
        if len(lines) > header_lines + 1 and _is_separator(self.text, lines[header_lines]):
            header_lines += 1
        header_end = lines[header_lines - 1][1]
        header = self.text[table.start : header_end]
        header_cost = self.count(header) + 1
        if len(lines) <= header_lines or header_cost > self.budget // 2:
            self.sentences(table, overlap)  # no rows to repeat it for, or too big to repeat
            return
        units = [_Unit(table.start, header_end, self.count(header))]
        units += [_Unit(s, e, self.count(self.text[s:e])) for s, e in lines[header_lines:]]
        saved_budget = self.budget
        self.budget -= header_cost
        self._table_header = (header_end, header)
        try:
            self.pack(units, 0, self.words)
        finally:
            self.budget = saved_budget
            self._table_header = None

    def words(self, sentence: _Unit) -> None:
        """Last resort for one sentence over budget: split at words (characters for CJK)."""
        units = [
            _Unit(m.start(), m.end(), self.count(m.group()))
            for m in _ATOM.finditer(self.text, sentence.start, sentence.end)
        ]
        if len(units) <= 1:
            self.characters(sentence)
            return
        self.pack(units, 0, self.characters)

    def characters(self, unit: _Unit) -> None:
        """Split one unbreakable word over budget into the longest fitting character runs."""
        lo, stop = unit.start, unit.end
        while lo < stop:
            # Binary search the longest fitting prefix; one character is taken even if it
            # alone exceeds the budget, since nothing smaller exists. No prefix longer than
            # the character budget can fit, so the search never counts more than that.
            end = min(stop, lo + self.budget * CHARS_PER_TOKEN)
            good, bad = lo + 1, end + 1
            if self.fits(lo, end) is not None:
                good = end
            else:
                while bad - good > 1:
                    mid = (good + bad) // 2
                    if self.fits(lo, mid) is not None:
                        good = mid
                    else:
                        bad = mid
            self.emit(lo, good, self.count(self.text[lo:good]))
            lo = good


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _line_units(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans = []
    pos = start
    while pos < end:
        stop = text.find("\n", pos, end)
        stop = end if stop < 0 else stop
        if text[pos:stop].strip():
            spans.append((pos, stop))
        pos = stop + 1
    return spans


def _is_separator(text: str, span: tuple[int, int]) -> bool:
    line = text[span[0] : span[1]].strip()
    return line.startswith("|") and set(line) <= set("|-: ")


def _blank(text: str, start: int, end: int) -> bool:
    return start >= end or text[start:end].isspace()


def chunk_document(
    doc: ParsedDocument,
    *,
    max_tokens: int,
    overlap_sentences: int,
    count_tokens: Callable[[str], int],
    additive: bool = False,
    max_chunks: int | None = None,
) -> list[ChunkDraft]:
    """Cut `doc` into chunks of at most `max_tokens` tokens, following its structure.

    Consecutive sections with the same heading path and page are packed together (their
    chunk text includes the whitespace between them); a heading or page change always
    starts a new chunk, and heading lines with no text of their own before the next heading
    open that next chunk. A section over budget is split at sentence boundaries with the
    last `overlap_sentences` sentences repeated at the start of the next chunk (budget
    permitting); a table over budget is split at rows, later pieces carrying its header rows
    as `context`; a sentence over budget is split at words, or characters for CJK.

    Guarantees: `doc.text[c.start:c.end] == c.text`, `count_tokens(c.text) <= max_tokens`,
    `len(c.text) <= max_tokens * CHARS_PER_TOKEN` (even where the tokenizer saturates)
    and `count_tokens(c.embed_text) <= max_tokens` (the heading path's tokens are taken
    from the budget; a heading path costing over half of `max_tokens` is counted as half
    and only the text is held to the budget). No chunk is empty or whitespace-only.

    `additive=True` promises that `count_tokens` is sub-additive where text is cut at
    whitespace (`count(a + b) <= count(a) + count(b)`; true of WordPiece and of rounded-up
    estimates): a chunk is then sized from the counts of its sentences and the whitespace
    between them instead of being counted again, about halving the tokenizer work.

    More than `max_chunks` chunks raise PayloadTooLarge as soon as the limit is passed.
    """
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    if overlap_sentences < 0:
        raise ValueError("overlap_sentences must not be negative")
    count_tokens = with_char_budget(count_tokens, max_tokens)
    out: list[ChunkDraft] = []
    group: list[Section] = []
    key: tuple[tuple[str, ...], int | None] | None = None

    def flush() -> None:
        if group and key is not None:
            chunker = _Chunker(
                doc.text,
                count_tokens,
                max_tokens,
                key[0],
                key[1],
                out,
                trust_sums=additive,
                max_chunks=max_chunks,
            )
            chunker.sections(group, overlap_sentences)

    for sec in doc.sections:
        sec_key = (tuple(sec.heading_path), sec.page)
        if sec_key != key:
            # Heading lines with nothing under them yet (a heading followed directly by a
            # sub-heading) open the next group rather than making a chunk of their own.
            if not all(s.kind == "heading" for s in group):
                flush()
                group = []
            key = sec_key
        group.append(sec)
    flush()
    return out
