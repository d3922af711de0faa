"""The try-it page at ``GET /``: served right, self-contained, and working in a real browser.

The browser tests drive Debian's Chromium (``/usr/bin/chromium``, installed by
``make test``) through Playwright against the real server, the way a person uses
the page: pick or drop files, then read the answer off the screen. They skip,
saying why, where that browser is not installed or will not start. Screenshots
land in ``test-artifacts/page-*.png`` for a human to look at.
"""

from __future__ import annotations

import base64
import re
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from conftest import ROOT, SAMPLES, SHARED, TEST_CROPS, encode
from fastapi.testclient import TestClient
from PIL import Image
from test_bad_input import phone_photo
from test_server import running_server, start_server, wait_until_ready

from lpr.labels import DEVANAGARI
from service.routers.page import ASSETS

STATIC = ROOT / "service" / "static"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
# Headless in a container as root: no sandbox, no GPU, and no calls home of any kind.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class _References(HTMLParser):
    """Every URL the page itself would fetch: scripts, stylesheets, images, icons."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(values["id"] or "")
        for name in ("src", "href"):
            if values.get(name):
                self.urls.append(values[name] or "")


def parse_page(html: str) -> _References:
    parser = _References()
    parser.feed(html)
    return parser


# --- served by the app (in-process) -------------------------------------------------------------


def test_root_serves_the_page_with_a_drop_zone_and_a_keyboard_usable_picker(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = parse_page(response.text)
    assert {
        "drop-zone",
        "file-input",
        "results",
        "model-version",
        "mode-auto",
        "mode-crops",
        "mode-plate",
    } <= page.ids
    # A newcomer's first picture is sent where it fits: the page tells from the picture by default.
    (checked,) = re.findall(r'<input[^>]*name="mode"[^>]*\bchecked\b[^>]*>', response.text)
    assert 'value="auto"' in checked
    picker = re.search(r"<input[^>]*id=\"file-input\"[^>]*>", response.text, re.S)
    assert picker and 'type="file"' in picker.group() and "multiple" in picker.group()
    # The picker has a label (the drop zone) so screen readers announce it and a click opens it.
    assert '<label for="file-input"' in response.text
    # The browser may load and contact only this server.
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "script-src 'self'" in csp


def test_the_page_and_its_assets_reference_no_other_host(client: TestClient) -> None:
    """No CDN, no web fonts, no analytics: the page works on an offline network."""
    html = client.get("/").text
    page = parse_page(html)
    assert page.urls, "the page loads its script and stylesheet"
    for url in page.urls:
        assert url.startswith("/") and not url.startswith("//"), f"{url} is not on this server"
        assert client.get(url).status_code == 200, url
    for name, text in [("index.html", html)] + [(n, client.get(f"/static/{n}").text) for n in ASSETS]:
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import|@font-face", text, re.I), name


def test_static_assets_are_served_with_their_types_and_unknown_ones_are_404(client: TestClient) -> None:
    for name, media_type in ASSETS.items():
        response = client.get(f"/static/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"] == media_type
        assert response.content == (STATIC / name).read_bytes()
        assert response.headers["x-content-type-options"] == "nosniff"
    missing = client.get("/static/nope.js")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_the_page_is_not_part_of_the_api_schema(client: TestClient) -> None:
    """Schema-driven clients and fuzzers see the API only."""
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths
    assert not [p for p in paths if p.startswith("/static")]
    assert "/predict/batch" in paths


# --- in a real browser, against the real server -------------------------------------------------


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m service`` on a free local port, as ``make serve`` runs it, for this module's tests."""
    log_path = tmp_path_factory.mktemp("page-server") / "server.log"
    base, process = start_server(log_path, LPR_ACCESS_LOG="false")
    try:
        try:
            wait_until_ready(base, process)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; its log:\n{log_path.read_text()[-3000:]}") from None
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    log_text = log_path.read_text()
    assert "Traceback" not in log_text, log_text[-3000:]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (Debian package `chromium`; `make test` installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the `playwright` package (test extra)")
    try:
        playwright = sync_api.sync_playwright().start()
    except Exception as exc:  # its bundled driver will not run here: a missing library, say
        pytest.skip(f"Playwright's driver would not start: {str(exc).splitlines()[0]}")
    try:
        try:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        except sync_api.Error as exc:
            pytest.skip(f"Playwright could not launch {CHROMIUM}: {str(exc).splitlines()[0]}")
        yield chromium
        chromium.close()
    finally:
        playwright.stop()


@pytest.fixture
def page(browser: Any, live_server: str) -> Iterator[Any]:
    """A fresh tab on the page; fails the test if the page logs an error (a CSP violation, say)."""
    context = browser.new_context(viewport={"width": 1100, "height": 760}, locale="en-GB")
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    problems: list[str] = []
    tab.on("console", lambda message: message.type == "error" and problems.append(message.text))
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.goto(f"{live_server}/")
    model_version = httpx.get(f"{live_server}/ready").json()["model_version"]
    tab.wait_for_function(
        "v => document.getElementById('model-version').textContent === v", arg=model_version
    )
    yield tab
    context.close()
    # Expected 4xx answers show up as "Failed to load resource"; anything else is a bug in the page.
    assert [p for p in problems if "Failed to load resource" not in p] == []


def screenshot(tab: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"page-{name}.png"
    tab.screenshot(path=str(path), full_page=True)
    return path


def png_payload(name: str) -> dict[str, Any]:
    """A sample as Playwright's in-memory file (paths and buffers cannot be mixed in one upload)."""
    return {"name": f"{name}.png", "mimeType": "image/png", "buffer": (SAMPLES / f"{name}.png").read_bytes()}


def finished_cards(tab: Any, count: int, testid: str = "result-card") -> Any:
    cards = tab.locator(f"[data-testid={testid}]")
    tab.wait_for_function(
        "([testid, n]) => { const cards = document.querySelectorAll(`[data-testid=${testid}]`);"
        " return cards.length === n && [...cards].every(c => c.dataset.state !== 'pending'); }",
        arg=[testid, count],
    )
    for text in cards.all_inner_texts():
        assert not re.search(r"\b(null|undefined|NaN|\[object)", text), f"a JS value leaked: {text!r}"
    return cards


@pytest.mark.slow
def test_a_picked_crop_shows_its_devanagari_label_confidence_and_bars(page: Any) -> None:
    page.set_input_files("#file-input", str(SAMPLES / "ba.png"))
    card = finished_cards(page, 1).first
    assert card.get_attribute("data-state") == "done"
    assert card.get_by_test_id("result-label").inner_text() == DEVANAGARI["ba"] == "बा"
    assert card.get_by_test_id("result-ascii").inner_text() == "ba"
    assert re.fullmatch(r"\d{1,3}\.\d %", card.get_by_test_id("result-confidence").inner_text())
    top = card.get_by_test_id("result-bars").first.locator("li")
    assert top.count() == 3 and top.first.get_attribute("data-label") == "ba"
    assert card.get_by_role("img").get_attribute("alt") == "Uploaded image ba.png"
    assert page.get_by_test_id("status").inner_text() == "1 of 1 read."
    # The details list holds every class, probabilities summing to 100 %.
    card.locator("summary").click()
    values = card.locator("details li .bar-value").all_inner_texts()
    assert len(values) == len(DEVANAGARI)
    assert abs(sum(float(v.split()[0]) for v in values) - 100) < 0.1 * len(values)
    screenshot(page, "crop")


@pytest.mark.slow
def test_several_files_at_once_get_one_card_each_and_a_bad_file_its_own_error(page: Any) -> None:
    page.set_input_files(
        "#file-input",
        [
            *(png_payload(name) for name in ("8", "pa")),
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a picture"},
        ],
    )
    cards = finished_cards(page, 3)
    names = cards.evaluate_all("cards => cards.map(c => c.dataset.filename)")
    assert names == ["8.png", "pa.png", "notes.txt"]
    assert [cards.nth(i).get_by_test_id("result-label").inner_text() for i in (0, 1)] == ["८", "प"]
    bad = cards.nth(2)
    assert bad.get_attribute("data-state") == "error"
    error = bad.get_by_test_id("result-error").inner_text()
    assert "not_an_image" in error and "image" in error.split("not_an_image")[0]
    assert page.get_by_test_id("status").inner_text() == "2 of 3 read, 1 failed."
    screenshot(page, "batch")

    page.get_by_test_id("clear").click()
    assert page.locator("[data-testid=result-card]").count() == 0


@pytest.mark.slow
def test_the_unknown_badge_shows_exactly_when_the_service_says_unknown(page: Any, live_server: str) -> None:
    """A sample and a noise picture (no character at all): the page flags what the API flags."""
    noise = np.random.default_rng(0).integers(0, 256, (90, 70, 3), dtype=np.uint8)
    noise_png = encode(Image.fromarray(noise), "PNG")
    files = [png_payload("ba"), {"name": "noise.png", "mimeType": "image/png", "buffer": noise_png}]
    answer = httpx.post(
        f"{live_server}/predict/batch",
        files=[("files", (f["name"], f["buffer"], f["mimeType"])) for f in files],
    ).json()
    page.set_input_files("#file-input", files)
    cards = finished_cards(page, 2)
    for i, result in enumerate(answer["results"]):
        card = cards.nth(i)
        assert card.get_by_test_id("result-label").inner_text() == result["devanagari"]
        assert card.get_by_test_id("result-unknown").count() == (1 if result.get("unknown") else 0)
    screenshot(page, "unknown")


def drop(tab: Any, files: list[tuple[str, str, bytes]]) -> None:
    """Drop ``(name, type, bytes)`` files on the drop zone, as a file manager does."""
    payload = [(name, kind, base64.b64encode(data).decode()) for name, kind, data in files]
    transfer = tab.evaluate_handle(
        """files => {
            const transfer = new DataTransfer();
            for (const [name, type, data] of files) {
                const text = atob(data);
                const bytes = new Uint8Array(text.length);
                for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
                transfer.items.add(new File([bytes], name, { type }));
            }
            return transfer;
        }""",
        payload,
    )
    tab.dispatch_event("#drop-zone", "dragenter", {"dataTransfer": transfer})
    tab.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})


