"""Finds and loads libdynopool.so with ctypes; declares the C entry points the package calls
(include/dynopool_op.h, include/dynopool/infer.h).

Where it looks, in order (the first file that exists is loaded):
  1. $DYNOPOOL_LIB: the library file, or a folder holding libdynopool.so (if set, nothing else
     is tried);
  2. next to the package: python/dynopool/libdynopool.so, then python/libdynopool.so;
  3. the build folder of the repository the package sits in: build/libdynopool.so (README's
     `cmake -S . -B build`);
  4. the installed library: what the dynamic loader finds (ctypes.util.find_library), then
     lib/ and lib/<multiarch>/ under /usr/local and /usr (`cmake --install`'s default prefix and
     Debian's).
"""
import ctypes
import ctypes.util
import os
import sysconfig

NAME = "libdynopool.so"
_HERE = os.path.dirname(os.path.abspath(__file__))
_lib = None


class LibraryNotFound(OSError):
    """libdynopool.so was not found (or not loadable); the message lists where we looked."""


def candidates():
    """[(path, why)] in the order they are tried; $DYNOPOOL_LIB alone when it is set."""
    env = os.environ.get("DYNOPOOL_LIB")
    if env:
        path = os.path.join(env, NAME) if os.path.isdir(env) else env
        return [(path, "$DYNOPOOL_LIB")]
    repo = os.path.dirname(os.path.dirname(_HERE))
    out = [(os.path.join(_HERE, NAME), "next to the package"),
           (os.path.join(os.path.dirname(_HERE), NAME), "next to the package"),
           (os.path.join(repo, "build", NAME), "the repository's build folder")]
    found = ctypes.util.find_library("dynopool")
    if found:
        out.append((found, "the dynamic loader's search path"))
    arch = sysconfig.get_config_var("MULTIARCH")
    for prefix in ("/usr/local", "/usr"):
        out.append((os.path.join(prefix, "lib", NAME), "installed"))
        if arch:
            out.append((os.path.join(prefix, "lib", arch, NAME), "installed"))
    return out


def _declare(lib):
    c_int, c_float, c_char_p, c_void_p = ctypes.c_int, ctypes.c_float, ctypes.c_char_p, ctypes.c_void_p
    f_p = ctypes.POINTER(ctypes.c_float)
    sig = {
        "dp_version": (c_char_p, []),
        "dp_strerror": (c_char_p, [c_int]),
        "dp_set_threads": (c_int, [c_int]),
        "dp_threads": (c_int, []),
        "dp_dynopool_size": (c_int, [c_int, c_float]),
        "dp_dynopool_forward": (c_int, [c_void_p, c_int, c_int, c_int, c_int, c_float, c_float,
                                        c_void_p]),
        "dp_dynopool_backward": (c_int, [c_void_p, c_void_p, c_int, c_int, c_int, c_int, c_float,
                                         c_float, c_void_p, f_p]),
        "dp_infer_load": (c_int, [c_char_p, ctypes.POINTER(c_void_p), c_char_p, ctypes.c_size_t]),
        "dp_infer_run": (c_int, [c_void_p, c_void_p, c_int, c_void_p]),
        "dp_infer_free": (None, [c_void_p]),
    }
    for name, (res, args) in sig.items():
        fn = getattr(lib, name)  # AttributeError: not the library we expect
        fn.restype, fn.argtypes = res, args


def load():
    """The loaded library (once per process). Raises LibraryNotFound naming every place tried."""
    global _lib
    if _lib is not None:
        return _lib
    tried = []
    for path, why in candidates():
        if not os.path.exists(path) and os.sep in path:
            tried.append(f"{path} ({why}: no such file)")
            continue
        try:
            lib = ctypes.CDLL(path)
            _declare(lib)
        except (OSError, AttributeError) as e:
            tried.append(f"{path} ({why}: {e})")
            continue
        lib.path = path
        _lib = lib
        return lib
    raise LibraryNotFound(
        f"dynopool: {NAME} not found. Looked in:\n  " + "\n  ".join(tried) +
        "\nBuild it (cmake -S . -B build && cmake --build build) or install it (cmake --install "
        "build), or set DYNOPOOL_LIB to the file.")


def check(rc, what):
    """Raises for a negative DP_ERR_* code: ValueError for bad arguments, MemoryError, else
    RuntimeError; the text is dp_strerror's."""
    if rc >= 0:
        return rc
    msg = f"{what}: {load().dp_strerror(rc).decode()} ({rc})"
    if rc == -5:  # DP_ERR_NOMEM
        raise MemoryError(msg)
    raise ValueError(msg)
