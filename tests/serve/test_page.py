"""The web page (crnn_jax/serve/page.html) in a real browser: Debian's headless Chromium driven by
Playwright (never a downloaded browser), against the service on a loopback port with the
shipped scene_en model. A person's steps: pick a file, read the text shown; choose another
decoder; pick a file that is no image. Skips where chromium or playwright is missing (.ci/run
installs chromium)."""

import os
import pathlib
import shutil
import socket
import threading
import time

import pytest

import crnn_jax
from crnn_jax.serve import app as app_lib
from crnn_jax.serve import service as service_lib

sync_api = pytest.importorskip("playwright.sync_api")
uvicorn = pytest.importorskip("uvicorn")

CHROMIUM = os.environ.get("CRNN_JAX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WORDS = pathlib.Path(__file__).resolve().parents[2] / "testdata" / "heldout_en"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not shutil.which(CHROMIUM),
                                 reason=f"no {CHROMIUM} (Debian's chromium package)")]


@pytest.fixture(scope="module")
def server_url():
  """The service of scene_en on a free loopback port, run by uvicorn in a thread."""
  recognizer = crnn_jax.Recognizer.from_pretrained("scene_en", decoder="greedy")
  model = service_lib.build_model("scene_en", recognizer, default_decoder="lm",
                                  decoder_names=("greedy", "lm"), source="weights scene_en")
  service = service_lib.Service([model], batching=service_lib.Batching(max_batch=4),
                                warmup_max_width=0)
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
  server = uvicorn.Server(uvicorn.Config(app_lib.create_app(service), host="127.0.0.1",
                                         port=port, log_level="warning", lifespan="on"))
  thread = threading.Thread(target=server.run, daemon=True)
  thread.start()
  deadline = time.monotonic() + 60
  while not server.started:
    assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
    time.sleep(0.05)
  yield f"http://127.0.0.1:{port}/"
  server.should_exit = True
  thread.join(30)


@pytest.fixture(scope="module")
def requested():
  """Every URL the page requested, but for its own images (blob: URLs of the files picked)."""
  return []


@pytest.fixture(scope="module")
def page(server_url, requested):
  with sync_api.sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                         headless=True)
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    page.on("request", lambda r: None if r.url.startswith("blob:") else requested.append(r.url))
    page.goto(server_url)
    page.wait_for_function("() => document.querySelectorAll('#decoder option').length > 0")
    yield page
    browser.close()


def _word(line: int) -> tuple[pathlib.Path, str]:
  name, label = (WORDS / "gt.txt").read_text().splitlines()[line].split("\t")
  return WORDS / name, label


def test_picking_a_file_shows_its_reading_and_character_boxes(page, tmp_path):
  assert page.input_value("#model") == "scene_en"
  assert page.input_value("#decoder") == "lm"  # The model's default decoder.
  path, label = _word(2)  # 'zoophobia'
  page.set_input_files("#file", str(path))
  card = page.locator(".result").first
  card.locator(".text").wait_for()
  assert card.locator(".text").inner_text() == label
  confidence = float(card.locator(".confidence").inner_text().split()[-1])
  assert 0.5 < confidence <= 1.0
  assert card.get_attribute("data-decoder") == "lm"
  assert card.locator(".span").count() == len(label)  # One box per character read.
  assert card.locator(".span").first.inner_text().startswith(label[0] + " ")
  assert card.locator(".path").inner_text().startswith("path ")
  # The canvas shows the image with the boxes drawn over it.
  drawn = page.evaluate("""() => {
      const c = document.querySelector('.result canvas');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let coloured = 0;
      for (let i = 0; i < d.length; i += 4)
        if (Math.abs(d[i] - d[i + 2]) > 40) coloured++;  // The boxes' blue and orange.
      return {width: c.width, coloured};
  }""")
  assert drawn["width"] > 300 and drawn["coloured"] > 500
  page.screenshot(path=str(tmp_path / "page.png"))


def test_choosing_another_decoder_reads_again(page):
  path, label = _word(4)  # 'blobbed'
  page.set_input_files("#file", str(path))
  page.wait_for_function(
      f"() => document.querySelector('.result .text')?.textContent === {label!r}")
  page.select_option("#decoder", "greedy")
  page.wait_for_function("() => document.querySelector('.result')?.dataset.decoder === 'greedy'")
  assert page.locator(".result .text").first.inner_text() == label
  assert "greedy decoder" in page.inner_text("#status")


def test_a_file_that_is_no_image_shows_the_error(page, tmp_path):
  bad = tmp_path / "notes.png"
  bad.write_bytes(b"these are notes, not a picture")
  page.set_input_files("#file", str(bad))
  page.wait_for_function("() => document.querySelector('#status').className === 'error'")
  assert "notes.png" in page.inner_text("#status")
  assert "cannot read image" in page.inner_text("#status")


def test_the_page_asked_nothing_of_other_hosts(page, server_url, requested):
  del page  # The requests of the tests above.
  assert requested and requested[0] == server_url
  assert [url for url in requested if not url.startswith(server_url)] == []  # No CDN, offline.
  assert {url[len(server_url):] for url in requested} == {"", "v1/models", "v1/recognize"}