@pytest.mark.slow
def test_a_dropped_file_is_read(page: Any) -> None:
    drop(page, [("1.png", "image/png", (SAMPLES / "1.png").read_bytes())])
    card = finished_cards(page, 1).first
    assert card.get_by_test_id("result-label").inner_text() == "१"
    assert card.get_by_test_id("read-as").inner_text() == "read as one character"


@pytest.mark.slow
def test_a_phone_photo_dropped_with_the_default_settings_is_read_as_a_photo(
    page: Any, live_server: str
) -> None:
    """The newcomer's case: a phone's full-size picture (about 8 MB) goes to /read-plate, not to the
    crop classifier; a character crop dropped with it still goes to /predict/batch."""
    photo = phone_photo()
    answer = httpx.post(
        f"{live_server}/read-plate", files={"file": ("phone.jpg", photo, "image/jpeg")}, timeout=60
    ).json()
    assert answer["plates"], "the photo's plate must be found for this check to mean anything"
    assert page.get_by_test_id("mode-auto").is_checked()

    drop(
        page, [("phone.jpg", "image/jpeg", photo), ("pa.png", "image/png", (SAMPLES / "pa.png").read_bytes())]
    )
    card = finished_cards(page, 1, "plate-card").first
    assert card.get_attribute("data-state") == "done", card.inner_text()
    assert card.get_by_test_id("read-as").inner_text() == "read as a plate or photo"
    assert card.get_by_test_id("plate-text").inner_text() == (answer["text"] or "nothing read")
    assert card.get_by_test_id("plate-found").count() == len(answer["plates"])
    crop = finished_cards(page, 1).first
    assert crop.get_by_test_id("result-label").inner_text() == DEVANAGARI["pa"]
    assert page.get_by_test_id("status").inner_text() == "2 of 2 read."
    screenshot(page, "auto")

    # The user can still say what the pictures are: in crop mode a plate goes to the crop classifier.
    page.get_by_test_id("clear").click()
    page.get_by_test_id("mode-crops").check()
    drop(page, [("plate.png", "image/png", plate_image())])
    as_crop = finished_cards(page, 1).first
    assert as_crop.get_attribute("data-state") == "done" and as_crop.get_by_test_id("read-as").count() == 0


