"""The Python client's tests: the contract (docs/contract.md) and the runtime scenarios,
run through GrpcRunStore against the real server (in-memory and MySQL).

Run from the repository root:
    /usr/bin/python3 -m unittest discover -s python/tests -t python
"""

import os

# The TLS tests provoke failed handshakes, which gRPC core would log as errors
# on stderr; set GRPC_VERBOSITY=ERROR (or DEBUG) to see them.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")
