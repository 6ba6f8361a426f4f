"""How `crnn-jax --help` looks: one formatter for the command and all its subcommands.

Every option's help ends with its default, unless the default says nothing (None, False, an
empty string or list) or the help already names it.
"""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
  """Keeps descriptions as written (they hold example commands) and shows defaults."""

  def _get_help_string(self, action: argparse.Action) -> str:
    text = action.help or ""
    default = action.default
    says_nothing = default is None or default is False or (
        isinstance(default, (str, list, tuple)) and not default)
    if ("default" in text or says_nothing or default is argparse.SUPPRESS or
        not action.option_strings):
      return text
    return f"{text} (default: %(default)s)"


def apply(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
  """Sets HelpFormatter on `parser` and every subcommand parser below it; returns `parser`."""
  parser.formatter_class = HelpFormatter
  for action in parser._actions:  # pylint: disable=protected-access
    if isinstance(action, argparse._SubParsersAction):  # pylint: disable=protected-access
      for sub in action.choices.values():
        apply(sub)
  return parser


def add_quiet_argument(parser: argparse.ArgumentParser) -> None:
  """`--quiet`: no progress bar (see `crnn_jax.progress`)."""
  parser.add_argument("--quiet", action="store_true",
                      help="no progress bar (there is none when stderr is not a terminal)")
