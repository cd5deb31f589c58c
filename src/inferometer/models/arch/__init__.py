"""Model architectures, defined here because torchvision does not import beside the CPU torch
build these machines use.  Each family is one file; every builder takes no arguments."""
