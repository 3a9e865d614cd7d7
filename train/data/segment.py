"""Sentence segmentation shared by the dataset builder and the predictor.

Both must split text identically, otherwise gold labels and predictions would
refer to different sentences. Line breaks are hard boundaries: scraped news
pages put headings, captions and page furniture on lines of their own, with no
final punctuation, and razdel would otherwise glue them to the next sentence.
"""

from __future__ import annotations

import re

from razdel import sentenize

# A Markdown image line ("![caption](url)") carries its caption as language and
# the URL as noise; the model only ever sees the caption.
_MARKDOWN_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")


def sentences_with_lines(text: str) -> list[tuple[int, str]]:
    """(1-based line number, sentence) pairs: line by line, then razdel within a line."""
    pairs = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        line = _MARKDOWN_IMAGE.sub(r"\1", line).strip()
        for sentence in sentenize(line):
            if sentence.text.strip():
                pairs.append((line_number, sentence.text.strip()))
    return pairs


def split_sentences(text: str) -> list[str]:
    """Split an article into sentences, as the dataset and the predictor both see them."""
    return [sentence for _, sentence in sentences_with_lines(text)]


def previous_sentences(records: list[dict]) -> list[str]:
    """The model's context for each annotation-format record: the previous sentence of its article.

    A record that carries its own `context` (a sentence labelled without its neighbours,
    as `make import-labels` writes them) keeps it; a first sentence has none.
    """
    text_at = {(str(r["article"]), r["index"]): r["text"] for r in records}
    return [r["context"] if "context" in r else text_at.get((str(r["article"]), r["index"] - 1), "") for r in records]


def article_contexts(sentences: list[str]) -> list[str]:
    """The context of every sentence of one segmented article."""
    return previous_sentences([{"article": "", "index": i, "text": text} for i, text in enumerate(sentences)])
