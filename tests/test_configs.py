"""The config files in configs/: each loads, and sets only fields that configs/default.py has.

A variant overrides fields by attribute assignment, which a ConfigDict accepts for any name: a
misspelt field (`warmup_step`) would add a field nobody reads and train with the default.
"""

import dataclasses
import importlib
import pathlib

import pytest

from configs import default

CONFIG_DIR = pathlib.Path(__file__).resolve().parent.parent / "configs"
VARIANTS = sorted(p.stem for p in CONFIG_DIR.glob("*.py") if p.stem not in ("__init__", "default"))


def _leaf_paths(config, prefix=""):
  paths = {}
  for key, value in config.items():
    if hasattr(value, "items"):
      paths.update(_leaf_paths(value, f"{prefix}{key}."))
    else:
      paths[prefix + key] = value
  return paths


def _changed_fields(before, after):
  """The leaf paths whose values differ between two `_leaf_paths` maps (or exist in one only)."""
  return {k for k in set(before) | set(after) if before.get(k) != after.get(k)}


def test_there_are_variants_to_check():
  assert {"quickstart", "synth_en", "synth_en_finetune", "tiny"} <= set(VARIANTS)


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_sets_only_fields_of_the_default(name):
  config = importlib.import_module(f"configs.{name}").get_config()
  paths = set(_leaf_paths(config))
  # scene_params, zh_mix and glyph are sets of overrides: their names are the fields of
  # scene.SceneParams, zh_text.ZhTextMix and glyph.GlyphParams.
  from crnn_jax.data import glyph, scene, zh_text  # pylint: disable=import-outside-toplevel
  override_sets = {"data.synthetic.scene_params.": scene.SceneParams,
                   "data.synthetic.zh_mix.": zh_text.ZhTextMix,
                   "data.synthetic.glyph.": glyph.GlyphParams}
  for prefix, fields_of in override_sets.items():
    names = {path[len(prefix):] for path in paths if path.startswith(prefix)}
    fields = {field.name for field in dataclasses.fields(fields_of)}
    assert names <= fields, f"configs/{name}.py: no such {prefix} fields {names - fields}"
  unknown = {path for path in paths if not path.startswith(tuple(override_sets))} - set(
      _leaf_paths(default.get_config()))
  assert not unknown, f"configs/{name}.py sets fields configs/default.py does not have: {unknown}"


def test_leaf_paths_sees_a_misspelt_nested_field():
  config = default.get_config()
  config.optimizer.warmup_step = 100
  assert "optimizer.warmup_step" in set(_leaf_paths(config)) - set(
      _leaf_paths(default.get_config()))


def test_finetune_stage_differs_from_the_first_only_where_its_docstring_says():
  from configs import synth_en, synth_en_finetune  # pylint: disable=import-outside-toplevel
  first = _leaf_paths(synth_en.get_config())
  second = _leaf_paths(synth_en_finetune.get_config())
  changed = _changed_fields(first, second)
  assert changed == {"init_weights", "data.train_seed", "num_train_steps",
                     "optimizer.learning_rate", "optimizer.warmup_steps", "eval_every_steps",
                     "checkpoint_every_steps"}
  assert second["optimizer.learning_rate"] < first["optimizer.learning_rate"]


def test_wide_stage_differs_from_the_second_in_fonts_seed_and_start_only():
  # pylint: disable-next=import-outside-toplevel
  from configs import synth_en, synth_en_finetune, synth_en_wide
  second = _leaf_paths(synth_en_finetune.get_config())
  third = _leaf_paths(synth_en_wide.get_config())
  changed = _changed_fields(second, third)
  assert changed == {"init_weights", "data.train_seed", "data.synthetic.font_pool"}
  assert third["data.synthetic.font_pool"] == "wide"
  # Each stage draws records the earlier ones never saw.
  assert len({c.get_config().data.train_seed for c in (synth_en, synth_en_finetune,
                                                        synth_en_wide)}) == 3


def test_second_scene_stage_differs_from_the_first_where_its_docstring_says():
  from configs import synth_en_scene, synth_en_scene2  # pylint: disable=import-outside-toplevel
  first = _leaf_paths(synth_en_scene.get_config())
  second = _leaf_paths(synth_en_scene2.get_config())
  changed = _changed_fields(first, second)
  assert changed == {"init_weights", "data.train_seed", "data.synthetic.strong_fraction",
                     "num_train_steps", "optimizer.learning_rate"}
  assert second["optimizer.learning_rate"] < first["optimizer.learning_rate"]
  assert second["data.synthetic.strong_fraction"] < first["data.synthetic.strong_fraction"]


def test_third_scene_stage_arms_differ_only_in_resizing():
  # pylint: disable-next=import-outside-toplevel
  from configs import synth_en_scene2, synth_en_scene3, synth_en_scene3_keep_ratio
  second = _leaf_paths(synth_en_scene2.get_config())
  fixed = _leaf_paths(synth_en_scene3.get_config())
  keep_ratio = _leaf_paths(synth_en_scene3_keep_ratio.get_config())
  changed = _changed_fields(second, fixed)
  assert changed == {"init_weights", "data.train_seed", "data.synthetic.price_fraction",
                     "num_train_steps", "optimizer.learning_rate", "optimizer.warmup_steps",
                     "eval_every_steps"}
  assert fixed["data.train_seed"] not in (second["data.train_seed"], 303)
  assert _changed_fields(fixed, keep_ratio) == {"data.resize"}
  assert keep_ratio["data.resize"] == "keep_ratio"


