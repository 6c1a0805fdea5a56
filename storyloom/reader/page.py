"""The reader page as HTML: one Jinja2 template, autoescaped, and its Content-Security-Policy.

The policy allows no script at all, images and the clip only from the page's own origin,
and the one stylesheet inlined in the page, named by its hash.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from importlib import resources

import jinja2
from markupsafe import Markup

from storyloom.reader.view import ReaderView


@cache
def _environment() -> jinja2.Environment:
    # autoescape everything: every string in a view is member-written
    return jinja2.Environment(
        loader=jinja2.PackageLoader("storyloom.reader", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def stylesheet() -> str:
    """The page's CSS (inlined, so the static export is one file beside its images)."""
    return resources.files("storyloom.reader").joinpath("templates/reader.css").read_text("utf-8")


def _policy(frame_ancestors: bool) -> str:
    digest = base64.b64encode(hashlib.sha256(stylesheet().encode("utf-8")).digest()).decode()
    parts = [
        "default-src 'none'",
        "img-src 'self'",
        "media-src 'self'",
        f"style-src 'sha256-{digest}'",
        "base-uri 'none'",
        "form-action 'none'",
    ]
    if frame_ancestors:  # only a header may carry it; a <meta> policy must not
        parts.append("frame-ancestors 'none'")
    return "; ".join(parts)


def content_security_policy() -> str:
    """The policy the server sends with the reader page."""
    return _policy(frame_ancestors=True)


def render_page(view: ReaderView, *, embed_policy: bool = False) -> str:
    """The reader page; `embed_policy` puts the policy in a <meta> tag (the static export,
    which no server sends headers for)."""
    template = _environment().get_template("story.html.j2")
    return template.render(
        view=view,
        css=Markup(stylesheet()),  # our own constant, hashed into the policy
        csp_meta=_policy(frame_ancestors=False) if embed_policy else None,
    )
