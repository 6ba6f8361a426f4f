"""Tests of `crnn-jax eval --data`: the standard protocol over datasets on disk."""

import json
import unicodedata

import deploy_helpers
import numpy as np
import pytest

from configs import tiny
from crnn_jax import cli
from crnn_jax.cli import eval as eval_cli
from crnn_jax.data import lmdb_io
from crnn_jax.evaluation import evaluators
from crnn_jax.evaluation import protocol
from tests.data_helpers import encode, image_array

# (label, image bytes or None for a good image). Under the standard protocol 'it's' counts as
# 'its' (altered), the 30-character label does not count, and the corrupt image is skipped.
IIIT = [("Hello", None), ("it's", None), ("WORLD", None), ("x" * 30, None), ("bad", b"junk"),
        ("42nd", None), ("Abc", None)]
SVT = [("SHOP", None), ("Cafe", None), ("pub", None)]


@pytest.fixture
def evaluation_dir(tmp_path):
  root = tmp_path / "evaluation"
  for name, items in [("IIIT5k_3000", IIIT), ("SVT", SVT)]:
    with lmdb_io.LmdbWriter(root / name) as writer:
      for i, (label, data) in enumerate(items):
        writer.add(data or encode(image_array(i, width=40 + 10 * i)), label)
  return root


def _upper_oracle(batch):
  """Reads the label back, upper-cased: right under case-insensitive protocols only."""
  return [t.upper() for t in batch["text"]], np.full(len(batch["text"]), 0.75, np.float32)


def _evaluate(root, p, **kwargs):
  config = tiny.get_config()
  entries = eval_cli.expand_datasets([str(root)])
  return evaluators.DatasetEvaluator(entries, config.data, p, 4, **kwargs).run(_upper_oracle)


def test_standard_protocol_counts_filters_and_scores(evaluation_dir):
  results = _evaluate(evaluation_dir, protocol.STANDARD)
  iiit, svt = results["datasets"]
  assert (iiit["name"], iiit["benchmark"], iiit["expected_records"]) == (
      "IIIT5k_3000", "IIIT5k_3000", 3000)
  assert iiit["records"] == 7 and iiit["count"] == 5 and iiit["altered"] == 1
  assert {r: v["count"] for r, v in iiit["skipped"].items()} == {
      "label_too_long": 1, "undecodable_image": 1}
  assert iiit["skipped"]["undecodable_image"]["first"] == [{"key": "IIIT5k_3000/000000005"}]
  assert iiit["word_accuracy"] == 1.0 and iiit["one_minus_ned"] == 1.0
  assert iiit["mean_confidence"] == pytest.approx(0.75)
  assert svt["count"] == 3 and svt["benchmark"] == "SVT" and svt["altered"] == 0
  assert results["total"]["count"] == 8 and results["total"]["records"] == 10
  assert results["total"]["altered"] == 1
  assert results["groups"] == {}  # Not all members of any group were evaluated.
  table = protocol.markdown_table(results)
  assert "| IIIT5k_3000 | 7 (standard: 3000) | 5 | 1 | 100.00 | 100.00 | 0.750 |" in table
  skipping = _evaluate(evaluation_dir, protocol.Protocol(strip_labels=False))["datasets"][0]
  assert skipping["count"] == 4 and skipping["skipped"]["unknown_chars"]["count"] == 1


def test_case_sensitive_and_unfiltered_protocols(evaluation_dir):
  results = _evaluate(evaluation_dir, protocol.CASE_SENSITIVE)
  iiit, svt = results["datasets"]
  # Counted: Hello, its, WORLD, 42nd, Abc: only WORLD reads back right upper-cased.
  assert iiit["count"] == 5 and iiit["word_accuracy"] == 0.2
  # 'Hello' vs 'HELLO': 4 of 5; 'its' vs 'ITS': 3 of 3; '42nd' vs '42ND': 2 of 4; 'Abc': 2 of 3.
  assert iiit["one_minus_ned"] == pytest.approx(1 - (4 / 5 + 1 + 0 + 2 / 4 + 2 / 3) / 5)
  assert svt["word_accuracy"] == pytest.approx(1 / 3)
  total = results["total"]
  assert total["count"] == 8 and total["word_accuracy"] == pytest.approx(2 / 8)
  unfiltered = _evaluate(evaluation_dir, protocol.Protocol(case_sensitive=True, filter_labels=False))["datasets"][0]
  assert unfiltered["count"] == 6 and set(unfiltered["skipped"]) == {"undecodable_image"}


