"""Tests of crnn_jax/cli/format.py: every option of every subcommand explains itself."""

import argparse

from crnn_jax import cli


def _parsers(parser, name="crnn-jax"):
  yield name, parser
  for action in parser._actions:  # pylint: disable=protected-access
    if isinstance(action, argparse._SubParsersAction):  # pylint: disable=protected-access
      for sub_name, sub in action.choices.items():
        yield from _parsers(sub, f"{name} {sub_name}")


def test_every_option_has_help_and_meaningful_defaults_are_shown():
  checked = 0
  for name, parser in _parsers(cli.build_parser()):
    text = " ".join(parser.format_help().split())
    for action in parser._actions:  # pylint: disable=protected-access
      if not action.option_strings or action.dest == "help":
        continue
      if action.default == argparse.SUPPRESS:  # --version: an action, no value to default.
        assert action.help, f"{name} {action.option_strings[0]} has no help text"
        continue
      assert action.help, f"{name} {action.option_strings[0]} has no help text"
      default = action.default
      if "default" in action.help:  # The help names the default in words.
        continue
      if isinstance(default, (int, float, str)) and not isinstance(default, bool) and (
          default != ""):
        assert f"default: {default}" in text, f"{name} {action.option_strings[0]}"
        checked += 1
  assert checked >= 30  # Most options have a default worth showing.


def test_descriptions_keep_their_example_commands_on_separate_lines():
  data = dict(_parsers(cli.build_parser()))["crnn-jax data"]
  assert "\n  crnn-jax data build lmdb --input" in data.format_help()
