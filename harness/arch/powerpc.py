from harness.arch import ArchConfig

CONFIG = ArchConfig(
    name="powerpc",
    kernel_arch="powerpc",
    cross_compile="powerpc64le-linux-gnu-",
    image="vmlinux",
    vng_arch="ppc64el",
    fragment="powerpc.config",
    native=False,
)
