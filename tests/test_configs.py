"""The config files in configs/: each loads, and sets only fields that configs/default.py has.

A variant overrides fields by attribute assignment, which a ConfigDict accepts for any name: a
misspelt field (`warmup_step`) would add a field nobody reads and train with the default.

The staged recipes (configs/synth_en.py, configs/scene_en.py) replaced one file per stage
(configs/synth_en_finetune.py, synth_en_wide.py, synth_en_scene.py ... synth_en_scene10.py).
tests/configs_old_stages.json holds what each of those files resolved to (the fields that
differ from configs/default.py), written from them before they were deleted: every stage of
the recipes resolves to it, but for `init_weights`, which now names stable weights.
"""

import dataclasses
import importlib
import json
import pathlib
import re

import pytest

from configs import default

CONFIG_DIR = pathlib.Path(__file__).resolve().parent.parent / "configs"
OLD_STAGES = pathlib.Path(__file__).resolve().parent / "configs_old_stages.json"
VARIANTS = sorted(p.stem for p in CONFIG_DIR.glob("*.py") if p.stem not in ("__init__", "default"))


def _configs():
  """(file stem, get_config argument) for every config file and each stage of a staged one."""
  for name in VARIANTS:
    stages = getattr(importlib.import_module(f"configs.{name}"), "STAGES", None)
    yield from ((name, f"stage={stage}") for stage in stages) if stages else [(name, None)]


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
  assert {"quickstart", "synth_en", "scene_en", "tiny"} <= set(VARIANTS)


@pytest.mark.parametrize("name,arg", list(_configs()))
def test_variant_sets_only_fields_of_the_default(name, arg):
  module = importlib.import_module(f"configs.{name}")
  config = module.get_config(arg) if arg else module.get_config()
  paths = set(_leaf_paths(config))
  # scene_params, zh_mix and glyph are sets of overrides: their names are the fields of
  # scene.SceneParams, zh_text.ZhTextMix and glyph.GlyphParams.
  from crnn_jax.synth import glyph, scene, text_zh as zh_text  # pylint: disable=import-outside-toplevel
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


def _stage_configs(recipe):
  module = importlib.import_module(f"configs.{recipe}")
  return {stage: _leaf_paths(module.get_config(f"stage={stage}")) for stage in module.STAGES}


@pytest.mark.parametrize("recipe", ["synth_en", "scene_en"])
def test_every_stage_resolves_to_its_old_stage_config(recipe):
  old = json.loads(OLD_STAGES.read_text())[recipe]
  base = _leaf_paths(json.loads(default.get_config().to_json()))
  stages = _stage_configs(recipe)
  assert set(stages) == set(old)
  for stage, config in stages.items():
    expected = {**base, **old[stage]["overrides"]}
    new = _leaf_paths(json.loads(json.dumps(config)))  # Tuples as JSON lists.
    changed = _changed_fields(expected, new)
    assert changed <= {"init_weights"}, (stage, {k: (expected.get(k), new.get(k))
                                                 for k in changed})


def test_stages_start_from_stable_weights():
  from configs import scene_en, synth_en  # pylint: disable=import-outside-toplevel
  starts = {stage: c["init_weights"] for stage, c in _stage_configs("synth_en").items()}
  assert starts == {"1": "", "2": "runs/synth_en/stage1", "3": "runs/synth_en/stage2"}
  starts = {stage: c["init_weights"] for stage, c in _stage_configs("scene_en").items()}
  assert starts == {"1": "synth_en@sha256:5b88ce6888c9", "2": "runs/scene_en/stage1",
                    "3_fixed": "runs/scene_en/stage2", "3": "runs/scene_en/stage2",
                    "4": "runs/scene_en/stage3", "5": "runs/scene_en/stage4",
                    "6": "runs/scene_en/stage5", "7": "runs/scene_en/stage5",
                    "8": "runs/scene_en/stage5", "9": "runs/scene_en/stage8",
                    "10": "scene_en@sha256:eb730d730026"}
  # The shipped stages are the defaults, and the shipped chain draws new records each stage.
  assert synth_en.get_config().to_dict() == synth_en.get_config("stage=3").to_dict()
  assert scene_en.get_config().to_dict() == scene_en.get_config("stage=9").to_dict()
  seeds = [scene_en.get_config(f"stage={s}").data.train_seed for s in scene_en.SHIPPED]
  assert len(set(seeds)) == len(seeds)
  with pytest.raises(ValueError, match="stage=N"):
    scene_en.get_config("stage=11")
  with pytest.raises(ValueError, match="stage=N"):
    synth_en.get_config("steps=3")


@pytest.mark.parametrize("recipe", ["synth_en", "scene_en"])
def test_the_docstring_gives_the_command_of_every_stage(recipe):
  module = importlib.import_module(f"configs.{recipe}")
  docstring = " ".join(module.__doc__.replace("\\\n", " ").split())
  for stage in module.STAGES:
    assert (f"python -m train.main --config configs/{recipe}.py:stage={stage} "
            f"--workdir runs/{recipe}/stage{stage}") in docstring, stage
  assert re.search(rf"--checkpoint runs/{recipe}/stage\d+ --format weights "
                   rf"--output crnn_jax/weights/{recipe}", docstring)