@pytest.mark.slow
def test_the_picker_works_from_the_keyboard(page: Any) -> None:
    """Tab to the picker (past the mode switch) and press Space: the file chooser opens."""
    # Playwright turns on Chromium's file-chooser interception only once something listens for a
    # chooser, and a renderer that is behind (a loaded machine) may handle queued key events before
    # that DevTools command: with expect_file_chooser() alone, set up at the key press, the chooser
    # then opens unseen and the wait times out. Listening from the start, the Tab presses and focus
    # checks below (the same DevTools session, handled in order) flush it before Space is pressed.
    opened: list[Any] = []
    page.on("filechooser", lambda chooser: opened.append(chooser))
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "file-input":
            break
    else:
        pytest.fail("the file picker cannot be reached with Tab")
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    assert opened == [chooser.value], "Space opens exactly one file chooser"
    chooser.value.set_files(str(SAMPLES / "pa.png"))
    assert finished_cards(page, 1).first.get_by_test_id("result-label").inner_text() == "प"


@pytest.mark.slow
def test_narrow_screens_get_the_whole_page_without_sideways_scrolling(page: Any) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    page.set_input_files("#file-input", [str(SAMPLES / "ba.png"), str(SAMPLES / "8.png")])
    finished_cards(page, 2)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    box = page.get_by_test_id("drop-zone").bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 360
    screenshot(page, "narrow")


