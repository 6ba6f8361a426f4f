"""CJK font faces: reserved and held-out families, collections and face indices, coverage.

The tests of installed faces skip when no CJK font is installed (Debian:
`apt-get install -y fonts-noto-cjk fonts-hanazono`); the family-name tests run anywhere, on
copies of matplotlib's DejaVu Sans renamed with fontTools.
"""

import pathlib

import pytest
from fontTools.ttLib import TTFont

from crnn_jax.synth import cjk_fonts
from crnn_jax.synth import fonts as fonts_lib
from crnn_jax.text import zh_charset
from crnn_jax.synth.cjk_fonts import FontFace

NO_CJK = "no CJK font installed (apt-get install -y fonts-noto-cjk fonts-hanazono)"
NOTO_SANS_TTC = pathlib.Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
HANAMIN_B = pathlib.Path("/usr/share/fonts/truetype/hanazono/HanaMinB.ttf")


@pytest.fixture(scope="module")
def training_faces():
  faces = cjk_fonts.discover_cjk_fonts()
  if not faces:
    pytest.skip(NO_CJK)
  return faces


def _dejavu() -> pathlib.Path:
  return next(p for p in fonts_lib.discover_fonts() if p.name == "DejaVuSans.ttf")


def _renamed_copy(path: pathlib.Path, family: str, chinese: str | None = None) -> pathlib.Path:
  """A copy of DejaVu Sans whose English family names are `family` (and, if given, with a
  Simplified Chinese family record `chinese`)."""
  font = TTFont(str(_dejavu()))
  names = font["name"]
  for record in list(names.names):
    if record.nameID in (1, 4, 16):
      names.setName(family, record.nameID, record.platformID, record.platEncID, record.langID)
  if chinese is not None:
    names.setName(chinese, 1, 3, 1, 0x0804)
  path.parent.mkdir(parents=True, exist_ok=True)
  font.save(str(path))
  font.close()
  return path


@pytest.mark.parametrize("name", [
    "AR PL UKai CN", "AR PL UMing TW MBE", "ar pl new sung", "AR PL KaitiM GB",
    "WenQuanYi Zen Hei", "WenQuanYi Micro Hei Mono", "wenquanyi-zenhei",
    "LXGW WenKai", "LXGW WenKai Mono TC", "lxgw_wenkai", "Smiley Sans", "Smiley Sans Oblique",
    "cwTeX Q Ming", "cwTeXQKai", "CWTEX Yen", "BabelStone Han", "babelstonehan",
    "文泉驿正黑", "文泉驛微米黑", "霞鹜文楷", "得意黑", "文鼎PL简中楷", "ukai", "uming", "wqy-microhei",
])
def test_reserved_families_are_rejected(name):
  assert cjk_fonts.is_reserved_family(name)


@pytest.mark.parametrize("name", [
    "Noto Sans CJK SC", "Noto Serif CJK SC", "HanaMinA", "Source Han Sans SC", "DejaVu Sans",
    "Roboto", "Smiley", "Arial",
])
def test_other_families_are_not_reserved(name):
  assert not cjk_fonts.is_reserved_family(name)


def test_the_reserved_and_held_out_constants():
  assert cjk_fonts.RESERVED_FAMILIES == (
      "AR PL", "WenQuanYi", "LXGW WenKai", "Smiley Sans", "cwTeX", "BabelStone Han")
  assert not cjk_fonts.is_reserved_family(cjk_fonts.HELD_OUT_FAMILY)
  assert cjk_fonts.is_held_out_family("HanaMinA") and cjk_fonts.is_held_out_family("hanamin b")
  assert not cjk_fonts.is_held_out_family("Noto Serif CJK SC")


def test_discovery_drops_reserved_files_by_any_name(tmp_path):
  plain = _renamed_copy(tmp_path / "fonts" / "Plain.ttf", "Plain Test Sans")
  by_english = _renamed_copy(tmp_path / "fonts" / "A.ttf", "WenQuanYi Zen Hei")
  by_chinese = _renamed_copy(tmp_path / "fonts" / "B.ttf", "Some Kai", chinese="霞鹜文楷")
  by_file = _renamed_copy(tmp_path / "fonts" / "ukai.ttf", "Unnamed Kai")
  held = _renamed_copy(tmp_path / "fonts" / "C.ttf", "HanaMin Test")
  for path in (by_english, by_chinese, by_file):
    assert cjk_fonts.is_reserved_face(FontFace(str(path.resolve()), 0)), path
  assert not cjk_fonts.is_reserved_face(FontFace(str(plain.resolve()), 0))
  kwargs = {"system_dirs": (), "min_hanzi": 0}
  found = {pathlib.Path(face.path) for face in
           cjk_fonts.discover_cjk_fonts([tmp_path / "fonts"], **kwargs)}
  held_out = {pathlib.Path(face.path) for face in
              cjk_fonts.held_out_fonts([tmp_path / "fonts"], **kwargs)}
  assert plain.resolve() in found
  assert not {p.resolve() for p in (by_english, by_chinese, by_file, held)} & found
  assert held_out == {held.resolve()}


