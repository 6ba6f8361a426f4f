"""The mixed-line synthetic source: faces that cover each line, determinism, config dispatch."""

import numpy as np
import pytest

pytest.importorskip("jieba", reason="the zh text source needs jieba: pip install 'crnn-jax[zh]'")

from configs import zh_en  # pylint: disable=wrong-import-position
from crnn_jax.synth import cjk_fonts  # pylint: disable=wrong-import-position
from crnn_jax.data import pipeline  # pylint: disable=wrong-import-position
from crnn_jax.synth import grayscale as renderer  # pylint: disable=wrong-import-position
from crnn_jax.synth import sources as synthetic_sources  # pylint: disable=wrong-import-position
from crnn_jax.synth.params import RenderParams  # pylint: disable=wrong-import-position
from crnn_jax.text import zh_charset  # pylint: disable=wrong-import-position
from crnn_jax.synth import source_zh as zh_synthetic  # pylint: disable=wrong-import-position
from crnn_jax.text.charset import Charset  # pylint: disable=wrong-import-position

FACES = cjk_fonts.discover_cjk_fonts()
pytestmark = pytest.mark.skipif(
    not FACES, reason="no CJK training face: apt-get install fonts-noto-cjk")
CHARSET = Charset(zh_charset.ZH_EN_CHARS)


def _source(seed=7, num_records=50, faces=None, mix=None, **kwargs):
  params = RenderParams(**{"text": "zh_en", "max_length": 25, "augment": "light",
                           "zh_mix": mix or {}, **kwargs})
  return zh_synthetic.ZhSyntheticSource(charset=CHARSET, seed=seed, num_records=num_records,
                                        params=params, faces=faces)


def test_records_are_functions_of_seed_and_index_and_encode():
  source = _source()
  again = _source()
  other = _source(seed=8)
  for i in (0, 13, 49):
    a, b = source[i], again[i]
    assert a["text"] == b["text"] and np.array_equal(a["image"], b["image"])
    assert a["image"].dtype == np.uint8 and a["image"].ndim == 2
    assert CHARSET.can_encode(a["text"]) and 1 <= len(a["text"]) <= 25
  assert [source[i]["text"] for i in range(10)] != [other[i]["text"] for i in range(10)]
  assert source[-1]["text"] == source[49]["text"]
  with pytest.raises(IndexError):
    source[50]  # pylint: disable=pointless-statement


def test_every_line_is_drawn_in_a_face_that_has_all_its_characters():
  source = _source(num_records=200)
  for i in range(200):
    rng = np.random.default_rng(np.random.SeedSequence([source.seed, i]))
    text, face = source.line_and_face(rng)
    assert text == source[i]["text"]
    assert cjk_fonts.font_covers(face, text)
    assert not cjk_fonts.is_reserved_face(face) and not cjk_fonts.is_held_out_face(face)


def test_lines_no_face_covers_are_drawn_again(monkeypatch):
  only = FACES[:1]
  source = _source(faces=only)
  missing = "\u4e00"  # 一, a level-1 hanzi: pretend the face lacks it.
  codes = cjk_fonts.face_codepoints(only[0]) - {ord(missing)}
  monkeypatch.setattr(zh_synthetic, "_codepoints", lambda face: codes)
  for i in range(30):
    assert missing not in source[i]["text"]
  monkeypatch.setattr(zh_synthetic, "_codepoints", lambda face: frozenset())
  with pytest.raises(ValueError, match="no face of the pool"):
    source[0]  # pylint: disable=pointless-statement


def test_invalid_arguments_are_refused(monkeypatch):
  with pytest.raises(ValueError, match="lacks"):
    zh_synthetic.ZhSyntheticSource(charset=Charset("abc"), seed=0, num_records=1)
  with pytest.raises(ValueError, match="ZhTextMix field"):
    _source(mix={"chineese": 1.0})
  with pytest.raises(ValueError, match="augment"):
    _source(augment="heavy")
  with pytest.raises(ValueError, match="scene_params"):
    _source(augment="strong", scene_params={"bevel_prob": 0.1})
  with pytest.raises(ValueError, match="no CJK face"):
    _source(faces=[])
  # A face of a reserved family (as AR PL UKai would be) given explicitly is refused.
  monkeypatch.setattr(cjk_fonts, "is_reserved_face", lambda face: face == FACES[0])
  with pytest.raises(ValueError, match="reserved"):
    _source(faces=FACES[:2])


def test_mix_overrides_reach_the_lines():
  kinds = ("chinese", "english", "number", "date", "price", "unit", "code", "hanzi")
  english_only = {k: float(k == "english") for k in kinds} | {"punctuation": 0.0,
                                                                 "brackets": 0.0}
  source = _source(mix=english_only, num_records=20)
  assert all(source[i]["text"].isascii() for i in range(20))
  assert not all(_source(num_records=20)[i]["text"].isascii() for i in range(20))


