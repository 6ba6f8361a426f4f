"""The README is a user guide that works as written.

It is at most 400 lines; its test command is the one `.ci/run` runs; every repository path it
names in backticks, and every relative link (with its #anchor), exists; every
`crnn-jax SUBCOMMAND --flag` it shows is a flag of that subcommand's parser; and every
`python -m train.main` command names an existing config file and existing config fields.
"""

from __future__ import annotations

import argparse
import glob
import pathlib
import re
import shlex

from crnn_jax import cli
from crnn_jax import config_file

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
MAX_LINES = 400
# The set-up commands at the top of the README (their text must not change: the first trains
# the quickstart model in a fresh clone, the second is CI's).
QUICKSTART = ("python3 -m venv .venv && . .venv/bin/activate && pip install -e . && "
              "python -m train.main --config configs/quickstart.py --workdir runs/quick")
# Top-level entries of the repository: a backticked `name/...` starting with one is a path
# that must exist.
REPO_TOP = (".ci", "benchmarks", "configs", "crnn_jax", "docs", "testdata", "tests", "train",
            "constraints.txt", "pyproject.toml", "README.md")
SEPARATORS = {"|", "||", "&&", ";"}


def _code_blocks(text: str) -> list[tuple[str, str]]:
  """(language, body) of every fenced code block."""
  return re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.M | re.S)


def _inline_spans(text: str) -> list[str]:
  """Backticked spans outside code blocks, line breaks inside them read as spaces."""
  prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
  return [" ".join(s.split()) for s in re.findall(r"`([^`]+)`", prose)]


def _commands(text: str) -> list[list[str]]:
  """Shell commands of the README (code blocks but python ones, and inline spans), as tokens."""
  lines = []
  for lang, body in _code_blocks(text):
    if lang not in ("", "bash", "sh", "shell"):
      continue
    lines += body.replace("\\\n", " ").splitlines()
  lines += _inline_spans(text)
  commands = []
  for line in lines:
    try:
      tokens = shlex.split(line, comments=True)
    except ValueError:  # An inline span that is not a command (an unmatched quote).
      continue
    command = []
    for token in tokens + [";"]:
      if token in SEPARATORS:
        if command:
          commands.append(command)
        command = []
      else:
        command.append(token)
  return commands


def _subparsers(parser: argparse.ArgumentParser):
  for action in parser._actions:  # pylint: disable=protected-access
    if isinstance(action, argparse._SubParsersAction):  # pylint: disable=protected-access
      return action
  return None


def _heading_anchors(path: pathlib.Path) -> set[str]:
  """GitHub's anchors of a Markdown file's headings."""
  anchors = set()
  in_code = False
  for line in path.read_text(encoding="utf-8").splitlines():
    if line.startswith("```"):
      in_code = not in_code
    if in_code or not re.match(r"#{1,6} ", line):
      continue
    title = line.lstrip("#").strip().lower().replace("`", "")
    anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
  return anchors


def test_readme_is_at_most_400_lines():
  assert len(README.splitlines()) <= MAX_LINES


def test_setup_commands_are_the_quickstart_and_ci_commands():
  ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if "pytest" in line and not line.lstrip().startswith("#")]
  assert len(ci) == 1, ci
  bash = [body.strip() for lang, body in _code_blocks(README) if lang == "bash"]
  assert bash[0] == QUICKSTART
  assert bash[1] == ci[0]


def test_repository_paths_in_backticks_exist():
  spans = _inline_spans(README)
  for _, body in _code_blocks(README):
    spans += re.findall(r"`([^`\n]+)`", body)
  missing = []
  for span in spans:
    for word in span.split():
      word = word.strip("'\",;()")
      if word.split("/")[0] not in REPO_TOP or "<" in word:
        continue
      candidates = [word, word.split(":")[0]]
      if not any(glob.glob(str(ROOT / c)) for c in candidates):
        missing.append(word)
  assert not missing, missing


def test_relative_links_and_anchors_exist():
  bad = []
  for target in re.findall(r"\]\(([^)\s]+)\)", README):
    if re.match(r"[a-z]+:", target):
      continue
    path, _, anchor = target.partition("#")
    file = ROOT / path if path else ROOT / "README.md"
    if not file.exists():
      bad.append(target)
    elif anchor and (file.is_dir() or anchor not in _heading_anchors(file)):
      bad.append(target)
  assert not bad, bad


def test_crnn_jax_flags_are_known_to_their_subcommand():
  parser = cli.build_parser()
  unknown, seen = [], 0
  for command in _commands(README):
    if command[0] != "crnn-jax" or len(command) == 1:  # The name alone, in prose.
      continue
    seen += 1
    current, path = parser, ["crnn-jax"]
    for token in command[1:]:
      sub = _subparsers(current)
      if token.startswith("--"):
        if token.split("=", 1)[0] not in current._option_string_actions:  # pylint: disable=protected-access
          unknown.append(f"{' '.join(path)} {token}")
      elif sub is not None and token in sub.choices:
        current = sub.choices[token]
        path.append(token)
    if _subparsers(current) is not None and len(path) == 1:
      unknown.append(f"{' '.join(command)}: no subcommand")
  assert seen >= 10, seen  # The README shows the command line; the parsing found it.
  assert not unknown, unknown


def test_training_commands_name_config_files_and_fields():
  errors, seen = [], 0
  for command in _commands(README):
    if command[:3] != ["python", "-m", "train.main"]:
      continue
    seen += 1
    argv = command[3:]
    path = argv[argv.index("--config") + 1].split(":", 1)[0]
    if not (ROOT / path).is_file():
      errors.append(f"{path}: no such config file")
      continue
    errors += config_file.override_errors(config_file.load(ROOT / path), argv)
  assert seen >= 3, seen
  assert not errors, errors
