"""Tests of crnn_jax/serve/app.py through Starlette's TestClient: the answers of /v1/recognize,
every refusal as a JSON 4xx naming the image, batching seen in /metrics, the 503 of a full
queue, the API key, readiness, the access log and the page."""

import base64
import json
import logging
import re
import threading
import time

import numpy as np
import pytest

from crnn_jax.serve import app as app_lib
from crnn_jax.serve import service as service_lib
import deploy_helpers
from serve.conftest import encode, word_images

testclient = pytest.importorskip("starlette.testclient")


def _files(images, names=None):
  names = names or [f"w{i}.png" for i in range(len(images))]
  return [("image", (name, data, "image/png")) for name, data in zip(names, images)]


def _metric(text: str, name: str, **labels) -> float:
  """The value of one sample of the Prometheus text (0 if absent)."""
  for line in text.splitlines():
    if line.startswith("#"):
      continue
    match = re.match(r"([a-z_]+)(\{[^}]*\})? (\S+)$", line)
    if not match or match.group(1) != name:
      continue
    found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
    if found == {k: str(v) for k, v in labels.items()}:
      return float(match.group(3))
  return 0.0


@pytest.fixture
def client_of(make_service):
  """`client_of(service=None, **create_app_kwargs)`: a TestClient with the app's lifespan run
  (service started), closed after the test."""
  clients = []

  def make(service=None, **kwargs):
    service = service or make_service()
    client = testclient.TestClient(app_lib.create_app(service, **kwargs))
    client.__enter__()
    clients.append(client)
    return client

  yield make
  for client in clients:
    client.__exit__(None, None, None)


def test_multipart_and_json_answer_each_image_in_the_order_sent(client_of, make_service,
                                                                 tiny_recognizer):
  service = make_service()
  client = client_of(service)
  images = word_images(5, [200, 40, 120, 64, 90])
  response = client.post("/v1/recognize", files=_files(images))
  assert response.status_code == 200
  body = response.json()
  assert body["model"] == "tiny" and body["decoder"] == "greedy"
  expected = tiny_recognizer.recognize(images)  # Bytes read as predict reads files.
  assert [r["text"] for r in body["results"]] == [p.text for p in expected]
  assert [r["confidence"] for r in body["results"]] == pytest.approx(
      [p.confidence for p in expected], abs=1e-6)
  assert all("chars" not in r for r in body["results"])
  as_json = client.post("/v1/recognize", json={
      "images": [base64.b64encode(d).decode() for d in images[:3]] +
                ["data:image/png;base64," + base64.b64encode(images[3]).decode()],
      "chars": True})
  assert as_json.status_code == 200
  results = as_json.json()["results"]
  assert [r["text"] for r in results] == [p.text for p in expected[:4]]
  for result, prediction in zip(results, expected):
    assert [c["char"] for c in result["chars"]] == list(result["text"])
    assert [x for c in result["chars"] for x in (c["x0"], c["x1"])] == pytest.approx(
        [x for s in prediction.spans for x in (s.x0, s.x1)], abs=0.01)
    assert result["path"] == prediction.path and result["width"] == prediction.input_width
  by_query = client.post("/v1/recognize?chars=true&decoder=beam", files=_files(images[:1]))
  assert by_query.json()["decoder"] == "beam" and "chars" in by_query.json()["results"][0]


def test_a_lexicon_request_reads_words_of_its_lexicon(client_of):
  client = client_of()
  response = client.post("/v1/recognize", files=_files(word_images(6, [80, 120])),
                         data={"decoder": "lexicon", "lexicon": "coffee tea\nwater"})
  assert response.status_code == 200, response.text
  assert {r["text"] for r in response.json()["results"]} <= {"coffee", "tea", "water"}


