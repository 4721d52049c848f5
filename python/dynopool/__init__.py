"""dynopool for PyTorch: the DynOPool layer on the C operator, and dynopool checkpoints as
nn.Modules (docs/guide.md, "Deploy", "PyTorch").

    import dynopool                                    # PYTHONPATH=python (the repository's)
    pool = dynopool.DynOPool2d(2.0)                    # learnable alpha; C forward and backward
    net = dynopool.load_checkpoint("runs/fmnist-dynopool")   # a trained network, eval mode

Pure Python over libdynopool.so (ctypes; found as dynopool._lib says: $DYNOPOOL_LIB, next to
the package, the repository's build/, the installed library). Importing the package does not
load the library: the first call to the C operator does.
"""
from . import models, reference
from ._lib import LibraryNotFound
from .checkpoint import load_checkpoint, read_safetensors, write_safetensors
from .op import DynOPool2d, DynOPoolFunction, dynopool2d, out_size, set_threads


def library():
    """The loaded libdynopool (ctypes.CDLL; its file is `.path`)."""
    from . import _lib
    return _lib.load()


__all__ = ["DynOPool2d", "DynOPoolFunction", "dynopool2d", "out_size", "set_threads",
           "load_checkpoint", "read_safetensors", "write_safetensors", "models", "reference", "library",
           "LibraryNotFound"]