def test_discovery_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="font directory"):
    cjk_fonts.discover_cjk_fonts([tmp_path / "missing"])
  with pytest.raises(ValueError, match="unknown region"):
    cjk_fonts.discover_cjk_fonts(regions=("XX",))
  with pytest.raises(ValueError, match="not a font file"):
    (tmp_path / "a.txt").write_text("x")
    cjk_fonts.font_faces(tmp_path / "a.txt")


def test_font_covers_checks_every_character():
  face = cjk_fonts.font_faces(_dejavu())[0]
  assert cjk_fonts.font_covers(face, "Hello World 123")
  assert not cjk_fonts.font_covers(face, "Hello 中文")
  assert cjk_fonts.covering_fonts("中", fonts=[face]) == []
  assert cjk_fonts.covering_fonts("ABC", fonts=[face]) == [face]


def test_training_faces_cover_the_charset(training_faces):
  level1 = zh_charset.LEVEL1_CHARS
  for face in training_faces:
    assert not cjk_fonts.is_reserved_face(face) and not cjk_fonts.is_held_out_face(face)
    assert cjk_fonts.coverage(face, level1) >= cjk_fonts.MIN_HANZI, face
    assert cjk_fonts.face_region(face) in (None, "SC"), face
  covering = cjk_fonts.covering_fonts(zh_charset.ZH_EN_CHARS)
  assert covering and set(covering) <= set(training_faces)
  for face in covering:
    assert cjk_fonts.font_covers(face, zh_charset.ZH_EN_CHARS)
  assert training_faces == sorted(training_faces)
  # A code point no CJK face has (Tangut): never offered.
  assert cjk_fonts.covering_fonts("中\U00017000") == []


def test_report_covers_every_found_face(training_faces):
  report = cjk_fonts.coverage_report()
  faces = [face for face, *_ in report]
  assert set(training_faces) <= set(faces)
  for face, family, covered, total in report:
    assert total == len(zh_charset.ZH_EN_CHARS) - 1  # The space is not counted.
    assert 0 < covered <= total and family == cjk_fonts.face_family(face)
    assert not cjk_fonts.is_reserved_family(family)


def test_collection_faces_and_pillow_index():
  if not NOTO_SANS_TTC.is_file():
    pytest.skip(f"{NOTO_SANS_TTC} is not installed (apt-get install -y fonts-noto-cjk)")
  faces = cjk_fonts.font_faces(NOTO_SANS_TTC)
  assert len(faces) == 10 and [face.index for face in faces] == list(range(10))
  families = [cjk_fonts.face_family(face) for face in faces]
  assert len(set(families)) == 10 and "Noto Sans CJK SC" in families
  for face, family in zip(faces, families):
    font = cjk_fonts.load_font(face, 24)
    assert font.getname()[0] == family  # Pillow opened the face of that index.
  sc = faces[families.index("Noto Sans CJK SC")]
  assert sc in cjk_fonts.discover_cjk_fonts()
  assert faces[families.index("Noto Sans CJK JP")] not in cjk_fonts.discover_cjk_fonts()
  assert faces[families.index("Noto Sans CJK JP")] in cjk_fonts.discover_cjk_fonts(
      regions=cjk_fonts.REGIONS)
  mask = cjk_fonts.load_font(sc, 24).getmask("中")
  assert mask.getbbox() is not None  # A real glyph is drawn, not an empty box.


def test_held_out_family_is_only_in_the_held_out_pool(training_faces):
  held_out = cjk_fonts.held_out_fonts()
  if not held_out:
    pytest.skip("the held-out family HanaMin is not installed (apt-get install fonts-hanazono)")
  assert all(cjk_fonts.is_held_out_face(face) for face in held_out)
  assert not set(held_out) & set(training_faces)
  assert all(cjk_fonts.font_covers(face, zh_charset.ZH_EN_CHARS) for face in held_out)
  if HANAMIN_B.is_file():  # Extension B only: no CJK face for the charset.
    face = FontFace(str(HANAMIN_B.resolve()), 0)
    assert face not in held_out and not cjk_fonts.font_covers(face, "中")
