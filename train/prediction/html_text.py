"""Reduce a news web page to its article text, one block (heading, paragraph, caption) per line.

Line breaks are sentence boundaries for the segmenter, so blocks must end up on
lines of their own while inline markup (links, emphasis) must not break a line.
"""

from __future__ import annotations

from bs4 import BeautifulSoup

_NOT_TEXT = ("script", "style", "noscript", "template", "svg", "iframe", "form", "button",
             "nav", "header", "footer", "aside")
_BLOCKS = ("p", "div", "section", "article", "main", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol",
           "blockquote", "figcaption", "figure", "table", "tr", "td", "th", "pre", "dd", "dt", "br", "hr")


def html_to_text(html: str) -> str:
    """The text of the page's <article> (else <main>, else <body>), without scripts and page chrome."""
    soup = BeautifulSoup(html, "lxml")
    for element in soup.find_all(_NOT_TEXT):
        element.decompose()
    root = soup.find("article") or soup.find("main") or soup.body or soup
    for block in root.find_all(_BLOCKS):
        block.insert_before("\n")
        block.insert_after("\n")
    lines = (" ".join(line.split()) for line in root.get_text().splitlines())
    return "\n".join(line for line in lines if line)
