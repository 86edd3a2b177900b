from harness.arch import ArchConfig

CONFIG = ArchConfig(
    name="arm",
    kernel_arch="arm",
    cross_compile="arm-linux-gnueabihf-",
    image="arch/arm/boot/zImage",
    vng_arch="armhf",
    fragment="arm.config",
    native=False,
)
