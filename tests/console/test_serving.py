"""How serve hands out the console: pages at the client routes, files gzip-compressed and small,
nothing of the API shadowed, both catalogues complete."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from api.console import PAGES
from tests.console.conftest import Console

ROOT = Path(__file__).resolve().parents[2] / "console"


@pytest.mark.parametrize("path", ["/", "/alerts", "/alerts/17", "/sites/GS-N1", "/hazards", "/hazards/3", "/map",
                                  "/reports", "/credit", "/subscriptions", "/silences", "/users", "/audit"])
def test_client_routes_answer_the_app(console: Console, path: str) -> None:
    r = httpx.get(console.url + path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "/console/js/app.js" in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]


@pytest.mark.parametrize(("path", "kind"), [("/health", "application/json"), ("/metrics", "text/plain"),
                                            ("/openapi.json", "application/json"), ("/docs", "text/html"),
                                            ("/api/v1/alerts", "application/json")])
def test_api_paths_are_not_shadowed(console: Console, path: str, kind: str) -> None:
    r = httpx.get(console.url + path)
    assert r.headers["content-type"].startswith(kind)
    assert "/console/js/app.js" not in r.text


@pytest.mark.parametrize("path", ["/console/../pyproject.toml", "/console/%2e%2e/pyproject.toml", "/console/nope.js"])
def test_files_outside_or_missing_are_404(console: Console, path: str) -> None:
    assert httpx.get(console.url + path).status_code == 404


def test_first_load_is_small(console: Console) -> None:
    """Everything the console could load (all modules, the style, one catalogue), gzip as served."""
    files = [p for p in ROOT.rglob("*") if p.is_file() and not p.name.endswith("en.json")]
    total = 0
    for p in files:
        r = httpx.get(f"{console.url}/console/{p.relative_to(ROOT).as_posix()}",
                      headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 200, p
        assert r.headers.get("content-encoding") == "gzip"
        total += int(r.headers["content-length"])
    print(f"console first load, everything gzip: {total} bytes in {len(files)} files")
    assert total < 300_000


def test_etag_gives_304(console: Console) -> None:
    first = httpx.get(console.url + "/console/style.css")
    again = httpx.get(console.url + "/console/style.css", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304


def test_catalogues_have_the_same_keys_and_every_key_used() -> None:
    zh = json.loads((ROOT / "i18n" / "zh.json").read_text(encoding="utf-8"))
    en = json.loads((ROOT / "i18n" / "en.json").read_text(encoding="utf-8"))
    assert zh.keys() == en.keys()
    source = "\n".join(p.read_text(encoding="utf-8") for p in ROOT.rglob("*.js"))
    used = set(re.findall(r"\bt\('([a-z0-9_.]+)'", source))
    assert used <= zh.keys(), sorted(used - zh.keys())
    assert all(v.strip() for v in (*zh.values(), *en.values()))


def test_pages_list_matches_the_app_routes() -> None:
    app = (ROOT / "js" / "app.js").read_text(encoding="utf-8")
    for page in PAGES:
        probe = page.replace("{item}", "x")
        assert probe == "/" or f"/^\\/{probe.strip('/').split('/')[0]}" in app, page


def test_gzip_body_is_the_file(console: Console) -> None:
    r = httpx.get(console.url + "/console/js/app.js", headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    assert r.content == (ROOT / "js" / "app.js").read_bytes()  # httpx has decompressed it


ADMIN = {"Authorization": "Bearer e2e-admin-token"}


def test_district_view_gives_zone_streets_units(console: Console) -> None:
    d = httpx.get(console.url + "/api/v1/district", headers=ADMIN).json()
    assert d["timezone"] == "Asia/Urumqi"
    assert [s["id"] for s in d["streets"]] == ["north", "south"]
    assert d["families"]["gas_station"]["vapor_lel"]["unit"] == "%LEL"
    assert d["escalation"] == [{"severity_at_least": "red", "unacknowledged_for_s": 600.0, "notify": ["hq"]}]


@pytest.mark.parametrize(("query", "status", "ids"), [
    ("", 200, ["vapour-level", "vapour-rising", "co-level"]),
    ("?family=gas_station", 200, ["vapour-level", "vapour-rising"]),
    ("?family=underground", 200, ["co-level"]),
    ("?family=volcano", 422, None),
    ("?famly=gas_station", 422, None),
])
def test_rules_view(console: Console, query: str, status: int, ids: list[str] | None) -> None:
    r = httpx.get(console.url + "/api/v1/rules" + query, headers=ADMIN)
    assert r.status_code == status, r.text
    if ids is not None:
        assert [x["id"] for x in r.json()] == ids
    if query == "?family=gas_station":
        assert r.json()[0]["levels"] == {"blue": 10, "yellow": 20, "orange": 25, "red": 50}


@pytest.mark.parametrize("path", ["/api/v1/district", "/api/v1/rules"])
def test_config_views_need_a_caller(console: Console, path: str) -> None:
    assert httpx.get(console.url + path).status_code == 401
