from harness.arch import ArchConfig

CONFIG = ArchConfig(
    name="arm64",
    kernel_arch="arm64",
    cross_compile="aarch64-linux-gnu-",
    image="arch/arm64/boot/Image",
    vng_arch="arm64",
    fragment="arm64.config",
    native=False,
)
