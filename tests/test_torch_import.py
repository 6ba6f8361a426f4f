"""Tests for crnn_jax.torch_import: crnn.pytorch state dicts -> crnn-jax workdirs.

The PyTorch module below is written for this test with crnn.pytorch's layer layout and
parameter names (conv/batchnorm in an `nn.Sequential` named `cnn`, two BidirectionalLSTM blocks
`rnn.0`, `rnn.1`, each an `nn.LSTM(nIn, nHidden, bidirectional=True)` named `rnn` and an
`nn.Linear(2 * nHidden, nOut)` named `embedding`).
"""

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

# pylint: disable=g-import-not-at-top,wrong-import-position
from crnn_jax import cli, torch_import
from crnn_jax.decoding import greedy
from crnn_jax.inference import Recognizer
# pylint: enable=g-import-not-at-top,wrong-import-position

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
CHANNELS = (8, 8, 16, 16, 16, 16, 16)
HIDDEN = 12


class _BidirectionalLSTM(nn.Module):

  def __init__(self, n_in, n_hidden, n_out):
    super().__init__()
    self.rnn = nn.LSTM(n_in, n_hidden, bidirectional=True)
    self.embedding = nn.Linear(n_hidden * 2, n_out)

  def forward(self, x):  # [T, B, n_in]
    recurrent, _ = self.rnn(x)
    steps, batch, hidden = recurrent.shape
    return self.embedding(recurrent.reshape(steps * batch, hidden)).reshape(steps, batch, -1)


class _TorchCRNN(nn.Module):
  """crnn.pytorch's CRNN layout (BatchNorm after convolutions 3, 5, 7; plain ReLU)."""

  def __init__(self, channels, n_hidden, n_class):
    super().__init__()
    cnn = nn.Sequential()
    in_ch = 1
    for i, out in enumerate(channels):
      k, pad = (2, 0) if i == 6 else (3, 1)
      cnn.add_module(f"conv{i}", nn.Conv2d(in_ch, out, k, 1, pad))
      if i in (2, 4, 6):
        cnn.add_module(f"batchnorm{i}", nn.BatchNorm2d(out))
      cnn.add_module(f"relu{i}", nn.ReLU(True))
      if i in (0, 1):
        cnn.add_module(f"pooling{i}", nn.MaxPool2d(2, 2))
      elif i in (3, 5):
        cnn.add_module(f"pooling{i}", nn.MaxPool2d((2, 2), (2, 1), (0, 1)))
      in_ch = out
    self.cnn = cnn
    self.rnn = nn.Sequential(_BidirectionalLSTM(channels[-1], n_hidden, n_hidden),
                             _BidirectionalLSTM(n_hidden, n_hidden, n_class))

  def forward(self, x):  # [B, 1, 32, W] -> [T, B, n_class]
    conv = self.cnn(x)
    assert conv.shape[2] == 1
    return self.rnn(conv.squeeze(2).permute(2, 0, 1))


@pytest.fixture(scope="module")
def torch_model():
  torch.manual_seed(0)
  model = _TorchCRNN(CHANNELS, HIDDEN, len(ALPHABET) + 1)
  with torch.no_grad():
    for name, p in model.named_parameters():
      p.add_(torch.randn_like(p) * (0.3 if "weight" in name else 0.5))
    for module in model.modules():
      if isinstance(module, nn.BatchNorm2d):
        module.running_mean.normal_(0, 0.5)
        module.running_var.uniform_(0.3, 2.0)
        module.num_batches_tracked.fill_(123)
  return model.eval()


@pytest.fixture(scope="module")
def imported(torch_model, tmp_path_factory):
  root = tmp_path_factory.mktemp("torch_import")
  pth = root / "crnn.pth"
  torch.save(torch_model.state_dict(), pth)
  assert cli.main(["import-torch", str(pth), "--output", str(root / "workdir")]) == 0
  return pth, root / "workdir"


