"""The error type for bad input: the launcher prints it as one line, exit 2."""


class InputError(Exception):
  """Bad user input (config, data, files); the message names the culprit."""