def test_scene_en_docstring_installs_every_signage_font():
  from configs import scene_en  # pylint: disable=import-outside-toplevel
  from crnn_jax.synth import fonts  # pylint: disable=import-outside-toplevel
  docstring = " ".join(scene_en.__doc__.replace("\\\n", " ").split())
  for package, _ in fonts.SIGNAGE_DEBIAN_FONTS:
    assert f" {package} " in docstring, package


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
  # Stages 5 and 6 start from releases pinned by hash; the newest is the shipped zh_en.
  assert zh_en_cpu.get_config("stage=5").init_weights == "zh_en@sha256:8df8242b64fc"
  from crnn_jax import pretrained  # pylint: disable=import-outside-toplevel
  newest = zh_en_cpu.get_config("stage=6").init_weights
  name, digest = pretrained.split_pin(newest)
  assert pretrained.info(name)["variables_sha256"].startswith(digest)


def test_scene_en_tps_is_the_shipped_scene_en_with_a_rectifier_and_more_bent_words():
  from configs import scene_en, scene_en_tps  # pylint: disable=import-outside-toplevel
  from crnn_jax.synth import params  # pylint: disable=import-outside-toplevel
  config = scene_en_tps.get_config()
  assert config.model.rectifier == "tps"
  assert config.init_weights == scene_en.SCENE_EN_STAGE9 == "scene_en@sha256:eb730d730026"
  assert config.init_weights_mode == "partial"
  # Stage 9's recipe (the shipped one) but for the start, the geometry and the schedule.
  shipped = _leaf_paths(scene_en.get_config(f"stage={scene_en.SHIPPED_STAGE}"))
  changed = _changed_fields(shipped, _leaf_paths(config))
  geometry = {f"data.synthetic.scene_params.{name}" for name in (
      "curve_prob", "curve_range", "perspective_prob", "corner_jitter", "rotation_deg",
      "shear_range")}
  assert changed == {"init_weights", "init_weights_mode", "model.rectifier", "data.train_seed",
                     "num_train_steps", "optimizer.warmup_steps", "eval_every_steps",
                     "checkpoint_every_steps"} | geometry
  # More curved and perspective words than stage 10 (and every shipped stage) drew.
  tps = params.scene_params(config.data.synthetic.scene_params)
  stage10 = params.scene_params(scene_en.get_config("stage=10").data.synthetic.scene_params)
  assert tps.curve_prob >= 2 * stage10.curve_prob and tps.curve_range > stage10.curve_range
  assert tps.perspective_prob > stage10.perspective_prob
  assert tps.corner_jitter > stage10.corner_jitter and tps.rotation_deg > stage10.rotation_deg
  # Records no stage of scene_en drew; a peak rate under the early stages'.
  seeds = {scene_en.get_config(f"stage={s}").data.train_seed for s in scene_en.STAGES}
  assert config.data.train_seed not in seeds
  assert config.optimizer.learning_rate < min(
      scene_en.get_config(f"stage={s}").optimizer.learning_rate for s in ("1", "2", "8"))
  assert 2000 <= config.num_train_steps <= 3000
  assert (config.checkpoint_every_steps, config.eval_every_steps) == (100, 250)
  docstring = " ".join(scene_en_tps.__doc__.replace("\\\n", " ").split())
  assert ("python -m train.main --config configs/scene_en_tps.py "
          "--workdir ~/runs/scene_en_tps") in docstring


@pytest.mark.slow
def test_scene_en_tps_starts_as_the_shipped_scene_en_with_the_identity_rectifier():
  """The full-size model of the recipe, its weights loaded as training loads them: every CRNN
  array is the shipped scene_en's, the rectifier keeps its initialization (the identity)."""
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from configs import scene_en_tps  # pylint: disable=import-outside-toplevel
  from crnn_jax import pretrained, train_lib  # pylint: disable=import-outside-toplevel
  from crnn_jax.models import crnn, rectifier  # pylint: disable=import-outside-toplevel
  from crnn_jax.text.charset import Charset  # pylint: disable=import-outside-toplevel
  config = scene_en_tps.get_config()
  charset = Charset.from_config(config.text)
  model = crnn.from_config(config.model, charset.num_classes)
  state = train_lib.create_train_state(config, model, jax.random.key(config.seed))
  loaded = train_lib.load_initial_weights(state, config.init_weights, charset,
                                          mode=config.init_weights_mode)
  _, shipped = pretrained.load(config.init_weights)
  for collection in ("params", "batch_stats"):
    ours = jax.device_get(getattr(loaded, collection))
    fresh = jax.device_get(getattr(state, collection))
    assert set(ours) == set(shipped[collection]) | {"rectifier"}
    jax.tree.map(np.testing.assert_array_equal,
                 {k: v for k, v in ours.items() if k != "rectifier"}, shipped[collection])
    jax.tree.map(np.testing.assert_array_equal, ours["rectifier"], fresh["rectifier"])
  # The fresh rectifier predicts the canonical points: it samples the input as it is.
  images = np.random.default_rng(0).uniform(-1, 1, (2, 32, 100, 1)).astype(np.float32)
  widths = np.array([100, 61])
  rectified, points = model.rectify({"params": loaded.params, "batch_stats": loaded.batch_stats},
                                    images, widths)
  np.testing.assert_allclose(
      points, np.broadcast_to(rectifier.canonical_points(config.model.rectifier_points),
                              points.shape), atol=1e-6)
  np.testing.assert_allclose(rectified[1, :, :61], images[1, :, :61], atol=1e-6)
