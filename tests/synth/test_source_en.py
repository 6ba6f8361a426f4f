"""Tests of the synthetic text-line source."""

import functools
import importlib.util
import multiprocessing
import operator
import pathlib
import pickle
import string

import numpy as np
import pytest

from crnn_jax.synth import fonts
from crnn_jax.synth import grayscale
from crnn_jax.synth import renderer
from crnn_jax.synth.params import RenderParams
from crnn_jax.text.charset import Charset
from crnn_jax.synth.source_en import SyntheticTextSource

CHARS_62 = string.digits + string.ascii_lowercase + string.ascii_uppercase
CHARS_36 = string.digits + string.ascii_lowercase
REPO = pathlib.Path(__file__).resolve().parents[2]


def _source(chars=CHARS_62, fold_case=False, seed=1, num_records=500, **kwargs):
  return SyntheticTextSource(charset=Charset(chars, fold_case=fold_case), seed=seed,
                             num_records=num_records, params=RenderParams(**kwargs))


@pytest.fixture(scope="module")
def src62():
  return _source()


def _assert_same(a, b):
  assert a["text"] == b["text"]
  np.testing.assert_array_equal(a["image"], b["image"])


def test_records_are_images_and_labels(src62):
  assert len(src62) == 500
  for i in range(30):
    record = src62[i]
    assert set(record) == {"image", "text"}
    image = record["image"]
    assert image.dtype == np.uint8 and image.ndim == 2
    assert image.shape[0] >= 16 and image.shape[1] >= 4
    assert int(image.max()) - int(image.min()) >= 50  # Non-constant, with text contrast.
    assert isinstance(record["text"], str)


def test_same_index_same_record_in_any_order(src62):
  indices = [17, 3, 250, 3, 0, 499]
  forward = [src62[i] for i in indices]
  backward = [src62[i] for i in reversed(indices)][::-1]
  for a, b in zip(forward, backward):
    _assert_same(a, b)
  _assert_same(forward[1], forward[3])
  # A new instance with the same seed gives the same records; numpy integers index too.
  again = _source()
  _assert_same(again[np.int64(250)], forward[2])
  _assert_same(src62[-1], forward[-1])


def test_same_records_after_pickling_in_a_spawned_process(src62):
  indices = [42, 7]
  expected = [src62[i] for i in indices]
  restored = pickle.loads(pickle.dumps(src62))
  _assert_same(restored[42], expected[0])
  context = multiprocessing.get_context("spawn")
  with context.Pool(processes=1) as pool:
    got = pool.map(functools.partial(operator.getitem, src62), indices)
  for a, b in zip(got, expected):
    _assert_same(a, b)


def test_different_seeds_give_different_records(src62):
  other = _source(seed=2)
  texts_1 = [src62[i]["text"] for i in range(20)]
  texts_2 = [other[i]["text"] for i in range(20)]
  assert sum(a != b for a, b in zip(texts_1, texts_2)) >= 15


def test_index_out_of_range():
  source = _source(num_records=5)
  with pytest.raises(IndexError):
    source[5]
  with pytest.raises(IndexError):
    source[-6]


def test_labels_have_the_configured_lengths_and_are_encodable():
  charset = Charset(CHARS_62)
  source = SyntheticTextSource(charset=charset, seed=4, num_records=200,
                               params=RenderParams(min_length=3, max_length=6, augment="none"))
  texts = [source[i]["text"] for i in range(150)]
  lengths = [len(t) for t in texts]
  assert min(lengths) >= 3 and max(lengths) <= 6
  assert set(lengths) == {3, 4, 5, 6}
  assert all(charset.can_encode(t) for t in texts)
  words = set(source.words)
  assert all(3 <= len(w) <= 6 for w in source.words)
  n_words = sum(t.lower() in words for t in texts)
  assert 0.5 * 150 < n_words < 0.95 * 150  # word_fraction = 0.7; random strings rarely words.


