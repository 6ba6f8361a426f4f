"""The readers the benchmark scripts time and score: crnn-jax, Tesseract and RapidOCR, on image
files.

Each `run_*` returns (texts, confidences in [0, 1], seconds per image).
"""

from __future__ import annotations

import concurrent.futures
import csv
import io
import os
import pathlib
import subprocess
import time

import numpy as np


def tesseract_read(path: pathlib.Path, whitelist: str | None = None,
                   lang: str = "eng") -> tuple[str, float]:
  """Tesseract's one-line reading (`--psm 7`, language model(s) `lang`, e.g. 'chi_sim+eng') of
  an image, without white space, and its mean word confidence; `whitelist` limits the
  characters it may read."""
  command = ["tesseract", str(path), "stdout", "--psm", "7", "-l", lang]
  if whitelist:
    command += ["-c", f"tessedit_char_whitelist={whitelist}"]
  result = subprocess.run(command + ["tsv"], capture_output=True, text=True, check=False,
                          env={**os.environ, "OMP_THREAD_LIMIT": "1"})
  if result.returncode != 0:
    raise RuntimeError(f"tesseract failed on {path}: {result.stderr.strip()[-500:]}")
  words, confidences = [], []
  for row in csv.DictReader(io.StringIO(result.stdout), delimiter="\t", quoting=csv.QUOTE_NONE):
    text = "".join((row.get("text") or "").split())
    if row.get("level") == "5" and text:
      words.append(text)
      confidences.append(max(0.0, float(row.get("conf") or 0)) / 100)
  return "".join(words), float(np.mean(confidences)) if confidences else 0.0


def tesseract_version() -> str:
  """The first line of `tesseract --version` ('tesseract 5.3.0')."""
  return subprocess.run(["tesseract", "--version"], capture_output=True, text=True,
                        check=False).stdout.split("\n")[0]


def run_tesseract(paths, threads: int, whitelist: str | None = None, lang: str = "eng"):
  """Tesseract on `paths`, `threads` processes at a time (seconds are per process)."""
  start = time.perf_counter()
  with concurrent.futures.ThreadPoolExecutor(threads) as pool:
    results = list(pool.map(lambda p: tesseract_read(p, whitelist, lang), paths))
  seconds = (time.perf_counter() - start) * threads / max(len(paths), 1)
  return [r[0] for r in results], [r[1] for r in results], seconds


def run_crnn(paths, checkpoint: str, weights: str, onnx: str = "", backend: str = "jax",
             decoder: str | None = None):
  """A batched `Recognizer` (an ONNX file, a training workdir, else shipped weights; on the JAX
  or onnxruntime backend; `decoder` None: the model's default, 'lm' for English); compiled
  first."""
  import crnn_jax  # pylint: disable=import-outside-toplevel
  if onnx:
    recognizer = crnn_jax.Recognizer.from_onnx(onnx, decoder=decoder)
  elif checkpoint:
    recognizer = crnn_jax.Recognizer.from_checkpoint(checkpoint, backend=backend,
                                                     decoder=decoder)
  else:
    recognizer = crnn_jax.Recognizer.from_pretrained(weights, backend=backend, decoder=decoder)
  recognizer.recognize(paths[:64])  # Compile.
  start = time.perf_counter()
  predictions = recognizer.recognize(paths)
  seconds = (time.perf_counter() - start) / max(len(paths), 1)
  return [p.text for p in predictions], [p.confidence for p in predictions], seconds


def run_rapidocr(paths):
  """RapidOCR's recognizer alone (PyPI `rapidocr` + `onnxruntime`; a PP-OCR model, offline)."""
  from rapidocr import RapidOCR  # pylint: disable=import-outside-toplevel
  engine = RapidOCR()
  texts, confidences = [], []
  start = time.perf_counter()
  for path in paths:
    output = engine(str(path), use_det=False, use_cls=False, use_rec=True)
    txts = list(getattr(output, "txts", None) or [""])
    scores = list(getattr(output, "scores", None) or [0.0])
    texts.append("".join(txts))
    confidences.append(float(np.mean(scores)) if scores else 0.0)
  return texts, confidences, (time.perf_counter() - start) / max(len(paths), 1)
