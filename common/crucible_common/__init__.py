"""Crucible's internal platform library: what every service uses, written once.

Settings, logging, the database engine and migrations, the gRPC server bootstrap, telemetry,
domain errors and their mapping to gRPC status, pagination tokens and the embedded Postgres.
Nothing here builds anything at import time.
"""