def test_case_mix_with_both_cases():
  source = _source(word_fraction=1.0, augment="none")
  texts = [source[i]["text"] for i in range(120)]
  lower = sum(t.islower() for t in texts)
  upper = sum(t.isupper() and len(t) > 1 for t in texts)
  capitalized = sum(t[0].isupper() and t[1:].islower() for t in texts if len(t) > 1)
  assert lower > 35 and upper > 15 and capitalized > 15, (lower, upper, capitalized)
  # Random strings mix both cases too.
  strings = _source(word_fraction=0.0, augment="none")
  chars = set("".join(strings[i]["text"] for i in range(40)))
  assert chars & set(string.ascii_lowercase) and chars & set(string.ascii_uppercase)
  assert chars & set(string.digits)


def test_digit_strings_share():
  source = _source(word_fraction=0.5, digit_fraction=0.3, augment="none")
  texts = [source[i]["text"] for i in range(300)]
  words = set(source.words)
  n_digits = sum(t.isdigit() for t in texts)
  n_words = sum(t.lower() in words for t in texts)
  # Random 62-character strings are all digits with probability (10/62)^len: rare.
  assert 0.2 * 300 < n_digits < 0.4 * 300, n_digits
  assert 0.4 * 300 < n_words < 0.6 * 300, n_words
  # Without digits in the charset the share goes to random strings.
  letters = _source(chars=string.ascii_lowercase, word_fraction=0.0, digit_fraction=1.0,
                    augment="none")
  assert all(letters[i]["text"].isalpha() for i in range(20))


def test_digit_fraction_checked():
  with pytest.raises(ValueError, match="word_fraction \\+ digit_fraction"):
    _source(word_fraction=0.8, digit_fraction=0.3)


def test_lower_case_charset_gives_lower_case_labels():
  charset = Charset(CHARS_36, fold_case=True)
  source = SyntheticTextSource(charset=charset, seed=1, num_records=100,
                               params=RenderParams(augment="none"))
  texts = [source[i]["text"] for i in range(100)]
  assert all(t == t.lower() for t in texts)
  assert set("".join(texts)) <= set(CHARS_36)


def test_upper_case_only_charset_gives_upper_case_words():
  source = _source(chars=string.ascii_uppercase, word_fraction=1.0, augment="none")
  texts = [source[i]["text"] for i in range(30)]
  assert all(t.isupper() for t in texts)


def test_fonts_cover_the_charset():
  paths = fonts.discover_fonts()
  source = _source(chars="abcж", augment="none")
  assert source.fonts and len(source.fonts) < len(paths)
  covering = {str(p) for p in fonts.fonts_covering(paths, "abcж")}
  assert set(source.fonts) == covering
  with pytest.raises(ValueError, match="U\\+4E2D"):
    _source(chars="ab中")


def test_extra_fonts_dir_joins_the_pool(tmp_path):
  dejavu = next(p for p in fonts.discover_fonts() if p.name == "DejaVuSans.ttf")
  (tmp_path / "Extra.ttf").write_bytes(dejavu.read_bytes())
  source = _source(fonts_dir=str(tmp_path), augment="none")
  assert str((tmp_path / "Extra.ttf").resolve()) in source.fonts
  with pytest.raises(FileNotFoundError):
    _source(fonts_dir=str(tmp_path / "missing"))


@pytest.mark.parametrize("augment", ["none", "light", "strong"])
def test_every_augment_level(augment):
  source = _source(augment=augment, num_records=10)
  images = [source[i]["image"] for i in range(10)]
  assert all(im.dtype == np.uint8 and im.ndim == 2 for im in images)
  if augment == "none":
    assert all(im.max() == 255 and im.min() < 60 for im in images)
  else:
    assert len({int(np.median(im)) for im in images}) > 3  # Random gray levels.


def test_invalid_arguments():
  with pytest.raises(ValueError):
    _source(min_length=0)
  with pytest.raises(ValueError):
    _source(min_length=5, max_length=4)
  with pytest.raises(ValueError):
    _source(lower_fraction=0.8, upper_fraction=0.4)
  with pytest.raises(ValueError):
    _source(augment="extreme")
  with pytest.raises(ValueError):
    _source(seed=-1)