def _bad_requests():
  good = word_images(7, [64])[0]
  bomb = encode(np.zeros((1100, 1000), np.uint8))  # 1.1 M pixels, 2 kB: over the 1 M limit.
  truncated = encode(deploy_helpers.text_images(8, [300])[0])[:150]
  files = lambda *items: {"files": _files(list(items), [f"f{i}.png" for i in range(len(items))])}
  return {
      "not an image": (files(good, b"%PDF-1.4 not an image"), 400, "not_an_image", 1),
      "empty file": (files(b"", good), 400, "empty", 0),
      "truncated file": (files(good, good, truncated), 400, "truncated", 2),
      "decompression bomb": (files(bomb), 413, "too_many_pixels", 0),
      "too many images": (files(*[good] * 9), 413, "too_many_images", None),
      "body over the limit": ({"content": b"x" * ((1 << 20) + 1),
                               "headers": {"content-type": "application/json"}},
                              413, "body_too_large", None),
      "unknown model": ({**files(good), "data": {"model": "nope"}}, 400, "unknown_model", None),
      "unknown decoder": ({**files(good), "data": {"decoder": "ctc"}}, 400, "unknown_decoder",
                          None),
      "lexicon decoder without words": ({**files(good), "data": {"decoder": "lexicon"}}, 400,
                                        "missing_lexicon", None),
      "bad base64": ({"json": {"images": ["aGVsbG8=", "not base64!"]}}, 400, "bad_base64", 1),
      "base64 of garbage": ({"json": {"images": [base64.b64encode(b"hello").decode()]}}, 400,
                            "not_an_image", 0),
      "malformed JSON": ({"content": b"{\"images\": [", "headers": {
          "content-type": "application/json"}}, 400, "bad_json", None),
      "no image": ({"json": {"images": []}}, 400, "no_image", None),
      "unknown field": ({**files(good), "data": {"decoer": "beam"}}, 400, "unknown_field", None),
      "text instead of a file": ({"data": {"image": "hello"}, "files": [("x", ("x", b"", ""))]},
                                 400, "not_a_file", 0),
      "bad chars flag": ({**files(good), "data": {"chars": "maybe"}}, 400, "bad_field", None),
      "other content type": ({"content": good, "headers": {"content-type": "image/png"}}, 415,
                             "bad_content_type", None),
  }


@pytest.mark.parametrize("case", list(_bad_requests()))
def test_every_bad_input_answers_a_json_4xx_and_the_service_goes_on(client_of, case):
  client = client_of()
  kwargs, status, reason, image = _bad_requests()[case]
  response = client.post("/v1/recognize", **kwargs)
  assert response.status_code == status, response.text
  body = response.json()
  assert body["error"]
  if reason is not None:
    assert body["reason"] == reason
  if image is not None:
    assert body["image"] == image
    name = f"images[{image}]" if "json" in kwargs else f"image {image}"
    assert body["error"].startswith(name)
    if "files" in kwargs and reason != "not_a_file":
      assert body["error"].startswith(f"image {image} ('f{image}.png'): cannot read image")
  after = client.post("/v1/recognize", files=_files(word_images(9, [70])))
  assert after.status_code == 200 and len(after.json()["results"]) == 1


def test_a_chunked_body_over_the_limit_is_cut_off(client_of):
  client = client_of()

  def chunks():
    for _ in range(40):
      yield b"y" * 32768  # 1.25 MB in all, no Content-Length.

  response = client.post("/v1/recognize", content=chunks(),
                         headers={"content-type": "application/json"})
  assert response.status_code == 413 and response.json()["reason"] == "body_too_large"