def _torch_logits(model, images):
  with torch.no_grad():
    out = model(torch.from_numpy(images).permute(0, 3, 1, 2))
  return out.permute(1, 0, 2).numpy()  # [B, T, K]


@pytest.mark.parametrize("width", [100, 64, 37])
def test_logits_equal_pytorch(torch_model, imported, width):
  _, workdir = imported
  recognizer = Recognizer.from_checkpoint(workdir)
  rng = np.random.default_rng(width)
  images = rng.uniform(-1, 1, (2, 32, width, 1)).astype(np.float32)
  expected = _torch_logits(torch_model, images)
  log_probs, lengths = recognizer.backend.log_probs(images, np.full(2, width, np.int32))
  logits, lengths2 = recognizer.backend.model.apply(recognizer.backend.variables, images,
                                            np.full(2, width, np.int32))
  logits = np.asarray(logits)
  assert logits.shape == expected.shape == (2, width // 4 + 1, len(ALPHABET) + 1)
  np.testing.assert_array_equal(lengths, width // 4 + 1)
  scale = np.abs(expected).max()
  assert scale > 0.5  # Non-trivial outputs.
  assert np.abs(logits - expected).max() <= 1e-4 * scale
  # The recognizer's log-probabilities are the log-softmax of the same logits.
  ref = torch.log_softmax(torch.from_numpy(expected), -1).numpy()
  assert np.abs(log_probs - ref).max() <= 1e-4 * np.abs(ref).max()


def test_workdir_config_and_predict_cli(torch_model, imported, tmp_path, capsys):
  _, workdir = imported
  recognizer = Recognizer.from_checkpoint(workdir, decoder="greedy")  # As torch's argmax below.
  assert recognizer.charset.chars == ALPHABET
  assert recognizer.backend.model.conv_channels == CHANNELS
  assert recognizer.backend.model.lstm_hidden == HIDDEN
  assert recognizer.backend.model.batch_norm_layout == "torch"
  # A 32-pixel-high uint8 image goes through preprocessing unchanged but for the [-1, 1] scaling,
  # which is crnn.pytorch's (x / 255 - 0.5) / 0.5.
  rng = np.random.default_rng(1)
  image = rng.integers(0, 256, (32, 100)).astype(np.uint8)
  torch_input = ((image.astype(np.float32) / 255.0 - 0.5) / 0.5)[None, :, :, None]
  expected = _torch_logits(torch_model, torch_input)[0]
  text = greedy.collapse_path(expected.argmax(-1))
  [prediction] = recognizer.recognize([image])
  assert prediction.text == recognizer.charset.decode(text)
  path = tmp_path / "word.png"
  from PIL import Image  # pylint: disable=g-import-not-at-top
  Image.fromarray(image).save(path)
  assert cli.main(["predict", "--checkpoint", str(workdir), str(path), "--decoder", "greedy"]) == 0
  assert capsys.readouterr().out.split("\t")[1] == prediction.text


def test_bad_files_fail_naming_the_problem(torch_model, imported, tmp_path):
  pth, _ = imported
  state = torch.load(pth, weights_only=True)

  not_a_dict = tmp_path / "list.pth"
  torch.save([torch.zeros(3)], not_a_dict)
  with pytest.raises(ValueError, match="expected a state dict"):
    torch_import.load_state_dict(not_a_dict)

  pickled_code = tmp_path / "code.pth"
  pickled_code.write_bytes(pickle.dumps(_TorchCRNN))  # Would need code to unpickle.
  with pytest.raises(ValueError, match="weights_only=True"):
    torch_import.load_state_dict(pickled_code)

  missing = {k: v for k, v in state.items() if k != "rnn.1.embedding.bias"}
  torch.save(missing, tmp_path / "missing.pth")
  with pytest.raises(ValueError, match=r"'rnn\.1\.embedding\.bias'"):
    torch_import.import_torch(tmp_path / "missing.pth", tmp_path / "out1")

  misshapen = dict(state)
  misshapen["cnn.conv3.weight"] = torch.zeros(16, 16, 3, 2)
  torch.save(misshapen, tmp_path / "misshapen.pth")
  with pytest.raises(ValueError, match=r"'cnn\.conv3\.weight' has shape \[16, 16, 3, 2\]"):
    torch_import.import_torch(tmp_path / "misshapen.pth", tmp_path / "out2")

  gates = dict(state)
  gates["rnn.0.rnn.weight_hh_l0_reverse"] = torch.zeros(4 * HIDDEN, HIDDEN + 1)
  with pytest.raises(ValueError, match=r"'rnn\.0\.rnn\.weight_hh_l0_reverse'"):
    torch_import.convert_state_dict({k: v.numpy() for k, v in gates.items()})

  wrong_alphabet = tmp_path / "out3"
  with pytest.raises(ValueError, match="alphabet has 3 characters"):
    torch_import.import_torch(pth, wrong_alphabet, alphabet="abc")
  assert cli.main(["import-torch", str(tmp_path / "missing.pth"), "--output",
                   str(tmp_path / "out4")]) == 2


def test_gate_and_bias_mapping():
  """The LSTM gate rows and summed biases land in the named flax cells."""
  hidden, features = 2, 3
  rng = np.random.default_rng(0)
  model = _TorchCRNN((2, 2, 2, 2, 2, 2, features), hidden, 5)
  state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
  state["rnn.0.rnn.weight_ih_l0"] = rng.normal(size=(4 * hidden, features)).astype(np.float32)
  state["rnn.0.rnn.bias_ih_l0"] = np.arange(4 * hidden, dtype=np.float32)
  state["rnn.0.rnn.bias_hh_l0"] = np.full(4 * hidden, 100, np.float32)
  variables, sizes = torch_import.convert_state_dict(state)
  assert sizes == dict(conv_channels=(2, 2, 2, 2, 2, 2, features), lstm_hidden=hidden,
                       lstm_layers=2, num_classes=5, input_channels=1)
  cell = variables["params"]["rnn0"]["forward_cell"]
  for g, name in enumerate("ifgo"):
    np.testing.assert_array_equal(cell[f"i{name}"]["kernel"],
                                  state["rnn.0.rnn.weight_ih_l0"][g * hidden:(g + 1) * hidden].T)
    np.testing.assert_array_equal(cell[f"h{name}"]["bias"],
                                  100 + np.arange(g * hidden, (g + 1) * hidden))
  assert "bias" not in cell["ii"]
  assert variables["params"]["cnn"]["conv6"]["kernel"].shape == (2, 2, 2, features)


def test_import_stays_rectifier_free(imported, tmp_path):
  """The imported model has no rectifier, and a rectifier's tensors are refused, not dropped."""
  from crnn_jax import run_files  # pylint: disable=g-import-not-at-top
  pth, workdir = imported
  loaded = run_files.load_model(workdir)
  assert loaded.config.model.rectifier == "none"
  assert loaded.module.rectifier == "none" and loaded.module.rectifier_module() is None
  assert "rectifier" not in loaded.variables["params"]
  assert "rectifier" not in loaded.variables["batch_stats"]
  # DTRB's TPS-ResNet/VGG checkpoints name the rectifier `Transformation.*`; crnn.pytorch has
  # none. Such a file is refused with the tensor named, not imported without its rectifier.
  state = torch.load(pth, weights_only=True)
  state["Transformation.LocalizationNetwork.localization_fc2.weight"] = torch.zeros(40, 256)
  torch.save(state, tmp_path / "tps.pth")
  with pytest.raises(ValueError, match=r"unexpected tensor 'Transformation\.Localization"):
    torch_import.import_torch(tmp_path / "tps.pth", tmp_path / "out")
  assert not (tmp_path / "out").exists()
