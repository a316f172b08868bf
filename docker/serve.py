"""Container entry point of every Python variant image: become ``python -m $SERVING_PACKAGE`` (stdlib only).

The image is built once for every variant (docker/python-variant.Dockerfile) and an exec-form CMD cannot read
a build argument, so the package comes from the environment the build set; ``execv`` replaces this process,
so the service itself is PID 1 and receives SIGTERM from `docker stop` directly.
"""

import os
import sys

package = os.environ.get("SERVING_PACKAGE", "")
if not package.isidentifier():
    print(f"SERVING_PACKAGE={package!r} is not a Python package name", file=sys.stderr)
    sys.exit(2)
os.execv(sys.executable, ["python", "-m", package])