def test_the_face_index_of_a_collection_is_drawn():
  collection = next((f for f in FACES if f.index > 0), None)
  if collection is None:
    pytest.skip("no .ttc collection face in the pool")
  # Noto CJK's faces of one file differ in regional glyphs (and metrics).
  first = renderer.render_text("骨直写", collection.path, None, font_size=40, augment="none",
                               font_index=0)
  chosen = renderer.render_text("骨直写", collection.path, None, font_size=40, augment="none",
                                font_index=collection.index)
  assert first.shape != chosen.shape or not np.array_equal(first, chosen)


def test_config_text_kind_picks_the_source():
  config = zh_en.get_config()
  config.data.synthetic.augment = "light"
  charset = Charset.from_config(config.text)
  assert charset.chars == zh_charset.ZH_EN_CHARS and not charset.fold_case
  source = synthetic_sources.source_from_config(config.data, charset, seed=1, num_records=4)
  assert isinstance(source, zh_synthetic.ZhSyntheticSource)
  config.data.synthetic.text = "klingon"
  with pytest.raises(ValueError, match="text must be one of"):
    synthetic_sources.source_from_config(config.data, charset, seed=1, num_records=4)


def test_eval_batches_of_the_zh_config_hold_encoded_mixed_lines():
  config = zh_en.get_config()
  config.data.synthetic.augment = "light"
  config.eval_batch_size = 8
  charset = Charset.from_config(config.text)
  batch = next(pipeline.eval_batches(config, charset, "eval", num_records=8))
  assert batch["image"].shape[0] == 8 and batch["image"].shape[1] == 32
  assert batch["image"].shape[2] <= config.data.max_width
  texts = [charset.decode(row[:n]) for row, n in zip(batch["label"], batch["label_length"])]
  source = synthetic_sources.source_from_config(config.data, charset, seed=config.data.eval_seed,
                                        num_records=8)
  assert texts == [source[i]["text"] for i in range(8)]
  assert any(any(c in zh_charset.LEVEL1_CHARS for c in t) for t in texts)


def test_glyph_effects_change_print_records_only_and_keep_every_other_draw():
  plain = _source(augment="strong", num_records=20)
  effects = _source(augment="strong", num_records=20,
                    glyph={"weight_prob": 1.0, "weight_range": (1.5, 1.5)})
  darker = 0
  for i in range(20):
    a, b = plain[i], effects[i]
    assert a["text"] == b["text"]  # Text and face come from the record's main stream.
    # Same geometry (the weight effect keeps the mask's size) and colours: heavier strokes
    # move the image's mean towards the text's gray level.
    assert a["image"].shape == b["image"].shape
    darker += not np.array_equal(a["image"], b["image"])
  assert darker == 20
  with pytest.raises(ValueError, match="'strong' level"):
    _source(augment="light", glyph={"weight_prob": 1.0})
  with pytest.raises(ValueError, match="unknown glyph effect"):
    _source(augment="strong", glyph={"slant": 1.0})


def test_family_sampling_draws_families_evenly():
  faces = cjk_fonts.discover_cjk_fonts(min_hanzi=0)
  families = {cjk_fonts.face_family(f) for f in faces}
  if len(families) < 2:
    pytest.skip("one CJK family installed")
  by_face = _source(faces=faces, face_sampling="face", num_records=300)
  by_family = _source(faces=faces, face_sampling="family", num_records=300)

  def family_counts(source):
    counts = {}
    for i in range(300):
      rng = np.random.default_rng(np.random.SeedSequence([source.seed, i]))
      _, face = source.line_and_face(rng)
      counts[cjk_fonts.face_family(face)] = counts.get(cjk_fonts.face_family(face), 0) + 1
    return counts

  per_family = family_counts(by_family)
  per_face = family_counts(by_face)
  # The family with most files is drawn less often when families are drawn first.
  biggest = max(families, key=lambda name: sum(cjk_fonts.face_family(f) == name for f in faces))
  files = sum(cjk_fonts.face_family(f) == biggest for f in faces)
  if files > 1:
    assert per_family.get(biggest, 0) < per_face.get(biggest, 0)
  with pytest.raises(ValueError, match="face_sampling"):
    _source(face_sampling="weight")


def test_min_hanzi_admits_partial_faces_only_for_lines_they_cover():
  faces = cjk_fonts.discover_cjk_fonts(min_hanzi=1800)
  partial = [f for f in faces if cjk_fonts.coverage(f, zh_charset.LEVEL1_CHARS) < 3755]
  if not partial:
    pytest.skip("no Japanese face installed (fonts-ipafont, fonts-vlgothic, ...)")
  source = _source(faces=partial[:1] + FACES[:1], num_records=100)
  for i in range(100):
    rng = np.random.default_rng(np.random.SeedSequence([source.seed, i]))
    text, face = source.line_and_face(rng)
    assert cjk_fonts.font_covers(face, text)


def test_faces_freetype_cannot_draw_are_left_out(monkeypatch):
  face = FACES[0]
  cjk_fonts.renders.cache_clear()

  def broken(face_, size):
    raise OSError("invalid opcode")

  monkeypatch.setattr(cjk_fonts, "load_font", broken)
  assert not cjk_fonts.renders(face)
  cjk_fonts.renders.cache_clear()
  monkeypatch.undo()
  assert cjk_fonts.renders(face)