def plate_image() -> bytes:
    """A plate as a phone sees it: the four colour samples side by side on red paint, with a margin."""
    crops = [Image.open(SAMPLES / f"{name}.png").convert("RGB") for name in ("ba", "8", "pa", "1")]
    gap, margin = 14, 40
    width = sum(c.width for c in crops) + gap * (len(crops) - 1) + 2 * margin
    height = max(c.height for c in crops) + 2 * margin
    plate = Image.new("RGB", (width, height), (150, 32, 36))
    x = margin
    for crop in crops:
        plate.paste(crop, (x, margin))
        x += crop.width + gap
    return encode(plate, "PNG")


@pytest.mark.slow
def test_plate_mode_draws_a_box_over_each_character_read(page: Any, live_server: str, tmp_path: Path) -> None:
    if "/read-plate" not in httpx.get(f"{live_server}/openapi.json").json()["paths"]:
        pytest.skip("this build has no POST /read-plate yet; plate mode cannot be checked")
    data = plate_image()
    answer = httpx.post(f"{live_server}/read-plate", files={"file": ("plate.png", data, "image/png")}).json()
    path = tmp_path / "plate.png"
    path.write_bytes(data)

    page.get_by_test_id("mode-plate").check()
    page.set_input_files("#file-input", str(path))
    card = finished_cards(page, 1, "plate-card").first
    assert card.get_attribute("data-state") == "done"
    assert card.get_by_test_id("plate-text").inner_text() == (answer["text"] or "nothing read")
    characters = [c for row in answer["rows"] for c in row["characters"]]
    boxes = card.get_by_test_id("plate-box")
    assert boxes.count() == len(characters) == card.get_by_test_id("plate-char").count()
    assert card.get_by_test_id("plate-row").count() == len(answer["rows"])
    if answer.get("reason"):
        assert card.get_by_test_id("plate-reason").inner_text() == answer["reason"]
    # Each box sits where the service found the character, scaled to the picture as displayed.
    image = card.get_by_test_id("result-image").bounding_box()
    scale = image["width"] / answer["image"]["width"]
    for box, character in zip(boxes.all(), characters, strict=True):
        shown, found = box.bounding_box(), character["box"]
        assert abs(shown["x"] - (image["x"] + found["x"] * scale)) <= 2
        assert abs(shown["y"] - (image["y"] + found["y"] * scale)) <= 2
        assert abs(shown["width"] - found["width"] * scale) <= 2

    # A plate with nothing on it: the card says so, and why.
    blank = tmp_path / "blank.png"
    blank.write_bytes(encode(Image.new("RGB", (400, 200), (150, 32, 36)), "PNG"))
    expected = httpx.post(
        f"{live_server}/read-plate", files={"file": ("blank.png", blank.read_bytes(), "image/png")}
    ).json()
    page.set_input_files("#file-input", str(blank))
    card = finished_cards(page, 2, "plate-card").first  # the newest upload comes first
    assert card.get_attribute("data-filename") == "blank.png"
    if expected.get("count") == 0:
        assert card.get_by_test_id("plate-text").inner_text() == "nothing read"
        assert card.get_by_test_id("plate-reason").inner_text() == expected["reason"]
        assert card.get_by_test_id("plate-box").count() == 0
    screenshot(page, "plate")


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server with LPR_API_KEYS set: the page's own calls then need the key the user types."""
    with running_server(
        tmp_path_factory.mktemp("page-keyed-server") / "server.log", LPR_API_KEYS="page-key"
    ) as base:
        yield base


@pytest.mark.slow
def test_with_keys_on_the_page_asks_for_one_and_works_once_given(browser: Any, keyed_server: str) -> None:
    context = browser.new_context(viewport={"width": 1100, "height": 760}, locale="en-GB")
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    tab.goto(f"{keyed_server}/")
    # The version comes from the open /ready probe, before any key is typed.
    tab.wait_for_function("() => document.getElementById('model-version').textContent.startsWith('lpr-')")
    tab.set_input_files("#file-input", [png_payload("ba")])
    refused = finished_cards(tab, 1).first
    assert refused.get_attribute("data-state") == "error"
    assert "missing_api_key" in refused.get_by_test_id("result-error").inner_text()
    tab.get_by_test_id("clear").click()
    tab.get_by_test_id("api-key").fill("page-key")
    tab.get_by_test_id("api-key").dispatch_event("change")
    tab.set_input_files("#file-input", [png_payload("pa")])
    card = finished_cards(tab, 1).first
    assert card.get_attribute("data-state") == "done"
    assert card.get_by_test_id("result-label").inner_text() == DEVANAGARI["pa"]
    context.close()


