"""The fault suite (`make chaos`, and tests/system/test_chaos.py): crashes, restarts and a
misbehaving provider under real work; nothing may be lost and no stored answer paid for twice."""
