"""Product images for the fake's canned products: a small SVG per product, made up from its number and title.

The canned products' ``imgUrl`` points at the fake itself
(``<fake url>/images/12345-classic-teapot.svg``), so that a demo or a browser
test shows pictures without reaching the internet. The same name always gives
the same picture: a colour from the product number, the title's initials.
"""

from __future__ import annotations

import colorsys
import hashlib
import re

__all__ = ["IMAGE_PREFIX", "image_name", "product_image"]

#: Where the fake serves the images.
IMAGE_PREFIX = "/images/"

# Only names that image_name() makes: nothing from the request reaches the SVG but
# digits and lower-case words.
_NAME = re.compile(r"(\d{1,12})((?:-[a-z0-9]{1,20}){0,6})\.svg")

_SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="320" height="240" viewBox="0 0 320 240" \
role="img" aria-label="{label}">
<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">\
<stop offset="0" stop-color="{light}"/><stop offset="1" stop-color="{dark}"/></linearGradient></defs>
<rect width="320" height="240" fill="url(#g)"/>
<circle cx="262" cy="48" r="96" fill="#fff" fill-opacity=".14"/>
<circle cx="40" cy="222" r="72" fill="#fff" fill-opacity=".10"/>
<text x="160" y="146" font-family="system-ui, sans-serif" font-size="88" font-weight="700" \
fill="#fff" text-anchor="middle">{initials}</text>
<text x="160" y="214" font-family="ui-monospace, monospace" font-size="16" fill="#fff" \
fill-opacity=".85" text-anchor="middle">#{number}</text>
</svg>
"""


def image_name(product_number: str, title: str) -> str:
    """The file name of a product's image: ``12345-classic-teapot.svg``."""
    words = re.findall(r"[a-z0-9]{1,20}", title.lower())[:6]
    digits = "".join(c for c in product_number if c.isdigit())[:12] or "0"
    return "-".join([digits, *words]) + ".svg"


def _colour(hue: float, lightness: float, saturation: float) -> str:
    red, green, blue = colorsys.hls_to_rgb(hue % 1.0, lightness, saturation)
    return f"#{round(red * 255):02x}{round(green * 255):02x}{round(blue * 255):02x}"


def product_image(name: str) -> bytes | None:
    """The SVG of image *name* (as :func:`image_name` makes it), or None when *name* is not one."""
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    number, slug = match.group(1), match.group(2)
    words = slug.split("-")[1:]
    hue = int(hashlib.sha256(number.encode()).hexdigest()[:4], 16) / 0x10000
    svg = _SVG.format(
        label=" ".join(words).title() or f"Product {number}",
        light=_colour(hue, 0.62, 0.65),
        dark=_colour(hue + 0.11, 0.40, 0.70),
        initials="".join(word[0] for word in words[:2]).upper() or number[-2:],
        number=number,
    )
    return svg.encode()