def test_fifth_scene_stage_differs_from_the_fourth_where_its_docstring_says():
  # pylint: disable-next=import-outside-toplevel
  from configs import synth_en_scene4, synth_en_scene5
  fourth = _leaf_paths(synth_en_scene4.get_config())
  fifth = _leaf_paths(synth_en_scene5.get_config())
  changed = _changed_fields(fourth, fifth)
  assert changed == {"init_weights", "data.train_seed", "data.synthetic.scene_params.bevel_prob",
                     "data.synthetic.scene_params.extrude_prob", "num_train_steps",
                     "optimizer.learning_rate", "eval_every_steps"}
  assert fifth["init_weights"] == "~/runs/synth_en_scene4"  # A workdir: its last checkpoint.
  assert fifth["optimizer.learning_rate"] < fourth["optimizer.learning_rate"]
  assert fifth["data.train_seed"] != fourth["data.train_seed"]


def test_seventh_scene_stage_changes_only_the_text_mix_and_schedule():
  # pylint: disable-next=import-outside-toplevel
  from configs import synth_en_scene5, synth_en_scene7
  fifth = _leaf_paths(synth_en_scene5.get_config())
  seventh = _leaf_paths(synth_en_scene7.get_config())
  changed = _changed_fields(fifth, seventh)
  assert changed == {"init_weights", "data.train_seed", "data.synthetic.word_fraction",
                     "data.synthetic.digit_fraction", "num_train_steps",
                     "optimizer.warmup_steps", "eval_every_steps"}
  assert seventh["init_weights"] == "~/runs/synth_en_scene5"  # Stage 5.
  def random_share(config):
    return 1 - config["data.synthetic.word_fraction"] - config["data.synthetic.digit_fraction"]
  assert 0 < random_share(seventh) < random_share(fifth)
  assert seventh["data.train_seed"] not in (fifth["data.train_seed"], 808)


def test_eighth_scene_stage_changes_only_the_font_pool_and_schedule():
  # pylint: disable-next=import-outside-toplevel
  from configs import synth_en_scene5, synth_en_scene7, synth_en_scene8
  from crnn_jax.data import fonts  # pylint: disable=import-outside-toplevel
  fifth = _leaf_paths(synth_en_scene5.get_config())
  eighth = _leaf_paths(synth_en_scene8.get_config())
  assert _changed_fields(fifth, eighth) == {
      "init_weights", "data.train_seed", "data.synthetic.font_pool", "num_train_steps",
      "optimizer.learning_rate", "checkpoint_every_steps",
      "eval_every_steps"}
  assert eighth["data.synthetic.font_pool"] == "signage"
  assert eighth["init_weights"] == "~/runs/synth_en_scene5"
  seeds = {fifth["data.train_seed"], synth_en_scene7.get_config().data.train_seed, 808}
  assert eighth["data.train_seed"] not in seeds
  # The docstring's apt-get line installs every package of the pool.
  docstring = " ".join(synth_en_scene8.__doc__.replace("\\\n", " ").split())
  for package, _ in fonts.SIGNAGE_DEBIAN_FONTS:
    assert f" {package} " in docstring, package


def test_ninth_scene_stage_adds_hollow_letters_to_the_eighth():
  # pylint: disable-next=import-outside-toplevel
  from configs import synth_en_scene8, synth_en_scene9
  eighth = _leaf_paths(synth_en_scene8.get_config())
  ninth = _leaf_paths(synth_en_scene9.get_config())
  assert _changed_fields(eighth, ninth) == {
      "init_weights", "data.train_seed", "data.synthetic.scene_params.border_prob",
      "data.synthetic.scene_params.hollow_prob", "num_train_steps", "optimizer.learning_rate",
      "eval_every_steps"}
  assert ninth["data.synthetic.scene_params.hollow_prob"] > 0
  assert ninth["data.train_seed"] != eighth["data.train_seed"]


def test_tenth_scene_stage_adds_inline_letters_to_the_ninth():
  # pylint: disable-next=import-outside-toplevel
  from configs import synth_en_scene9, synth_en_scene10
  ninth = _leaf_paths(synth_en_scene9.get_config())
  tenth = _leaf_paths(synth_en_scene10.get_config())
  assert _changed_fields(ninth, tenth) == {
      "init_weights", "data.train_seed", "data.synthetic.scene_params.inline_prob",
      "num_train_steps", "eval_every_steps"}
  assert tenth["init_weights"] == "scene_en"  # Shipped weights: runs on a fresh machine.
  assert tenth["data.synthetic.scene_params.inline_prob"] > 0
  assert tenth["data.train_seed"] not in {ninth["data.train_seed"], 1010}


def test_zh_en_cpu_stages_differ_only_in_their_start_data_and_schedule():
  from configs import zh_en_cpu  # pylint: disable=import-outside-toplevel
  first = _leaf_paths(zh_en_cpu.get_config())
  second = _leaf_paths(zh_en_cpu.get_config("stage=2"))
  changed = {path for path in first if first[path] != second[path]}
  assert changed == {"init_weights", "init_weights_mode", "data.train_seed",
                     "data.synthetic.strong_fraction", "optimizer.learning_rate"}
  assert second["init_weights_mode"] == "exact"
  assert first["model.conv_channels"] == second["model.conv_channels"]
  with pytest.raises(ValueError, match="stage=N"):
    zh_en_cpu.get_config("stage=9")
