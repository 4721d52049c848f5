#!/usr/bin/python3
"""The model zoo's PyTorch definition lives in the package: python/dynopool/models.py
(docs/models.md). This file keeps `import models` working for the scripts in ref/ and bench/
(it *is* that module: `models.DynOPool.impl = ...` patches the package's class) and runs its
self-test:

    /usr/bin/python3 ref/models.py --check     # human GMACs/sizes against the paper,
                                              # parameter names, complexity loss at init
    /usr/bin/python3 ref/models.py --model vgg16 --variant dynopool   # sizes, names
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from dynopool import models as _models  # noqa: E402

if __name__ == "__main__":
    sys.exit(_models.main())
sys.modules[__name__] = _models
