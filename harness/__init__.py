"""cpu_opv test harness.

Host side: fetch, patch, configure, build and boot a kernel (one module per
stage).  Guest side: ctypes bindings (harness.abi) and pytest suites
(harness.suites) that run inside the VM.
"""
