"""The `bigmaac` command: a thin shim that execs the bundled Node CLI.

The real tool is `_bundled/bigmaac.js`; this script exists so that
installing the Python package puts `bigmaac` on PATH.
"""

from __future__ import annotations

import os
import sys

from . import paths

NODE_MISSING_STATUS = 127  # what a shell returns for a command it cannot find
BUNDLE_MISSING_STATUS = 1


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    node = paths.find_node()
    if node is None:
        wanted = os.environ.get("BIGMAAC_NODE") or "node"
        print(f"bigmaac: cannot find the Node executable {wanted!r}; "
              "install Node.js or set BIGMAAC_NODE", file=sys.stderr)
        return NODE_MISSING_STATUS
    if not paths.BUNDLED_AGENT.is_file():
        print(f"bigmaac: the bundled CLI is missing ({paths.BUNDLED_AGENT}); "
              "build it with `make agent`", file=sys.stderr)
        return BUNDLE_MISSING_STATUS
    env = paths.agent_environment()
    # exec, not spawn: signals and the exit status belong to the Node process.
    os.execvpe(node, [node, str(paths.BUNDLED_AGENT), *args], env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