def test_concurrent_requests_share_one_model_call(client_of, make_service, monkeypatch):
  entered, release = threading.Event(), threading.Event()
  original = service_lib.Service._run_batch  # pylint: disable=protected-access

  def held(self, key, jobs):  # The first batch waits until the 8 requests are queued.
    entered.set()
    assert release.wait(60)
    return original(self, key, jobs)

  monkeypatch.setattr(service_lib.Service, "_run_batch", held)
  service = make_service(batching=service_lib.Batching(max_batch=8, max_wait_ms=0,
                                                       max_queue=32))
  client = client_of(service)
  images = word_images(10, [40 + 10 * i for i in range(8)])
  results = [None] * 8

  def post(i):
    results[i] = client.post("/v1/recognize", files=_files([images[i]]))

  first = threading.Thread(target=lambda: client.post("/v1/recognize",
                                                      files=_files(images[:1])))
  first.start()
  assert entered.wait(60)
  threads = [threading.Thread(target=post, args=(i,)) for i in range(8)]
  for thread in threads:
    thread.start()
  deadline = time.monotonic() + 60
  while service.batcher.depth < 8 and time.monotonic() < deadline:
    time.sleep(0.01)
  release.set()
  for thread in [first] + threads:
    thread.join(60)
  assert [r.status_code for r in results] == [200] * 8
  alone = [client.post("/v1/recognize", files=_files([d])).json()["results"][0]["text"]
           for d in images]
  assert [r.json()["results"][0]["text"] for r in results] == alone  # Batching changes nothing.
  metrics = client.get("/metrics").text
  # The held first image ran alone, the 8 concurrent requests in one model call of 8 images,
  # then the 8 requests sent one after another in 8 calls of 1.
  assert _metric(metrics, "crnn_serve_batch_size_bucket", le="1.0") == 9
  assert _metric(metrics, "crnn_serve_batch_size_bucket", le="4.0") == 9
  assert _metric(metrics, "crnn_serve_batch_size_bucket", le="8.0") == 10
  assert _metric(metrics, "crnn_serve_batch_size_sum") == 17
  assert _metric(metrics, "crnn_serve_requests_total", route="/v1/recognize", method="POST",
                 status="200") == 17
  assert _metric(metrics, "crnn_serve_request_duration_seconds_count",
                 route="/v1/recognize") == 17
  assert _metric(metrics, "crnn_serve_images_total", model="tiny", decoder="greedy") == 17
  assert _metric(metrics, "crnn_serve_queue_depth") == 0
  assert _metric(metrics, "crnn_serve_requests_in_flight") == 1  # This scrape.
  assert _metric(metrics, "crnn_serve_ready") == 1


def test_a_full_queue_answers_503_with_retry_after(client_of, make_service, monkeypatch):
  entered, release = threading.Event(), threading.Event()
  original = service_lib.Service._run_batch  # pylint: disable=protected-access

  def held(self, key, jobs):
    entered.set()
    assert release.wait(30)
    return original(self, key, jobs)

  monkeypatch.setattr(service_lib.Service, "_run_batch", held)
  service = make_service(batching=service_lib.Batching(max_batch=2, max_wait_ms=0,
                                                       max_queue=4),
                         limits=service_lib.Limits(max_images=4))
  client = client_of(service)
  images = word_images(11, [50, 60, 70, 80, 90])
  answers = {}

  def post(name, batch):
    answers[name] = client.post("/v1/recognize", files=_files(batch))

  first = threading.Thread(target=post, args=("first", images[:1]))
  first.start()
  assert entered.wait(30)  # The worker holds the first image; the queue is empty.
  second = threading.Thread(target=post, args=("second", images[1:5]))
  second.start()
  deadline = time.monotonic() + 30
  while service.batcher.depth < 4 and time.monotonic() < deadline:
    time.sleep(0.01)
  assert service.batcher.depth == 4  # Full.
  refused = client.post("/v1/recognize", files=_files(images[:1]))
  assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
  assert refused.json()["reason"] == "busy"
  assert _metric(client.get("/metrics").text, "crnn_serve_queue_depth") == 4
  release.set()
  first.join(30)
  second.join(30)
  assert answers["first"].status_code == 200
  assert len(answers["second"].json()["results"]) == 4
  assert client.post("/v1/recognize", files=_files(images[:1])).status_code == 200


