"""cpu_opv test harness.

Host side: fetch, patch, configure, build and boot a kernel (one module per
stage).  Guest side: ctypes bindings (harness.abi) and pytest suites
(harness.suites) that run inside the VM.
"""

from pathlib import Path

# The repository's top directory: the one place it is computed (the guest
# sees the same tree over 9p, so this holds there too).
REPO = Path(__file__).resolve().parent.parent