def test_hosts_split_the_records_and_add_up(evaluation_dir):
  whole = _evaluate(evaluation_dir, protocol.CASE_SENSITIVE)
  parts = [_evaluate(evaluation_dir, protocol.CASE_SENSITIVE, process_index=p,
                     process_count=2) for p in range(2)]
  for d in range(2):
    sums = np.sum([part["datasets"][d]["sums"] for part in parts], axis=0)
    np.testing.assert_allclose(sums, whole["datasets"][d]["sums"])


def test_group_totals_appear_when_all_members_are_evaluated(tmp_path):
  root = tmp_path / "evaluation"
  for n, name in enumerate(protocol.GROUPS["total_7672"]):
    with lmdb_io.LmdbWriter(root / name) as writer:
      for i in range(n + 1):
        writer.add(encode(image_array(i)), "ABC" if i % 2 else "abc")
  results = _evaluate(root, protocol.CASE_SENSITIVE)
  assert list(results["groups"]) == ["total_7672"]
  group = results["groups"]["total_7672"]
  assert group["count"] == 21 == results["total"]["count"]  # 1 + 2 + ... + 6 records.
  assert group["word_accuracy"] == pytest.approx(9 / 21)  # The upper-case labels.


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  """A training workdir with an untrained tiny model checkpoint (step 0) of configs/tiny.py,
  its model made smaller and eval_batch_size 4."""
  config = tiny.get_config()
  config.model.conv_channels = deploy_helpers.TINY_CHANNELS
  config.model.lstm_hidden = deploy_helpers.TINY_HIDDEN
  config.eval_batch_size = 4
  return deploy_helpers.make_workdir(tmp_path_factory.mktemp("workdir"), seed=0, config=config)


def test_eval_command_writes_json_and_markdown(workdir, evaluation_dir, tmp_path, capsys):
  output = tmp_path / "results.json"
  rc = cli.main(["eval", "--checkpoint", str(workdir), "--data", str(evaluation_dir),
                 "--output", str(output)])
  assert rc == 0
  printed = capsys.readouterr().out
  results = json.loads(output.read_text())
  assert results["step"] == 0 and results["protocol"]["name"] == "standard"
  assert [(d["name"], d["count"]) for d in results["datasets"]] == [("IIIT5k_3000", 5),
                                                                    ("SVT", 3)]
  for entry in results["datasets"] + [results["total"]]:
    assert 0.0 <= entry["word_accuracy"] <= entry["one_minus_ned"] <= 1.0
    assert 0.0 <= entry["mean_confidence"] <= 1.0
  markdown = output.with_suffix(".md").read_text()
  assert markdown in printed
  assert "| SVT | 3 (standard: 647) | 3 | 0 |" in markdown
  assert "| **Total** | 10 | 8 | 1 |" in markdown
  rc = cli.main(["eval", "--checkpoint", str(workdir), "--data", str(tmp_path / "missing")])
  assert rc == 2 and "does not exist" in capsys.readouterr().err


