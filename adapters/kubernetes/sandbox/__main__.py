"""`python -m adapters.kubernetes.sandbox --port 8001 --token T`: serve the sandbox cluster until stopped."""

from __future__ import annotations

from adapters.kubernetes.sandbox.server import main

if __name__ == "__main__":
    main()