@pytest.mark.slow
def test_a_car_plate_shows_its_unknown_letter_the_candidates_and_a_doubtful_verdict(
    page: Any, live_server: str, tmp_path: Path
) -> None:
    """A plate with a letter the model does not read: the page shows ?, why, the candidates, and doubt."""
    from training.synthesis.plates import DEFAULT_SEED, generate_plates

    path = tmp_path / "car.png"
    # The first plate of a letter neither model names (the letter model names most it is sure of).
    for plate in generate_plates(TEST_CROPS, count=80, seed=DEFAULT_SEED, foreign=1.0):
        plate.image.save(path)
        answer = httpx.post(
            f"{live_server}/read-plate", files={"file": ("car.png", path.read_bytes(), "image/png")}
        ).json()
        reasons = [c["reason"] for r in answer["rows"] for c in r["characters"]]
        if reasons.count("unsupported_symbol") == 1:
            break
    else:
        pytest.fail("no plate of 80 with one letter left unnamed")
    assert answer["confident"] is False

    page.get_by_test_id("mode-plate").check()
    page.set_input_files("#file-input", str(path))
    card = finished_cards(page, 1, "plate-card").first
    assert card.get_by_test_id("plate-text").inner_text() == answer["text"] and "?" in answer["text"]
    verdict = card.get_by_test_id("plate-confident")
    assert verdict.get_attribute("data-confident") == "false" and "Doubtful" in verdict.inner_text()
    unknown = card.locator("[data-testid=plate-char][data-reason=unsupported_symbol]")
    assert unknown.count() == 1
    assert unknown.locator(".char-glyph").inner_text() == "?"
    (letter,) = [c for r in answer["rows"] for c in r["characters"] if c["reason"] == "unsupported_symbol"]
    candidates = [c["devanagari"] for c in letter["candidates"]]
    assert unknown.get_attribute("title").startswith(candidates[0])  # on hover
    unknown.get_by_test_id("plate-candidates").locator("summary").click()  # on tap
    assert unknown.get_by_test_id("plate-candidates").locator("li").count() == len(candidates)
    screenshot(page, "plate-unknown")


@pytest.mark.slow
def test_a_camera_photo_is_read_whole_with_a_frame_on_each_plate_found(
    page: Any, live_server: str, tmp_path: Path
) -> None:
    """The phone's "take a photo" input: the frame goes to /read-plate, each plate found is framed."""
    from lpr.repository import DEFAULT_REPOSITORY
    from training.data.photos import detector_dataset

    (name, *_) = detector_dataset(DEFAULT_REPOSITORY)["validation"]
    photo = SHARED / "data" / "plate-photos" / "images" / name
    answer = httpx.post(
        f"{live_server}/read-plate", files={"file": ("photo.jpg", photo.read_bytes(), "image/jpeg")}
    ).json()
    assert answer["plates"], "the held-out photo's plate must be found for this check to mean anything"

    page.set_input_files("#camera-input", str(photo))
    assert page.get_by_test_id("mode-plate").is_checked()  # a camera frame is read as a photo
    card = finished_cards(page, 1, "plate-card").first
    assert card.get_attribute("data-state") == "done"
    assert card.get_by_test_id("plate-text").inner_text() == (answer["text"] or "nothing read")
    frames = card.get_by_test_id("plate-found")
    assert frames.count() == len(answer["plates"])
    image = card.get_by_test_id("result-image").bounding_box()
    scale = image["width"] / answer["image"]["width"]
    for frame, plate in zip(frames.all(), answer["plates"], strict=True):
        shown, found = frame.bounding_box(), plate["box"]
        assert frame.get_attribute("data-confident") == str(plate["confident"]).lower()
        assert abs(shown["x"] - (image["x"] + found["x"] * scale)) <= 3
        assert abs(shown["y"] - (image["y"] + found["y"] * scale)) <= 3
        assert abs(shown["width"] - found["width"] * scale) <= 3
    screenshot(page, "photo")