def test_eval_data_with_beam_and_lexicon_decoders(workdir, evaluation_dir, tmp_path, capsys,
                                                  monkeypatch):
  from crnn_jax import checkpointing  # pylint: disable=import-outside-toplevel
  restores = []
  real_restore = checkpointing.restore_variables
  monkeypatch.setattr(checkpointing, "restore_variables",
                      lambda *a, **k: restores.append(a) or real_restore(*a, **k))
  lexicon = tmp_path / "lexicon.txt"
  lexicon.write_text("hello\n")  # A one-word lexicon: every image decodes to 'hello'.
  output = tmp_path / "results.json"
  rc = cli.main(["eval", "--checkpoint", str(workdir), "--data", str(evaluation_dir),
                 "--decoder", "greedy,beam,lexicon", "--beam-width", "3",
                 "--lexicon", str(lexicon), "--output", str(output)])
  assert rc == 0
  results = json.loads(output.read_text())
  assert sorted(results["decoders"]) == ["beam3", "lexicon"]
  by_name = {d["name"]: d for d in results["decoders"]["lexicon"]["datasets"]}
  assert by_name["IIIT5k_3000"]["word_accuracy"] == pytest.approx(1 / 5)  # 'Hello' only.
  assert by_name["SVT"]["word_accuracy"] == 0.0
  assert results["decoders"]["beam3"]["total"]["count"] == results["total"]["count"] == 8
  out = capsys.readouterr().out
  assert out.index("### decoder greedy") < out.index("### decoder beam3") < out.index(
      "### decoder lexicon")  # Every table is labelled with its decoder, greedy first.
  assert out.startswith("### decoder greedy\n")
  assert len(restores) == 1  # One restore serves the greedy results and every other decoder.


def test_eval_data_names_an_empty_directory(workdir, tmp_path, capsys):
  empty = tmp_path / "nothing_here"
  empty.mkdir()
  assert cli.main(["eval", "--checkpoint", str(workdir), "--data", str(empty)]) == 2
  assert f"no dataset found at {empty} (an empty directory)" in capsys.readouterr().err


def test_nfkc_protocol_over_a_dataset_and_its_flag(tmp_path):
  lines = ["价格 128元", "ＡＢＣ１２３", "iPhone手机", "第3季度"]
  root = tmp_path / "zh"
  with lmdb_io.LmdbWriter(root / "lines") as writer:
    for i, label in enumerate(lines):
      writer.add(encode(image_array(i, width=60 + 10 * i)), label)

  def reader(batch):  # Reads each label back in ASCII forms with a space; 'iphone' is wrong.
    texts = [unicodedata.normalize("NFKC", t).replace("iPhone", "iphone") for t in batch["text"]]
    return [t[:1] + " " + t[1:] for t in texts], np.full(len(texts), 0.5, np.float32)

  config = tiny.get_config()
  entries = eval_cli.expand_datasets([str(root)])
  result = evaluators.DatasetEvaluator(entries, config.data, protocol.NFKC, 4).run(reader)
  row = result["datasets"][0]
  assert row["count"] == 4 and row["word_accuracy"] == 0.75  # 'iphone' vs 'iPhone' is wrong.
  assert result["protocol"]["name"] == "nfkc-no-space"
  unfiltered = evaluators.DatasetEvaluator(entries, config.data, protocol.Protocol(case_sensitive=True, filter_labels=False),
                                           4).run(reader)
  assert unfiltered["datasets"][0]["word_accuracy"] == 0.0  # Spaces count there.

  parser = cli.build_parser()
  args = parser.parse_args(["eval", "--data", str(root), "--nfkc"])
  assert eval_cli.protocol_from_args(args) == protocol.NFKC
  args = parser.parse_args(["eval", "--data", str(root), "--nfkc", "--case-sensitive"])
  with pytest.raises(ValueError, match="--nfkc"):
    eval_cli.protocol_from_args(args)


def test_reading_config_widens_keep_ratio_models_only():
  config = tiny.get_config()
  config.data.resize = "keep_ratio"
  widened = eval_cli.reading_config(config.data, 1024)
  assert widened.max_width == 1024 and config.data.max_width == 256  # A copy.
  assert eval_cli.reading_config(config.data, 0) is config.data
  config.data.resize = "fixed"
  assert eval_cli.reading_config(config.data, 1024) is config.data
  config.data.resize = "keep_ratio"
  with pytest.raises(ValueError, match="--max-width must be at least 8"):
    eval_cli.reading_config(config.data, 4)
  config.data.resize = "fixed"  # A bad width is refused whatever the model.
  with pytest.raises(ValueError, match="--max-width must be at least 8"):
    eval_cli.reading_config(config.data, -1)


