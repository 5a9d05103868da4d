"""What sort of place a site is (mall, stadium, shelter, ...), which shapes its simulated day.

The config's optional ``kind`` wins; otherwise the name is searched for common Chinese and
English words; otherwise the family's default curve is used.
"""

from __future__ import annotations

from domain.config import Site

# Checked in order: the first kind with a word found in the site's kind or name wins, so the
# more specific words come first (剧场 before 展览馆, 地下车库 before 地下室).
_WORDS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "crowd_venue": (
        ("theatre", ("theatre", "theater", "剧场", "剧院", "艺术中心", "音乐厅", "cinema", "影院", "concert")),
        ("stadium", ("stadium", "arena", "体育场", "体育馆", "体育中心")),
        ("hospital", ("hospital", "clinic", "医院", "门诊", "急诊")),
        ("station", ("station", "terminal", "车站", "火车站", "地铁", "北站", "南站", "西站", "候车")),
        ("school", ("school", "university", "college", "学校", "中学", "小学", "大学", "学院")),
        ("scenic", ("scenic", "park", "zoo", "temple", "garden", "景区", "公园", "动物园", "寺", "风景")),
        ("mall", ("mall", "market", "shopping", "plaza", "exhibition", "商场", "购物", "大悦城", "市场",
                  "商业街", "展览")),
    ),
    "underground": (
        ("garage", ("garage", "parking", "车库", "停车")),
        ("shelter", ("shelter", "civil defence", "civil-defence", "人防", "防空")),
        ("underpass", ("underpass", "subway passage", "地下通道", "过街通道")),
        ("basement", ("basement", "cellar", "地下室")),
    ),
}

CROWD_KINDS = ("mall", "theatre", "stadium", "scenic", "hospital", "station", "school")
UNDERGROUND_KINDS = ("shelter", "basement", "underpass", "garage")
DEFAULT = "default"

_ALIASES = {"theater": "theatre", "cinema": "theatre", "arena": "stadium", "park": "scenic", "zoo": "scenic",
            "railway": "station", "metro": "station", "market": "mall", "exhibition": "mall",
            "parking": "garage", "construction": "garage", "civil_defence": "shelter"}


def site_kind(site: Site) -> str:
    """The simulation kind of ``site``: one of the family's kinds, or ``default``."""
    table = _WORDS.get(site.family, ())
    known = {kind for kind, _ in table}
    if site.kind:
        given = site.kind.strip().lower()
        given = _ALIASES.get(given, given)
        if given in known:
            return given
    text = f"{site.kind or ''} {site.name} {site.id}".lower()
    for kind, words in table:
        if any(w in text for w in words):
            return kind
    return DEFAULT