def test_the_api_key_guards_the_api_and_metrics(client_of, monkeypatch):
  compared = []
  real = app_lib.hmac.compare_digest
  monkeypatch.setattr(app_lib.hmac, "compare_digest",
                      lambda a, b: compared.append((a, b)) or real(a, b))
  client = client_of(api_key="s3cret")
  files = _files(word_images(12, [64]))
  for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
    response = client.post("/v1/recognize", files=files, headers=headers)
    assert response.status_code == 401 and response.json()["reason"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"
  assert client.get("/metrics").status_code == 401
  assert client.get("/v1/models").status_code == 401
  good = {"Authorization": "Bearer s3cret"}
  assert client.post("/v1/recognize", files=files, headers=good).status_code == 200
  assert client.get("/metrics", headers=good).status_code == 200
  assert (b"s3cret", b"s3cret") in compared and (b"wrong", b"s3cret") in compared
  for path in ("/", "/healthz", "/readyz"):  # Open: the page asks for the key itself.
    assert client.get(path).status_code == 200


def test_readiness_follows_the_warm_up_and_the_drain(make_service):
  service = make_service(warmup_max_width=64)
  client = testclient.TestClient(app_lib.create_app(service))
  ready = client.get("/readyz")  # No lifespan yet: nothing compiled.
  assert ready.status_code == 503 and ready.json()["programs"] == 2 * 2 * 2  # Kinds, rows, widths.
  assert client.get("/healthz").json() == {"status": "ok"}
  with client:
    deadline = time.monotonic() + 120
    while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
      time.sleep(0.05)
    assert client.get("/readyz").json() == {"ready": True, "warmed": 8, "programs": 8,
                                            "draining": False}
    service.drain()
    assert client.get("/readyz").status_code == 503
    refused = client.post("/v1/recognize", files=_files(word_images(13, [64])))
    assert refused.status_code == 503 and refused.json()["reason"] == "shutting_down"


def test_one_access_log_line_per_request(client_of, caplog):
  client = client_of()
  with caplog.at_level(logging.INFO, logger="crnn_jax.serve.access"):
    client.post("/v1/recognize", files=_files(word_images(14, [64])))
    client.post("/v1/recognize?model=zzz", files=_files(word_images(14, [64])))
    client.get("/healthz")
    client.get("/no/such/page")
  lines = [r.getMessage() for r in caplog.records if r.name == "crnn_jax.serve.access"]
  assert len(lines) == 4
  assert re.match(r'testclient:\d+ "POST /v1/recognize HTTP/1.1" 200 \d+B [\d.]+ms$', lines[0])
  assert '"POST /v1/recognize?model=zzz HTTP/1.1" 400' in lines[1]
  assert '"GET /healthz HTTP/1.1" 200' in lines[2] and '"GET /no/such/page HTTP/1.1" 404' in lines[3]
  metrics = client.get("/metrics").text
  assert _metric(metrics, "crnn_serve_requests_total", route="other", method="GET",
                 status="404") == 1


def test_unknown_routes_and_methods_answer_json(client_of):
  client = client_of()
  assert client.get("/nope").json()["error"] == "Not Found"
  response = client.get("/v1/recognize")
  assert response.status_code == 405 and "error" in response.json()


def test_models_lists_decoders_and_limits(client_of):
  info = client_of().get("/v1/models").json()
  assert info["default_model"] == "tiny"
  (model,) = info["models"]
  assert [d["name"] for d in model["decoders"]] == ["greedy", "beam", "lm", "lexicon"]
  assert model["default_decoder"] == "greedy"
  assert {d["name"]: d["needs_lexicon"] for d in model["decoders"]}["lexicon"] is True
  assert info["limits"]["max_images"] == 8 and info["batching"]["max_batch"] == 4


def test_the_page_is_self_contained(client_of):
  response = client_of().get("/")
  assert response.status_code == 200
  assert response.headers["content-type"].startswith("text/html")
  assert "default-src 'none'" in response.headers["content-security-policy"]
  page = response.text
  assert 'id="file"' in page and 'id="model"' in page and 'id="decoder"' in page
  # Offline: nothing is loaded from another host (no CDN, no fonts, no external scripts).
  assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", page)
  assert "<link" not in page and "@import" not in page and "url(" not in page
  assert json.dumps(app_lib.page_html()) == json.dumps(page)


def test_mangled_images_never_make_a_500(client_of):
  client = client_of()
  rng = np.random.default_rng(0)
  original = word_images(15, [150])[0]
  statuses = set()
  for trial in range(40):
    data = bytearray(original)
    if trial % 2:
      data = data[:int(rng.integers(1, len(data)))]  # Cut anywhere, header included.
    for _ in range(int(rng.integers(1, 8))):  # Flip bytes of the pixel data (after IHDR).
      data[int(rng.integers(min(40, len(data) - 1), len(data)))] = int(rng.integers(0, 256))
    response = client.post("/v1/recognize", files=_files([bytes(data)]))
    assert response.status_code in (200, 400), response.text  # A 500 raises in TestClient.
    statuses.add(response.status_code)
  assert 400 in statuses
  assert client.post("/v1/recognize", files=_files([original])).status_code == 200