def test_from_config():
  spec = importlib.util.spec_from_file_location("default_config", REPO / "configs" / "default.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  config.data.synthetic.augment = "light"
  config.data.synthetic.max_length = 5
  charset = Charset.from_config(config.text)
  source = SyntheticTextSource.from_config(config.data, charset, seed=config.data.eval_seed,
                                           num_records=20)
  assert len(source) == 20
  assert source.params.augment == "light" and source.params.max_length == 5
  assert source.params.font_size == 40
  assert source.seed == config.data.eval_seed
  assert all(len(source[i]["text"]) <= 5 for i in range(20))


def test_font_pool_from_config():
  from configs import default  # pylint: disable=import-outside-toplevel
  config = default.get_config()
  charset = Charset(CHARS_62, fold_case=False)
  standard = SyntheticTextSource.from_config(config.data, charset, seed=1, num_records=5)
  config.data.synthetic.font_pool = "extended"
  extended = SyntheticTextSource.from_config(config.data, charset, seed=1, num_records=5)
  assert set(standard.fonts) < set(extended.fonts)
  assert {pathlib.Path(f).name for f in set(extended.fonts) - set(standard.fonts)} == set(
      fonts.EXTENDED_MATPLOTLIB_FONTS)


# --- The scene level, the wordfreq vocabulary and drawn-only punctuation. ----------------------


@pytest.fixture(scope="module")
def scene_source():
  return _source(augment="scene", vocabulary="wordfreq", strong_fraction=0.3,
                 punctuation_fraction=0.5, builtin_backgrounds=False, num_records=200)


def test_scene_records_are_colour_or_strong_gray(scene_source):
  colour = gray = 0
  for i in range(40):
    image = scene_source[i]["image"]
    assert image.dtype == np.uint8 and image.ndim in (2, 3)
    colour += image.ndim == 3
    gray += image.ndim == 2
  assert 15 <= colour <= 38 and gray >= 2  # strong_fraction 0.3 of 40.
  _assert_same(scene_source[7], _source(
      augment="scene", vocabulary="wordfreq", strong_fraction=0.3, punctuation_fraction=0.5,
      builtin_backgrounds=False, num_records=200)[7])


def test_scene_labels_are_encodable_and_punctuation_is_drawn_not_labelled(scene_source,
                                                                           monkeypatch):
  from crnn_jax.synth import scene  # pylint: disable=import-outside-toplevel
  drawn = []
  real = scene.render_scene
  monkeypatch.setattr(scene, "render_scene",
                      lambda text, *a, **k: drawn.append(text) or real(text, *a, **k))
  charset = scene_source.charset
  labels = []
  for i in range(60):
    labels.append(scene_source[i]["text"])
  assert all(charset.can_encode(t) and t for t in labels)
  assert drawn  # Some scene records; their drawn text is the label plus punctuation.
  punctuated = [d for d in drawn if any(c not in charset.chars for c in d)]
  assert len(punctuated) >= 5
  stripped = {"".join(c for c in d if c in charset.chars) for d in drawn}
  assert stripped <= set(labels)


def test_prices_draw_a_currency_sign_the_label_leaves_out(monkeypatch):
  from crnn_jax.synth import text_en  # pylint: disable=import-outside-toplevel
  drawn = []
  real = grayscale.render_text
  monkeypatch.setattr(grayscale, "render_text",
                      lambda text, *a, **k: drawn.append(text) or real(text, *a, **k))
  source = _source(word_fraction=0.0, digit_fraction=1.0, price_fraction=0.7, augment="none",
                   max_length=12)
  labels = [source[i]["text"] for i in range(60)]
  assert all(label.isdigit() for label in labels)
  prices = [(d, label) for d, label in zip(drawn, labels) if d != label]
  assert 25 <= len(prices) <= 55  # price_fraction 0.7 of 60.
  signs = set(text_en.CURRENCY_SIGNS)
  for text, label in prices:
    assert len(label) <= 6
    assert sum(c in signs for c in text) == 1, text
    assert text.replace(".", "").strip("".join(signs)) == label
  assert any("." in text for text, _ in prices) and any(t[0] == "$" for t, _ in prices)
  # Labels longer than 6 digits are drawn only without a sign.
  assert any(len(label) > 6 for d, label in zip(drawn, labels) if d == label)
  with pytest.raises(ValueError, match="price_fraction"):
    _source(price_fraction=2.0)


def test_scene_arguments_are_checked():
  with pytest.raises(ValueError, match="vocabulary"):
    _source(vocabulary="oxford")
  with pytest.raises(ValueError, match="strong_fraction"):
    _source(augment="scene", strong_fraction=1.5)
  with pytest.raises(ValueError, match="punctuation_fraction"):
    _source(punctuation_fraction=-0.1)


def test_scene_config_builds_its_source():
  from configs import scene_en  # pylint: disable=import-outside-toplevel
  config = scene_en.get_config("stage=1")
  charset = Charset.from_config(config.text)
  source = SyntheticTextSource.from_config(config.data, charset, seed=1, num_records=8)
  assert source.params.augment == "scene" and source.params.vocabulary == "wordfreq"
  assert source.params.font_pool == "scene" and source.params.strong_fraction == 0.25
  assert len(source.fonts) > 300
  assert all(charset.can_encode(source[i]["text"]) for i in range(8))


def test_scene_params_reach_the_renderer(monkeypatch):
  from crnn_jax.synth import scene  # pylint: disable=import-outside-toplevel
  seen = []
  real = scene.render_scene

  def spy(*args, params=scene.DEFAULT_PARAMS, **kwargs):
    seen.append(params)
    return real(*args, params=params, **kwargs)

  monkeypatch.setattr(scene, "render_scene", spy)
  source = _source(augment="scene", scene_params={"bevel_prob": 0.5}, builtin_backgrounds=False)
  for i in range(4):
    source[i]
  assert seen and all(p.bevel_prob == 0.5 for p in seen)
  with pytest.raises(ValueError, match="scene_params apply to augment='scene' only"):
    _source(augment="strong", scene_params={"bevel_prob": 0.5})
  with pytest.raises(ValueError, match="unknown scene parameter"):
    _source(augment="scene", scene_params={"bevel": 0.5}, builtin_backgrounds=False)


def test_stage4_config_changes_the_scene_params():
  from configs import scene_en  # pylint: disable=import-outside-toplevel
  config = scene_en.get_config("stage=4")
  source = SyntheticTextSource.from_config(config.data, Charset.from_config(config.text), seed=1,
                                           num_records=4)
  assert source.params.scene_params.bevel_prob == 0.15 and source.params.scene_params.wide_tracking == (0.12, 1.1)


def test_a_rendering_error_draws_the_effects_again_and_keeps_the_record_deterministic(
    monkeypatch, caplog):
  source = _source(augment="strong")
  real = grayscale.render_text
  calls = []

  def flaky(text, font, streams, **kwargs):  # The first draw of every record raises.
    calls.append(text)
    if len(calls) % 2:
      raise ValueError("a bevel on a one-pixel crop")
    return real(text, font, streams, **kwargs)

  monkeypatch.setattr(grayscale, "render_text", flaky)
  record = source[3]
  assert "record 3 of seed" in caplog.text and "a bevel on a one-pixel crop" in caplog.text
  again = source[3]
  assert len(calls) == 4 and record["image"].ndim == 2 and record["text"]
  _assert_same(record, again)

  def broken(*args, **kwargs):
    raise ValueError("always")

  monkeypatch.setattr(grayscale, "render_text", broken)
  with pytest.raises(RuntimeError, match=f"record 5 of seed {source.seed}: rendering .* failed "
                     f"{renderer.RENDER_ATTEMPTS} times; last error: ValueError"):
    source[5]
