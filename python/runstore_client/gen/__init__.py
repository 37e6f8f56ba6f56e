"""Code generated from proto/ by python/generate.sh: committed, never edited.

The messages and the stub live in ``runstore_client.gen.runstore.v1``
(``run_store_pb2`` and ``run_store_pb2_grpc``).
"""
