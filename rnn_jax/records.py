"""JSON-lines record files of a run (metrics.jsonl, grad_flow.jsonl): one
object per line, each with the `step` it was measured at."""

from __future__ import annotations

import json
import os


def read(path: str) -> list[dict]:
  """Every record of the file, in order ([] when there is no file)."""
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def keep(path: str, last_step: int):
  """Drops the records after `last_step` (those written after the
  checkpoint a run resumes from: it writes them again)."""
  if not os.path.exists(path):
    return
  kept = [r for r in read(path) if r['step'] <= last_step]
  with open(path + '.tmp', 'w') as f:
    f.writelines(json.dumps(r) + '\n' for r in kept)
  os.replace(path + '.tmp', path)