def test_eval_refuses_a_bad_max_width_before_loading_the_model(evaluation_dir, monkeypatch,
                                                                capsys):
  from crnn_jax import run_files  # pylint: disable=import-outside-toplevel
  loads = []
  monkeypatch.setattr(run_files, "load_model", lambda *a, **k: loads.append(a))
  assert cli.main(["eval", "--weights", "scene_en", "--data", str(evaluation_dir),
                   "--max-width", "4"]) == 2
  assert "--max-width must be at least 8" in capsys.readouterr().err
  assert not loads


def _label_crops_as_read(recognizer, folder, widths) -> list[str]:
  """Writes crops of these widths into `folder` with a gt.txt of the recognizer's readings."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  folder.mkdir()
  paths = []
  for i, width in enumerate(widths):
    paths.append(folder / f"{i}.png")
    Image.fromarray(image_array(i, width=width)).save(paths[-1])
  texts = [p.text for p in recognizer.recognize(paths)]
  (folder / "gt.txt").write_text("".join(f"{p.name}\t{t}\n" for p, t in zip(paths, texts)))
  return texts


def _eval_results(workdir, folder, output, *flags) -> dict:
  """The JSON results of `eval --data folder --unfiltered` with more flags."""
  assert cli.main(["eval", "--checkpoint", str(workdir), "--data", str(folder), "--unfiltered",
                   "--quiet", "--output", str(output), *flags]) == 0
  return json.loads(output.read_text())


def test_eval_data_reads_wide_images_as_the_recognizer_does(tmp_path):
  # Crops wider than the training width (256 at height 32): labelled with what the Recognizer
  # reads, `eval --data` scores every one right at the default width, and squeezing them to
  # the training width (--max-width 0) changes the reading.
  import crnn_jax  # pylint: disable=import-outside-toplevel
  workdir = deploy_helpers.make_workdir(tmp_path / "workdir", seed=3)
  # Greedy, as the first table of `eval` (a 62-character model also gets an lm table).
  recognizer = crnn_jax.Recognizer.from_checkpoint(workdir, decoder="greedy")
  texts = _label_crops_as_read(recognizer, tmp_path / "wide", (400, 600, 900))
  assert all(texts), texts
  accuracy = lambda *flags: _eval_results(workdir, tmp_path / "wide", tmp_path / "r.json",
                                          *flags)["total"]["word_accuracy"]
  assert accuracy() == 1.0
  assert accuracy("--max-width", "0") < 1.0


def test_eval_joins_the_distributed_runtime_before_loading_the_model(workdir, evaluation_dir,
                                                                     monkeypatch):
  from crnn_jax import distributed, run_files  # pylint: disable=import-outside-toplevel
  calls = []
  monkeypatch.setattr(distributed, "initialize", lambda *a: calls.append("initialize"))
  real_load = run_files.load_model
  monkeypatch.setattr(run_files, "load_model",
                      lambda *a, **k: calls.append("load") or real_load(*a, **k))
  assert cli.main(["eval", "--checkpoint", str(workdir), "--data", str(evaluation_dir),
                   "--quiet"]) == 0
  assert calls == ["initialize", "load"]


def test_eval_scores_the_default_lm_decoder_as_predict_reads(tmp_path):
  # An English model's default decoder is 'lm': `eval` adds its table unless --decoder is
  # given, and that table scores what the Recognizer (and so `predict`) reads by default.
  import crnn_jax  # pylint: disable=import-outside-toplevel
  workdir = deploy_helpers.make_workdir(tmp_path / "workdir", seed=3)
  recognizer = crnn_jax.Recognizer.from_checkpoint(workdir)
  assert recognizer.decoder.name == "lm"
  _label_crops_as_read(recognizer, tmp_path / "crops", (120, 200, 300))
  default = _eval_results(workdir, tmp_path / "crops", tmp_path / "r.json")
  assert list(default["decoders"]) == ["lm32"]
  assert default["decoders"]["lm32"]["total"]["word_accuracy"] == 1.0
  greedy_only = _eval_results(workdir, tmp_path / "crops", tmp_path / "r.json",
                              "--decoder", "greedy")
  assert "decoders" not in greedy_only
