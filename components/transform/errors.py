"""Errors raised inside Beam workers, and the one-line error the executor makes of a failed pipeline.

Runners wrap a worker's exception (the in-process runner re-raises it with a step annotation; worker
processes and remote runners send back only the formatted traceback text). The worker therefore puts
a JSON payload between markers into the message, and the executor turns it back into a one-line
DataFormatError after the pipeline fails.
"""

from __future__ import annotations

import json
import re

from components.base import ComponentError
from hale_tf.data.errors import DataFormatError

_ERR_RE = re.compile(r"\[\[hale-error\]\](.*?)\[\[/hale-error\]\]", re.S)


class _WorkerError(ValueError):
    pass


def _fail(path: str, line: int, reason: str) -> None:
    payload = json.dumps({"path": path, "line": int(line), "reason": reason}, ensure_ascii=True)
    raise _WorkerError(f"[[hale-error]]{payload}[[/hale-error]]")


def _error_from_pipeline(exc: BaseException) -> Exception:
    text = ""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:  # the marker may sit in a chained exception
        seen.add(id(cur))
        text += f"\n{cur}"
        cur = cur.__cause__ or cur.__context__
    match = _ERR_RE.search(text)
    if match:
        try:
            info = json.loads(match.group(1))
            return DataFormatError(info["path"], info["line"], info["reason"])
        except (ValueError, KeyError):
            pass
    last = next((ln.strip() for ln in reversed(str(exc).splitlines()) if ln.strip()), type(exc).__name__)
    return ComponentError(f"Transform: Beam pipeline failed: {last[:300]}")
