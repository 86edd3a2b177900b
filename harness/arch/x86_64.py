from harness.arch import ArchConfig

CONFIG = ArchConfig(
    name="x86_64",
    kernel_arch="x86",
    cross_compile="",
    image="arch/x86/boot/bzImage",
    vng_arch="amd64",
    fragment="x86_64.config",
    native=True,
)
