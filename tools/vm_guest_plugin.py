"""pytest plugin for the emulated guests (tools/vm-arch-tests loads it with ``-p``): code runs
20-45x slower under qemu's TCG, so hypothesis gets no deadline there."""
from hypothesis import settings

settings.register_profile("vm-guest", deadline=None)
settings.load_profile("vm-guest")
