"""A fuzzer for cpu_opv(2) that carries a model of its ABI.

Every call is generated from a printed seed (gen), its outcome predicted
from docs/cpu_opv-abi.md and docs/man/cpu_opv.2 (model), issued in the
guest through ctypes (run), and checked: the return value or errno after
each call, and every byte of the memory it aims at against the model's
shadow copy once per batch (arena), which also catches writes outside the
operands.  A batch that differs is replayed call by call to name the
culprit, and any failure prints the command that replays it exactly.

Runs in the guest with nothing but the standard library and harness.abi.
"""
