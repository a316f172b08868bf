"""Container HEALTHCHECK: exit 0 when this container's service answers 200 on /ready (stdlib only)."""

import os
import sys
import urllib.request

url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/ready"
try:
    with urllib.request.urlopen(url, timeout=float(os.environ.get("HEALTHCHECK_TIMEOUT_S", "2"))) as answer:
        sys.exit(0 if answer.status == 200 else 1)
except OSError as error:  # refused, timed out, or an HTTP error status (HTTPError is an OSError)
    print(f"{url}: {error}", file=sys.stderr)
    sys.exit(1)
